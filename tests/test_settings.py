"""newsmon.settings: a bad value is one ConfigError line that names the key; paths are
relative to the TOML file; the shipped defaults keep the SSRF guard on."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import newsmon_cli
from newsmon.errors import ConfigError
from newsmon.settings import DEFAULT_CONFIG, FetchSettings, load_settings

NEWSMON = Path(sys.executable).with_name("newsmon")

_LAKE = '[warehouse]\nbackend = "ducklake"\ncatalog = "postgres:dbname=n"\n'

BAD_CONFIGS = [
    # (id, TOML text, what the one line must name)
    ("unknown-key", "[fetch]\nread_timeot = 3\n", "fetch.read_timeot"),
    ("unknown-section", "[fecth]\nread_timeout = 3\n", "fecth"),
    ("missing-feed-url", '[[feeds]]\nname = "a"\n', "feeds[0].url"),
    ("empty-feed-url", '[[feeds]]\nname = "a"\nurl = ""\n', "feeds[0].url"),
    ("negative-timeout", "[fetch]\nread_timeout = -1\n", "fetch.read_timeout"),
    ("zero-connect-timeout", "[fetch]\nconnect_timeout = 0\n", "fetch.connect_timeout"),
    ("wrong-type", '[fetch]\nretries = "many"\n', "fetch.retries"),
    ("too-many-redirects", "[fetch]\nmax_redirects = 99\n", "fetch.max_redirects"),
    ("bad-allow-hosts", '[fetch]\nallow_hosts = ["localhost"]\n', "fetch.allow_hosts"),
    ("duplicate-feed-names",
     '[[feeds]]\nname = "a"\nurl = "http://x/"\n[[feeds]]\nname = "a"\nurl = "http://y/"\n', "feeds"),
    ("bad-feed-name", '[[feeds]]\nname = "a b"\nurl = "http://x/"\n', "feeds[0].name"),
    ("bad-toml", "[fetch\nread_timeout = 1\n", "line 1"),
    ("bad-cron", '[schedule]\ncron = "* *"\n', "schedule.cron"),
    ("missing-nlp-file", '[nlp]\nentities = "nowhere.yaml"\n', "nlp.entities"),
    # accepted, then crashing or hanging a run (issue 9)
    ("inf-timeout", "[fetch]\nread_timeout = inf\n", "fetch.read_timeout"),
    ("nan-timeout", "[fetch]\nconnect_timeout = nan\n", "fetch.connect_timeout"),
    ("inf-delay", "[fetch]\nper_host_delay = inf\n", "fetch.per_host_delay"),
    ("nan-delay", "[fetch]\nper_host_delay = nan\n", "fetch.per_host_delay"),
    ("inf-deadline", "[fetch]\nrequest_deadline_seconds = inf\n", "fetch.request_deadline_seconds"),
    ("huge-backoff", "[fetch]\nfeed_backoff_base_seconds = 1e300\n", "fetch.feed_backoff_base_seconds"),
    ("huge-backoff-max", "[fetch]\nfeed_backoff_max_seconds = 1e300\n", "fetch.feed_backoff_max_seconds"),
    ("inf-retry-after", "[fetch]\nmax_retry_after = inf\n", "fetch.max_retry_after"),
    ("inf-lock-timeout", "[warehouse]\nlock_timeout_seconds = inf\n", "warehouse.lock_timeout_seconds"),
    ("inf-smtp-timeout", "[smtp]\ntimeout = inf\n", "smtp.timeout"),
    ("nan-aid-change", '[alerts]\nrecipients = [{ address = "a@example.org", min_aid_change = nan }]\n',
     "alerts.recipients[0].min_aid_change"),
    ("crlf-user-agent", '[fetch]\nuser_agent = "bot\\r\\nX-Evil: 1"\n', "fetch.user_agent"),
    ("empty-user-agent", '[fetch]\nuser_agent = ""\n', "fetch.user_agent"),
    ("feed-url-javascript", '[[feeds]]\nname = "a"\nurl = "javascript:alert(1)"\n', "feeds[0].url"),
    ("feed-url-no-host", '[[feeds]]\nname = "a"\nurl = "http://"\n', "feeds[0].url"),
    ("feed-url-bad-port", '[[feeds]]\nname = "a"\nurl = "http://example.org:99999/feed"\n', "feeds[0].url"),
    ("feed-url-ftp", '[[feeds]]\nname = "a"\nurl = "ftp://example.org/feed"\n', "feeds[0].url"),
    ("feed-url-space", '[[feeds]]\nname = "a"\nurl = "http://example.org/a feed"\n', "feeds[0].url"),
    ("cron-out-of-range", '[schedule]\ncron = "99 99 * * *"\n', "schedule.cron"),
    ("cron-bad-weekday", '[schedule]\ncron = "0 9 * * funday"\n', "schedule.cron"),
    ("timezone-unknown", '[schedule]\ntimezone = "Mars/Olympus"\n', "schedule.timezone"),
    ("timezone-path", '[schedule]\ntimezone = "../../etc/passwd"\n', "schedule.timezone"),
    ("password-block-name", '[smtp]\npassword_block = "My Secret!"\n', "smtp.password_block"),
    ("warehouse-under-a-file", '[warehouse]\npath = "newsmon.toml/w.duckdb"\n', "warehouse.path"),
    ("warehouse-is-a-folder", '[warehouse]\npath = "."\n', "warehouse.path"),
    ("too-many-feed-entries", "[fetch]\nmax_feed_entries = 0\n", "fetch.max_feed_entries"),
    ("zero-concurrency", "[fetch]\nmax_concurrency = 0\n", "fetch.max_concurrency"),
    ("huge-concurrency", "[fetch]\nmax_concurrency = 1000\n", "fetch.max_concurrency"),
    ("zero-host-give-up", "[fetch]\nhost_give_up_after = 0\n", "fetch.host_give_up_after"),
    ("zero-run-budget", "[fetch]\nrun_budget_seconds = 0\n", "fetch.run_budget_seconds"),
    ("inf-run-budget", "[fetch]\nrun_budget_seconds = inf\n", "fetch.run_budget_seconds"),
    # an object-store lake: what is not secret is a key, checked here (credentials come from the environment)
    ("lake-gcs-path", _LAKE + 'data_path = "gs://b/p/"\n', "warehouse.data_path"),
    ("lake-s3-no-bucket", _LAKE + 'data_path = "s3:///p/"\n', "warehouse.data_path"),
    ("lake-s3-dotdot", _LAKE + 'data_path = "s3://bucket/p/../q/"\n', "warehouse.data_path"),
    ("lake-endpoint-scheme", _LAKE + 'data_path = "s3://bucket/p/"\ns3_endpoint = "http://minio:9000"\n',
     "warehouse.s3_endpoint"),
    ("lake-endpoint-path", _LAKE + 'data_path = "s3://bucket/p/"\ns3_endpoint = "minio:9000/x"\n',
     "warehouse.s3_endpoint"),
    ("lake-url-style", _LAKE + 'data_path = "s3://bucket/p/"\ns3_url_style = "virtual"\n', "warehouse.s3_url_style"),
    ("lake-use-ssl", _LAKE + 'data_path = "s3://bucket/p/"\ns3_use_ssl = "no"\n', "warehouse.s3_use_ssl"),
    ("lake-region", _LAKE + 'data_path = "s3://bucket/p/"\ns3_region = "EU Central"\n', "warehouse.s3_region"),
    ("lake-s3-keys-on-a-directory", _LAKE + 'data_path = "lake/"\ns3_endpoint = "minio:9000"\n', "s3_endpoint"),
    ("lake-credentials-in-the-file", _LAKE + 'data_path = "s3://bucket/p/"\naws_secret_access_key = "x"\n',
     "warehouse.aws_secret_access_key"),
]


@pytest.mark.parametrize("text, key", [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_settings_bad_value_is_one_line_naming_the_key(tmp_path, text, key):
    path = tmp_path / "newsmon.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "\n" not in message
    assert key in message
    assert str(path) in message


def test_settings_duplicate_feed_names_message_names_the_feeds_key(tmp_path):
    path = tmp_path / "newsmon.toml"
    path.write_text('[[feeds]]\nname = "a"\nurl = "http://x/"\n[[feeds]]\nname = "a"\nurl = "http://y/"\n')
    with pytest.raises(ConfigError, match=r": feeds: feed names must be unique: a$"):
        load_settings(path)


def test_settings_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml")


def test_settings_relative_paths_resolved_against_config_dir(tmp_path):
    (tmp_path / "conf" / "feeds").mkdir(parents=True)
    (tmp_path / "conf" / "feeds" / "a.xml").write_text("<rss/>")
    path = tmp_path / "conf" / "newsmon.toml"
    path.write_text('[warehouse]\npath = "../data/wh.duckdb"\n'
                    '[[feeds]]\nname = "local"\nurl = "feeds/a.xml"\n'
                    '[[feeds]]\nname = "web"\nurl = "https://example.org/feed"\n')
    s = load_settings(path)
    assert s.warehouse.path == tmp_path / "data" / "wh.duckdb"
    assert s.feed("local").url == (tmp_path / "conf" / "feeds" / "a.xml").as_uri()
    assert s.feed("web").url == "https://example.org/feed"
    assert s.source == path


def test_settings_config_path_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text("[fetch]\nretries = 7\n")
    monkeypatch.setenv("NEWSMON_CONFIG", str(path))
    assert load_settings().fetch.retries == 7


def test_settings_are_frozen():
    s = FetchSettings()
    with pytest.raises(Exception):
        s.allow_private_networks = True  # type: ignore[misc]


def test_settings_bundled_config_loads_with_ssrf_guard_on():
    s = load_settings(DEFAULT_CONFIG)
    assert s.fetch.allow_private_networks is False
    assert s.fetch.allow_hosts == []
    assert s.feeds, "the bundled config lists the sample feeds"


def test_settings_default_fetch_settings_refuse_loopback(http_server):
    from newsmon.errors import RefusedFetchError
    from tasks.fetch import Fetcher

    with Fetcher(FetchSettings()) as f, pytest.raises(RefusedFetchError) as err:
        f.get(http_server.url("/robots.txt"), max_bytes=1000)
    assert err.value.reason == "ssrf"


def test_settings_allow_hosts_normalised():
    assert FetchSettings(allow_hosts=["LocalHost:8080", "[::1]:80"]).allow_hosts == ["localhost:8080", "[::1]:80"]


@pytest.mark.slow
def test_settings_cli_bad_config_is_one_clean_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[fetch]\nread_timeout = -1\n")
    proc = newsmon_cli("ingest", "--config", str(path), cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "fetch.read_timeout" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("text, what", [
    ("foo: 1\n", "unknown section 'foo'"),
    ("countries: []\n", "no entries"),
    ("", "no entries"),
    ("- a\n- b\n", "mapping"),
], ids=["unknown-section", "empty-sections", "empty-file", "a-list"])
def test_settings_entity_catalog_without_entities_is_a_config_error(tmp_path, text, what):
    # entities.yaml holding {foo: 1} was read as an empty catalog: 0 claims, silently
    (tmp_path / "entities.yaml").write_text(text)
    path = tmp_path / "newsmon.toml"
    path.write_text('[nlp]\nentities = "entities.yaml"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "\n" not in str(err.value)
    assert "nlp.entities" in str(err.value) and what in str(err.value)


@pytest.mark.parametrize("url", ["https://example.org/feed.xml", "http://127.0.0.1:8080/f", "http://[::1]:80/f",
                                 "file:///{tmp}/feeds/a.xml"])
def test_settings_good_feed_urls_accepted(tmp_path, url):
    url = url.format(tmp=str(tmp_path).lstrip("/"))
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "a.xml").write_text("<rss/>")
    path = tmp_path / "newsmon.toml"
    path.write_text(f'[[feeds]]\nname = "a"\nurl = "{url}"\n')
    assert load_settings(path).feeds[0].url == url


def test_settings_good_schedule_and_agent_accepted(tmp_path):
    path = tmp_path / "newsmon.toml"
    path.write_text('[schedule]\ncron = "0 7-19/2 * * mon-fri"\ntimezone = "Europe/Kyiv"\n'
                    '[fetch]\nuser_agent = "newsmon/0.1 (+https://example.org/bot)"\n'
                    '[smtp]\npassword_block = "newsmon-smtp"\n')
    s = load_settings(path)
    assert (s.schedule.cron, s.schedule.timezone, s.smtp.password_block) == (
        "0 7-19/2 * * mon-fri", "Europe/Kyiv", "newsmon-smtp")


@pytest.mark.slow  # Prefect may start a temporary server to look the block up
def test_settings_unknown_password_block_is_one_config_error_line(monkeypatch, tmp_path):
    # an unknown password_block crashed the send with a traceback; now one line naming the key
    from newsmon.settings import SmtpSettings

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens: no such block either way
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    smtp = SmtpSettings(password_env=None, password_block="no-such-block")
    with pytest.raises(ConfigError) as err:
        smtp.password()
    assert str(err.value).startswith("smtp.password_block: cannot load the Prefect Secret block 'no-such-block'")
    assert "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize("text, key", [
    ('[schedule]\ncron = "99 99 * * *"\n', "schedule.cron"),
    ('[schedule]\ntimezone = "Mars/Olympus"\n', "schedule.timezone"),
    ('[[feeds]]\nname = "a"\nurl = "javascript:alert(1)"\n', "feeds[0].url"),
    ('[nlp]\nentities = "entities.yaml"\n', "nlp.entities"),
    ("[fetch]\nread_timeout = inf\n", "fetch.read_timeout"),
], ids=["cron", "timezone", "javascript-url", "entities-foo", "inf"])
@pytest.mark.parametrize("command", ["ingest", "serve"])
def test_settings_cli_new_checks_are_one_clean_line_before_prefect(tmp_path, text, key, command):
    # these passed validation and failed later, inside a flow, among 35-108 lines of Prefect traceback
    (tmp_path / "entities.yaml").write_text("foo: 1\n")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.run([str(NEWSMON), command, "--config", str(path)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("newsmon: config "), proc.stderr
    assert key in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


# -- the documented config: every key the model accepts is in config/newsmon.toml -------------------
def _documented_keys(text: str) -> set[str]:
    """Dotted keys config/newsmon.toml shows, set or commented out: `key = ...` and `# key = ...` under
    their `[section]` / `[[section]]` (also commented), and the keys of inline tables (`recipients = [{ ... }]`)."""
    keys, section = set(), ""
    for line in text.splitlines():
        head = re.match(r"^\s*#?\s*\[\[?([a-z_]+)\]\]?\s*(#.*)?$", line)
        if head:
            section = head.group(1)
            keys.add(section)
            continue
        item = re.match(r"^\s*#?\s*([a-z][a-z0-9_]*)\s*=\s*(.*)$", line)  # keys may hold digits (s3_region)
        if not item:
            continue
        key, value = item.groups()
        keys.add(f"{section}.{key}" if section else key)
        for inner in re.findall(r"\{([^}]*)\}", value):
            keys |= {f"{section}.{key}.{k}" for k in re.findall(r"([a-z_]+)\s*=", re.sub(r'"[^"]*"', '""', inner))}
    return keys


def _model_keys(model, prefix: str = "") -> set[str]:
    """Dotted keys a settings model accepts, down through sections, lists of tables and optional sections."""
    import typing

    from pydantic import BaseModel

    keys = set()
    for name, field in model.model_fields.items():
        if not prefix and name == "source":  # set by load_settings, not written in the file
            continue
        key = f"{prefix}{name}"
        keys.add(key)
        inner = [a for a in typing.get_args(field.annotation) or [field.annotation]]
        inner += [b for a in inner for b in typing.get_args(a)]  # list[X] | None
        for kind in inner:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                keys |= _model_keys(kind, key + ".")
    return keys


def test_settings_every_key_is_documented_in_the_bundled_config():
    from newsmon.settings import Settings

    documented = _documented_keys(DEFAULT_CONFIG.read_text())
    accepted = _model_keys(Settings)
    assert {"smtp.ssl", "alerts.max_attempts", "alerts.recipients.topics", "feeds.enabled"} <= accepted
    assert sorted(accepted - documented) == [], "keys the settings accept but config/newsmon.toml does not show"
    assert sorted(documented - accepted) == [], "keys config/newsmon.toml shows but the settings refuse"


def test_settings_documented_keys_are_read_from_comments_and_inline_tables():
    text = ('[a]\nx = 1  # y = 2\n# z = "q = 1"\n# [b]\n# w = 3\n[[c]]\nv = 4\n'
            '[d]\n# r = [{ address = "a=b", k = [1] }]\n')
    assert _documented_keys(text) == {"a", "b", "c", "d", "a.x", "a.z", "b.w", "c.v", "d.r", "d.r.address", "d.r.k"}


def test_settings_documented_examples_are_valid_values(tmp_path):
    """The commented-out [smtp] section and recipient of config/newsmon.toml load as they are written."""
    text = DEFAULT_CONFIG.read_text()
    smtp = re.search(r"^# \[smtp\].*?\n\n", text, flags=re.M | re.S).group(0)
    smtp = re.sub(r"^# ?", "", smtp, flags=re.M)
    smtp = re.sub(r"^password_block = .*\n", "", smtp, flags=re.M)  # a Prefect block: looked up when sending
    recipient = re.search(r"^# (recipients = \[\{.*)$", text, flags=re.M).group(1)
    path = tmp_path / "newsmon.toml"
    path.write_text(f"{smtp}\n[alerts]\n{recipient}\n")
    s = load_settings(path)
    assert (s.smtp.ssl, s.smtp.timeout, s.smtp.starttls) == (False, 30.0, False)
    assert [r.topics for r in s.alerts.recipients] == [["sanctions_on_russia", "Ukraine"]]


def test_settings_domain_files_resolve_against_the_config_folder(tmp_path):
    conf = tmp_path / "conf"
    (conf / "domain").mkdir(parents=True)
    shutil.copy(DEFAULT_CONFIG.parent / "topics.yaml", conf / "domain" / "my-topics.yaml")
    path = conf / "newsmon.toml"
    path.write_text('[nlp]\ntopics = "domain/my-topics.yaml"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)  # the working folder plays no part
    try:
        s = load_settings(Path("..") / "conf" / "newsmon.toml")
    finally:
        os.chdir(cwd)
    assert s.nlp.topics == conf / "domain" / "my-topics.yaml"
    assert s.source == path


@pytest.mark.parametrize("key", ["entities", "topics", "money", "fx", "aid", "lang"])
def test_settings_cli_missing_domain_file_is_a_config_error_before_the_run(run_newsmon, tmp_path, key):
    path = tmp_path / "newsmon.toml"
    path.write_text(f'[warehouse]\npath = "wh.duckdb"\n[nlp]\n{key} = "copied/{key}.yaml"\n'
                    '[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:9/feed.xml"\n')
    result = run_newsmon("ingest", "--config", path)
    assert result.code == 2
    assert result.stderr.strip() == (f"newsmon: config {path}: nlp.{key}: file not found: "
                                      f"{tmp_path / 'copied' / (key + '.yaml')}")
    assert result.stdout == ""
    assert not (tmp_path / "wh.duckdb").exists()  # no run began: nothing recorded as a fetch failure


def test_settings_cli_copied_config_without_its_local_feeds_is_a_config_error(run_newsmon, tmp_path):
    """The bundled config copied alone: its sample feeds are paths relative to the copy's folder, which
    does not hold them; one line naming the key and the path it looked at, before any run (it was a feed
    failing with http_404)."""
    path = tmp_path / "newsmon.toml"
    shutil.copy(DEFAULT_CONFIG, path)
    result = run_newsmon("ingest", "--config", path)
    assert result.code == 2
    assert result.stderr.strip() == (f"newsmon: config {path}: feeds[0].url: file not found: "
                                      f"{tmp_path / 'sample' / 'feeds' / 'kyiv-ledger.xml'} (a relative path is "
                                      "relative to the config file's folder)")
    # a disabled feed is not read, so its file may be gone
    path.write_text(path.read_text().replace('url = "sample/feeds/kyiv-ledger.xml"', 'url = "sample/feeds/kyiv-ledger.xml"\nenabled = false', 1)
                    .replace("enabled = true", "", 1))
    result = run_newsmon("ingest", "--config", path)
    assert "feeds[1].url: file not found" in result.stderr
