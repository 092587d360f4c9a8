"""newsmon.settings: a bad value is one ConfigError line that names the key; paths are
relative to the TOML file; the shipped defaults keep the SSRF guard on."""
from __future__ import annotations

import pytest

from conftest import newsmon_cli
from newsmon.errors import ConfigError
from newsmon.settings import DEFAULT_CONFIG, FetchSettings, load_settings

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
    (tmp_path / "conf").mkdir()
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
