"""Settings: the TOML file of one deployment, validated on load.

`load_settings(path)` reads `newsmon.toml` (see `config/newsmon.toml` for every key
with its default) into frozen pydantic models. Unknown keys, missing values and
out-of-range numbers raise `ConfigError` with one line that names the key.

Relative paths in the file (warehouse path, domain files, file feeds) are taken
relative to the directory of the TOML file, so a config and its data travel
together. Secrets never live here: the SMTP password comes from an environment
variable or a Prefect Secret block named in `[smtp]`.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import urllib.parse
import urllib.request
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from newsmon import ROOT
from newsmon.errors import ConfigError
from newsmon.mailaddr import plain_address

__all__ = ["Settings", "load_settings", "resolve_config_path", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = ROOT / "config" / "newsmon.toml"
DEFAULT_USER_AGENT = "newsmon/0.1 (+https://github.com/newsmon/newsmon; news monitoring bot)"

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
# Upper bounds that a working value never reaches: an hour for one network wait, thirty days
# for a backoff. Past them (1e300) the value crashed later, in timedelta or float arithmetic.
Seconds = Annotated[float, Field(gt=0, le=3600)]
WaitSeconds = Annotated[float, Field(ge=0, le=3600)]
LongSeconds = Annotated[float, Field(ge=0, le=30 * 86400)]


class _Section(BaseModel):
    # allow_inf_nan=False: "inf" and "nan" pass gt/le checks (nan compares False to everything)
    # and then hang a run or crash it; every float of the config is finite.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WarehouseSettings(_Section):
    path: Path = Path("newsmon.duckdb")
    lock_timeout_seconds: Annotated[float, Field(gt=0, le=86400)] = 120.0
    # DuckDB's memory_limit for every connection (it spills to disk beyond it); its own default is 80 % of RAM
    memory_limit: Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")] = "512MB"

    @field_validator("path")
    @classmethod
    def _creatable(cls, v: Path) -> Path:
        # the file is created on first run: its folder must be a folder (or creatable as one)
        if v.is_dir():
            raise ValueError(f"{v} is a folder; name the DuckDB file, e.g. {v / 'newsmon.duckdb'}")
        for parent in v.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ValueError(f"cannot create {v}: {parent} is a file, not a folder")
                break
        return v
    # "duckdb": the file at `path` holds everything. "ducklake": a DuckLake with its catalog in
    # PostgreSQL (`catalog`) and its data files under `data_path`, written by many processes;
    # `path` is then the local DuckDB file `newsmon sql` opens (the lake attached read-only).
    backend: Literal["duckdb", "ducklake"] = "duckdb"
    catalog: str | None = None      # "postgres:dbname=newsmon host=… port=5432 user=…"
    data_path: str | None = None    # a directory ("lake/") or an object-store prefix ("s3://bucket/newsmon/")

    @field_validator("catalog")
    @classmethod
    def _catalog(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("postgres:") and "dbname=" in v):
            raise ValueError(f"write the catalog as \"postgres:dbname=newsmon host=… port=… user=…\", got {v!r}")
        return v

    # An object-store data_path ("s3://bucket/prefix/"): how to reach the store, nothing secret. The
    # key id and secret come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) in
    # the environment of each process (docs/scaling.md). Unset: AWS S3's own defaults.
    s3_endpoint: str | None = None      # "host[:port]" of an S3-compatible store (MinIO …), no scheme
    s3_region: str | None = None        # e.g. "eu-central-1"; DuckDB's default: us-east-1
    s3_url_style: Literal["path", "vhost"] | None = None   # "path" for most S3-compatible stores
    s3_use_ssl: StrictBool = True             # false: plain http to s3_endpoint (a store on a private network)

    @field_validator("data_path")
    @classmethod
    def _data_path(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if "://" in v:
            scheme = v.split("://", 1)[0]
            if scheme.lower() != "s3":
                raise ValueError(f"object storage must be S3 or S3-compatible (\"s3://bucket/prefix/\"), got "
                                 f"{scheme}:// in {v!r}")
            bucket = v.split("://", 1)[1].split("/", 1)[0]
            # AWS's rules are stricter (3-63 lower-case characters); some S3-compatible stores take more
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", bucket):
                raise ValueError(f"{v!r} does not start with a bucket name (letters, digits, '.', '-', '_'): "
                                 "write \"s3://bucket/prefix/\"")
            if any(part in (".", "..") for part in v.split("://", 1)[1].split("/")):
                raise ValueError(f"{v!r}: '.' and '..' are not allowed in an object-store path")
            v = "s3://" + v.split("://", 1)[1]
        return v if v.endswith("/") else v + "/"

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if "://" in v:
            raise ValueError(f"write the endpoint as host[:port] without a scheme, got {v!r} (plain http: "
                             "s3_use_ssl = false)")
        if not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", v):
            raise ValueError(f"write the endpoint as host[:port], e.g. \"minio.internal:9000\", got {v!r}")
        return v

    @field_validator("s3_region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9\-]{0,62}", v):
            raise ValueError(f"write the region as AWS names it, e.g. \"eu-central-1\", got {v!r}")
        return v

    @model_validator(mode="after")
    def _lake_complete(self) -> "WarehouseSettings":
        if self.backend == "ducklake" and (not self.catalog or not self.data_path):
            missing = " and ".join(k for k in ("catalog", "data_path") if not getattr(self, k))
            raise ValueError(f'backend = "ducklake" needs {missing}')
        given = [k for k in ("s3_endpoint", "s3_region", "s3_url_style") if getattr(self, k) is not None]
        if not self.s3_use_ssl:
            given.append("s3_use_ssl")
        # ignored with the DuckDB file, as catalog and data_path are; on a lake over a directory a sign of a slip
        if given and self.backend == "ducklake" and not (self.data_path or "").startswith("s3://"):
            raise ValueError(f"{', '.join(given)} only apply to a DuckLake whose data_path is \"s3://bucket/prefix/\"")
        return self


class FetchSettings(_Section):
    allow_private_networks: bool = False
    # Exact "host:port" origins ("127.0.0.1:8080", "[::1]:8080", "intranet.example:443") fetched
    # even when they resolve to a private address; every other private address stays refused,
    # redirects included. For a known internal feed server (and the test server) without
    # opening the whole private network.
    allow_hosts: list[str] = []
    connect_timeout: Seconds = 10.0
    read_timeout: Seconds = 30.0
    # The whole of one fetch (connect, headers, body, redirects, in-call retries): a server
    # that trickles a byte at a time is cut off here, whatever the per-read timeouts say.
    request_deadline_seconds: Seconds = 60.0
    max_page_bytes: Annotated[int, Field(gt=0)] = 5 * 1024 * 1024
    max_feed_bytes: Annotated[int, Field(gt=0)] = 5 * 1024 * 1024
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    # entries kept from one feed document (the first ones, newest first in practice); the rest
    # are recorded as one rejection, so 200,000 entries cannot hold up the feeds after it
    max_feed_entries: Annotated[int, Field(ge=1, le=100_000)] = 1000
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    max_retry_after: WaitSeconds = 5.0
    # All in-call retry waits of one run together; past it, a URL that asks to wait stays
    # pending for the next run instead of stalling this one.
    retry_wait_budget_seconds: WaitSeconds = 30.0
    per_host_delay: WaitSeconds = 0.5
    # Hosts fetched at once (threads); one host's feeds and pages are still fetched one after
    # another, per_host_delay apart.
    max_concurrency: Annotated[int, Field(ge=1, le=64)] = 8
    # A host that cannot be reached (its name does not resolve, the connection is refused or
    # times out) this many times in a row is given up for the rest of the run: its other
    # feeds and pages are left for the next run, not failed.
    host_give_up_after: Annotated[int, Field(ge=1, le=1000)] = 3
    # The polling and fetching of one `ingest` run together: past it no feed or page is
    # started (those left wait for the next run) and the run goes on to extract and mine
    # what it got. A backfill has no budget.
    run_budget_seconds: Annotated[float, Field(gt=0, le=7 * 86400)] = 600.0
    user_agent: Annotated[str, Field(min_length=1, max_length=500)] = DEFAULT_USER_AGENT
    respect_robots: bool = True
    feed_backoff_after_failures: Annotated[int, Field(ge=1, le=1000)] = 3
    feed_backoff_base_seconds: LongSeconds = 300.0
    feed_backoff_max_seconds: LongSeconds = 6 * 3600.0

    @field_validator("user_agent")
    @classmethod
    def _header_value(cls, v: str) -> str:
        # it is sent as a header: CR/LF would end it (header injection), other controls break it
        if any(ord(c) < 32 or ord(c) == 127 for c in v) or not v.isascii():
            raise ValueError("must be printable ASCII on one line (no CR, LF or other control characters)")
        return v

    @field_validator("allow_hosts")
    @classmethod
    def _host_port(cls, v: list[str]) -> list[str]:
        for item in v:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or "/" in item:
                raise ValueError(f"not a host:port pair: {item!r} (write e.g. \"127.0.0.1:8080\")")
        return [item.lower() for item in v]


class FeedSettings(_Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _fetchable(cls, v: str) -> str:
        """An http(s) URL with a host and a valid port, or a file URL (paths become file URLs)."""
        try:
            parts = urllib.parse.urlsplit(v)
            parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {v!r} ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "file"):
            raise ValueError(f"not a feed URL: {v!r} (write an http(s):// URL or a file path)")
        if scheme != "file" and not parts.hostname:
            raise ValueError(f"no host in {v!r}")
        if any(ord(c) <= 32 or ord(c) == 127 for c in v):
            raise ValueError(f"spaces or control characters in {v!r} (percent-encode them)")
        return v


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 25
    starttls: bool = False
    ssl: bool = False
    sender: str = "newsmon@localhost"
    username: str | None = None
    password_env: str | None = "NEWSMON_SMTP_PASSWORD"
    # name of a Prefect Secret block (Prefect's block names: lower-case letters, digits, dashes)
    password_block: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=200)] | None = None
    timeout: Seconds = 30.0

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        return plain_address(v)

    def password(self) -> str | None:
        """The SMTP password from the environment or a Prefect Secret block; never logged."""
        if self.password_env and os.environ.get(self.password_env):
            return os.environ[self.password_env]
        if self.password_block:
            from prefect.blocks.system import Secret

            try:
                return Secret.load(self.password_block).get()
            except Exception as exc:  # no such block, no Prefect API: a config problem, said in one line
                detail = " ".join(str(exc).split())[:300]
                raise ConfigError(f"smtp.password_block: cannot load the Prefect Secret block "
                                  f"{self.password_block!r} ({type(exc).__name__}: {detail}); create it "
                                  "(prefect block create secret) or set smtp.password_env instead") from None
        return None


class Recipient(_Section):
    address: str
    groups: list[str] = []   # actor groups (canonical names); empty = all
    topics: list[str] = []   # topic ids or aid recipients; empty = all
    kinds: list[Literal["position", "aid"]] = []
    min_aid_change: NonNegativeFloat = 0.0  # relative change, e.g. 0.25 for 25 %

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        return plain_address(v)  # one local@domain: no group, display name or second '@'


class AlertSettings(_Section):
    recipients: list[Recipient] = []
    aid_change_threshold: Annotated[float, Field(ge=0, le=10)] = 0.10
    max_attempts: Annotated[int, Field(ge=1)] = 50

    @field_validator("recipients", mode="before")
    @classmethod
    def _plain_addresses(cls, v):
        return [{"address": r} if isinstance(r, str) else r for r in (v or [])]


class NlpSettings(_Section):
    entities: Path = ROOT / "config" / "entities.yaml"
    topics: Path = ROOT / "config" / "topics.yaml"
    money: Path = ROOT / "config" / "money.yaml"
    fx: Path = ROOT / "config" / "fx.yaml"
    aid: Path = ROOT / "config" / "aid.yaml"
    lang: Path = ROOT / "config" / "lang" / "en"   # the lexicon: discourse.yaml, stance.yaml, events.yaml
    # texts nlp.pipe parses at once: their docs are all alive together (64: 727 MB peak, 8: 416 MB, same CPU)
    batch_size: Annotated[int, Field(ge=1, le=10000)] = 8
    min_similarity_syndicated: Annotated[float, Field(gt=0, le=1)] = 0.8
    max_chars: Annotated[int, Field(ge=1000, le=1_000_000)] = 200_000   # longer texts are mined up to here
    processes: Annotated[int, Field(ge=1, le=64)] = 1   # extracting and mining processes; 2+: helpers beside the run


class ScheduleSettings(_Section):
    cron: str = "*/15 * * * *"
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"a cron expression has 5 fields, got {v!r}")
        import cronsim

        try:  # field ranges ("99 99 * * *") are checked here, not when `newsmon serve` starts
            cronsim.CronSim(v, dt.datetime(2000, 1, 1))
        except (cronsim.CronSimError, ValueError) as exc:
            raise ValueError(f"invalid cron expression {v!r}: {exc}") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as \"Europe/Kyiv\" or \"UTC\")"
                             ) from None
        return v


class SqlSettings(_Section):
    """Bounds of a `newsmon sql` session."""
    timeout_seconds: Annotated[float, Field(gt=0, le=86400)] = 60.0   # then the query is interrupted
    memory_limit: Annotated[str, Field(pattern=r"(?i)^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")] = "2GB"
    max_rows: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000      # rows printed at most


class Settings(_Section):
    warehouse: WarehouseSettings = WarehouseSettings()
    fetch: FetchSettings = FetchSettings()
    feeds: list[FeedSettings] = []
    smtp: SmtpSettings | None = None
    alerts: AlertSettings = AlertSettings()
    nlp: NlpSettings = NlpSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    sql: SqlSettings = SqlSettings()
    source: Path | None = None  # the file these settings came from (set by load_settings)

    @field_validator("feeds")
    @classmethod
    def _unique_feed_names(cls, feeds: list[FeedSettings]) -> list[FeedSettings]:
        # a field validator (not a model one), so the error names the key: "feeds: ..."
        names = [f.name for f in feeds]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique: {', '.join(dupes)}")
        return feeds

    def feed(self, name: str) -> FeedSettings:
        for f in self.feeds:
            if f.name == name:
                return f
        raise ConfigError(f"no feed named {name!r} in {self.source}; known: {', '.join(f.name for f in self.feeds)}")


def resolve_config_path(path: str | os.PathLike | None) -> Path:
    """--config, else $NEWSMON_CONFIG, else the bundled default."""
    if path:
        return Path(path)
    if os.environ.get("NEWSMON_CONFIG"):
        return Path(os.environ["NEWSMON_CONFIG"])
    return DEFAULT_CONFIG


def _relative(base: Path, data: dict) -> dict:
    """Make the file paths of the TOML relative to its directory."""
    wh = data.get("warehouse")
    if isinstance(wh, dict) and isinstance(wh.get("path"), str):
        wh["path"] = str((base / os.path.expanduser(wh["path"])).resolve())
    if isinstance(wh, dict) and isinstance(wh.get("data_path"), str) and wh["data_path"] \
            and "://" not in wh["data_path"]:
        wh["data_path"] = str((base / os.path.expanduser(wh["data_path"])).resolve()) + "/"
    nlp = data.get("nlp")
    if isinstance(nlp, dict):
        for key in ("entities", "topics", "money", "fx", "aid", "lang"):
            if isinstance(nlp.get(key), str):
                nlp[key] = str((base / nlp[key]).resolve())
    for feed in data.get("feeds") or []:
        url = feed.get("url") if isinstance(feed, dict) else None
        # a path, not a URL: no "://" and no scheme ("javascript:alert(1)" stays a URL, and is refused)
        if isinstance(url, str) and url and "://" not in url and len(urllib.parse.urlsplit(url).scheme) < 2:
            feed["url"] = (base / url).resolve().as_uri()
    return data


def _key(loc: tuple) -> str:
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        else:
            parts.append(str(p))
    return ".".join(parts)


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Read and validate a newsmon TOML file. Raises ConfigError naming the bad key."""
    path = resolve_config_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    data = _relative(path.resolve().parent, data)
    data["source"] = str(path.resolve())
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key(err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config/newsmon.toml for the keys)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"config {path}: {key}: {msg}{more}") from None
    for name in ("entities", "topics", "money", "fx", "aid", "lang"):
        p = getattr(settings.nlp, name)
        if not p.exists():
            raise ConfigError(f"config {path}: nlp.{name}: file not found: {p}")
    for index, feed in enumerate(settings.feeds):
        # a local feed is part of the deployment, like the domain files: a file that is not there
        # (a config copied without its folder) is a config error, not a feed failing run after run
        if feed.enabled and feed.url.lower().startswith("file:"):
            local = Path(urllib.request.url2pathname(urllib.parse.urlsplit(feed.url).path))
            if not local.is_file():
                raise ConfigError(f"config {path}: feeds[{index}].url: file not found: {local} (a relative path "
                                  "is relative to the config file's folder)")
    _check_sections(path, "nlp.entities", settings.nlp.entities, ENTITY_SECTIONS)
    return settings


#: The top-level keys of the entity catalog (config/entities.yaml); its loader reads only these.
ENTITY_SECTIONS = ("countries", "organizations", "people", "places")


def _check_sections(config: Path, key: str, path: Path, sections: tuple[str, ...]) -> None:
    """A domain file whose top level names none of its sections, or an unknown one, was read as
    empty (`{foo: 1}` mined 0 claims, silently): a config error naming the key."""
    data = read_yaml(path, key)
    unknown = sorted(str(k) for k in data if k not in sections)
    if unknown or not any(data.get(s) for s in sections):
        what = f"unknown section {unknown[0]!r}" if unknown else "no entries"
        raise ConfigError(f"config {config}: {key}: {path}: {what} (the top level holds "
                          f"{', '.join(sections)})")


#: Parsed YAML documents by the SHA-256 of their bytes (a few domain files: entities.yaml alone takes
#: ~40 ms to parse, and every load_settings checks it). Keyed by content, so an edited file is parsed again.
_PARSED_YAML: dict[str, object] = {}
_PARSED_YAML_MAX = 32


def parse_yaml_file(path: str | os.PathLike) -> object:
    """The YAML document in `path` (safe loader; libyaml's parser when built with it: 8x faster).

    A fresh deep copy per call (callers may change what they get), parsed once per content.
    Raises OSError, UnicodeDecodeError or yaml.YAMLError.
    """
    import copy
    import hashlib

    import yaml

    raw = Path(path).read_bytes()
    key = hashlib.sha256(raw).hexdigest()
    if key not in _PARSED_YAML:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(raw.decode("utf-8"), Loader=loader)
        if len(_PARSED_YAML) >= _PARSED_YAML_MAX:
            _PARSED_YAML.pop(next(iter(_PARSED_YAML)))
        _PARSED_YAML[key] = data
    return copy.deepcopy(_PARSED_YAML[key])


def read_yaml(path: str | os.PathLike, what: str) -> dict:
    """A domain file of config/ as a mapping; ConfigError naming the file when it cannot be read."""
    import yaml

    path = Path(path)
    try:
        data = parse_yaml_file(path) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what} must be a mapping at the top level")
    return data
