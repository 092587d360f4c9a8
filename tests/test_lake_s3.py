"""The DuckLake's data files in object storage (`data_path = "s3://bucket/prefix/"`): a real S3 API
(moto's server, the `object_store` fixture) and a real PostgreSQL catalog (the `postgres` fixture).

`newsmon ingest` writes Parquet objects into the bucket and `newsmon sql` answers from them as from
a lake in a directory; the analyst's session reads the lake's files and nothing else (no other
bucket, no local file, no ".." out of the prefix); missing credentials or a store that does not
answer are one `newsmon:` line and exit 2. Credentials come from the environment only.
"""
from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from conftest import NEWSMON, cli_env, sample_config
from test_ducklake import assert_same_search
from newsmon.errors import WarehouseError
from newsmon.settings import load_settings
from warehouse import Warehouse
from warehouse.lake import LakeConfig, s3_secret_sql
from warehouse.readonly import run_readonly

ROOT = Path(__file__).resolve().parents[1]
_ids = itertools.count()


# -- no server: the secret and the settings ------------------------------------------------------
LAKE = LakeConfig("postgres:dbname=n", "s3://bucket/newsmon/", s3_endpoint="minio.internal:9000",
                  s3_region="eu-central-1", s3_url_style="path", s3_use_ssl=False)


def test_lake_s3_secret_takes_the_credentials_from_the_environment_and_is_scoped_to_the_lake():
    sql = s3_secret_sql(LAKE, {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "it's secret",
                               "AWS_SESSION_TOKEN": "tok"})
    assert sql.startswith("CREATE OR REPLACE TEMPORARY SECRET newsmon_lake_s3 (TYPE s3, PROVIDER config")
    for part in ("KEY_ID 'AKIA1'", "SECRET 'it''s secret'", "SESSION_TOKEN 'tok'", "SCOPE 's3://bucket/newsmon/'",
                 "ENDPOINT 'minio.internal:9000'", "REGION 'eu-central-1'", "URL_STYLE 'path'", "USE_SSL false"):
        assert part in sql, part
    aws = s3_secret_sql(LakeConfig("postgres:dbname=n", "s3://bucket/p/"),
                        {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    assert "ENDPOINT" not in aws and "REGION" not in aws and "SESSION_TOKEN" not in aws and "USE_SSL true" in aws


@pytest.mark.parametrize("env, missing", [({}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"),
                                          ({"AWS_ACCESS_KEY_ID": "a"}, "AWS_SECRET_ACCESS_KEY is not set")])
def test_lake_s3_missing_credentials_are_named_not_guessed(env, missing):
    with pytest.raises(WarehouseError, match=missing) as err:
        s3_secret_sql(LAKE, env)
    assert "\n" not in str(err.value) and "never go in the config file" in str(err.value)


def test_lake_s3_settings_reach_the_warehouse(tmp_path):
    path = tmp_path / "newsmon.toml"
    path.write_text('[warehouse]\nbackend = "ducklake"\ncatalog = "postgres:dbname=n"\ndata_path = "S3://bucket/newsmon"\n'
                    's3_endpoint = "minio.internal:9000"\ns3_region = "eu-central-1"\ns3_url_style = "path"\n'
                    "s3_use_ssl = false\n")
    lake = Warehouse.from_settings(load_settings(path).warehouse).lake
    assert lake == LAKE and lake.remote
    # with the DuckDB file the lake's keys are ignored, as catalog and data_path are
    path.write_text('[warehouse]\npath = "w.duckdb"\ns3_region = "eu-central-1"\n')
    assert Warehouse.from_settings(load_settings(path).warehouse).lake is None


# -- a lake in moto's bucket -----------------------------------------------------------------------
@pytest.fixture
def s3_env(object_store, monkeypatch):
    """The store's credentials in this process's environment (where open_lake reads them)."""
    for key, value in object_store.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return object_store


def _s3_lake(postgres, store, bucket: str, prefix: str = "newsmon/") -> LakeConfig:
    return LakeConfig(postgres.createdb(f"lake_s3_{next(_ids)}"), f"s3://{bucket}/{prefix}",
                      s3_endpoint=store.endpoint, s3_region="us-east-1", s3_url_style="path", s3_use_ssl=False)


@pytest.fixture
def s3_warehouse(postgres, s3_env, tmp_path):
    """A migrated lake whose data files are in a fresh bucket of the object store, with 3,000 articles
    (enough rows for a Parquet file: DuckLake keeps small inserts inlined in the catalog)."""
    bucket = s3_env.create_bucket(f"lake-{next(_ids)}")
    wh = Warehouse(tmp_path / "local.duckdb", lake=_s3_lake(postgres, s3_env, bucket))
    wh.migrate()
    with wh.transaction() as con:
        con.execute("INSERT INTO article_texts (url, text, text_sha256, extractor_version, extracted_at) "
                    "SELECT 'http://x/' || i, 'text ' || i, 'h', 'v', now() FROM range(3000) t(i)")
    yield wh
    wh.close()


def test_lake_s3_migrations_and_writes_put_parquet_objects_under_the_prefix(s3_warehouse, s3_env):
    bucket = s3_warehouse.lake.data_path.split("/")[2]
    keys = s3_env.keys(bucket)
    assert keys and all(k.startswith("newsmon/main/") for k in keys), keys
    assert any(k.startswith("newsmon/main/article_texts/") and k.endswith(".parquet") for k in keys), keys
    assert s3_warehouse.migrate() == []
    assert s3_warehouse.read("SELECT count(*) AS n FROM articles") == [{"n": 3000}]


def test_lake_s3_sql_reads_the_lake_and_nothing_else(s3_warehouse, s3_env, tmp_path):
    wh, store = s3_warehouse, s3_env
    bucket = wh.lake.data_path.split("/")[2]
    assert run_readonly(wh, "SELECT count(*) AS n, max(url) AS u FROM articles") == (["n", "u"], [(3000, "http://x/999")])
    # what the analyst must not reach: another bucket the same credentials open, a key of the lake's
    # bucket outside its prefix, and a local file
    other = store.create_bucket(f"other-{next(_ids)}")
    store.client.put_object(Bucket=other, Key="x.csv", Body=b"secret\n42\n")
    store.client.put_object(Bucket=bucket, Key="outside.csv", Body=b"secret\n42\n")
    local = tmp_path / "secret.csv"
    local.write_text("secret\n42\n")
    prefix = wh.lake.data_path
    for path in (f"s3://{other}/x.csv", f"s3://{bucket}/outside.csv", f"{prefix}../outside.csv",
                 f"{prefix}../../{other}/x.csv", f"{prefix}main/../../{other}/x.csv", str(local)):
        with pytest.raises(WarehouseError, match="disabled by configuration"):
            run_readonly(wh, f"SELECT * FROM read_csv('{path}')")
    with pytest.raises(WarehouseError, match="disabled by configuration"):   # a path computed in the query
        run_readonly(wh, f"SELECT * FROM read_csv('{prefix}' || repeat('.', 2) || '/../{other}/x.csv')")
    with pytest.raises(WarehouseError, match="refused"):
        run_readonly(wh, f"COPY (SELECT 1) TO '{prefix}evil.parquet'")
    with pytest.raises(WarehouseError, match="refused"):
        run_readonly(wh, "CREATE SECRET s2 (TYPE s3, KEY_ID 'a', SECRET 'b')")
    # the secret's value stays redacted in the session (the key id is not secret)
    (_, [(secret,)]) = run_readonly(wh, "SELECT secret_string FROM duckdb_secrets()")
    assert store.secret not in secret and "secret=redacted" in secret
    assert [k for k in store.keys(bucket) if not k.startswith("newsmon/main/")] == ["outside.csv"]


def test_lake_s3_sql_sees_one_snapshot_while_a_writer_adds_files(s3_warehouse):
    """The session's readable files are those of the snapshot it attached: a commit after that is not
    seen (rather than refused as a file outside the list)."""
    from warehouse.readonly import readonly_connection

    with readonly_connection(s3_warehouse) as con:
        with s3_warehouse.transaction() as w:
            w.execute("INSERT INTO article_texts (url, text, text_sha256, extractor_version, extracted_at) "
                      "SELECT 'http://y/' || i, 'more', 'h', 'v', now() FROM range(3000) t(i)")
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (3000,)
    assert run_readonly(s3_warehouse, "SELECT count(*) FROM articles") == (["count_star()"], [(6000,)])


# -- the CLI: ingest of the bundled sample, newsmon sql, and the errors ----------------------------------
def _sample_config(tmp_path: Path, name: str, warehouse: str) -> Path:
    """The bundled sample feeds (config/newsmon.toml's) on a lake of this test."""
    return sample_config(tmp_path, name, f'backend = "ducklake"\npath = "{name}.duckdb"\n{warehouse}')


def _env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env(tmp_path / name).items() if not k.startswith("AWS_")}
    env.update(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300", **extra)
    return env


def _sql(config: Path, query: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(NEWSMON), "sql", "--config", str(config), "--format", "json", query],
                          capture_output=True, text=True, timeout=300, cwd=config.parent, env=env)


@pytest.mark.slow
def test_lake_s3_ingest_of_the_sample_equals_the_same_ingest_on_a_directory(postgres, object_store, tmp_path):
    bucket = object_store.create_bucket(f"sample-{next(_ids)}")
    s3_cfg = _sample_config(tmp_path, "s3", f'catalog = "{postgres.createdb(f"lake_s3_{next(_ids)}")}"\n'
                                            + object_store.toml(f"s3://{bucket}/newsmon/"))
    dir_cfg = _sample_config(tmp_path, "dir", f'catalog = "{postgres.createdb(f"lake_s3_{next(_ids)}")}"\n'
                                              'data_path = "dir-lake/"')
    env_s3 = _env(tmp_path, "s3", **object_store.env())
    runs = []
    for name, cfg, env in (("s3", s3_cfg, env_s3), ("dir", dir_cfg, _env(tmp_path, "dir"))):
        log = open(tmp_path / f"{name}.log", "w")
        runs.append(subprocess.Popen([str(NEWSMON), "ingest", "--config", str(cfg)], stdout=log,
                                     stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True))
    try:
        codes = [p.wait(900) for p in runs]
    finally:
        for p in runs:
            if p.poll() is None:
                p.kill()
    logs = {n: (tmp_path / f"{n}.log").read_text()[-3000:] for n in ("s3", "dir")}
    assert codes == [0, 0], logs
    keys = object_store.keys(bucket)
    assert any(k.endswith(".parquet") for k in keys) and all(k.startswith("newsmon/") for k in keys), keys
    assert not (tmp_path / "newsmon").exists() and (tmp_path / "dir-lake").is_dir()

    answers = {}
    for query in ("SELECT * FROM positions ORDER BY ALL",
                  "SELECT url, title, language, published_at, text FROM articles ORDER BY url"):
        on_s3, on_dir = _sql(s3_cfg, query, env_s3), _sql(dir_cfg, query, _env(tmp_path, "dir"))
        assert on_s3.returncode == 0 and on_dir.returncode == 0, (on_s3.stderr, on_dir.stderr)
        answers[query] = json.loads(on_s3.stdout)
        assert answers[query] == json.loads(on_dir.stdout), query
    assert all(answers.values()), "the sample gives articles and positions"
    # newsmon export writes a local file from the same read-only session (its file allowed beside the lake's)
    for name, cfg, env in (("s3", s3_cfg, env_s3), ("dir", dir_cfg, _env(tmp_path, "dir"))):
        done = subprocess.run([str(NEWSMON), "export", "aid_pledges", "--config", str(cfg), "--format", "csv",
                               "--out", str(tmp_path / f"{name}.csv")], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "s3.csv").read_text() == (tmp_path / "dir.csv").read_text()
    # full-text search: each lake's index is in its local file; a bucket's gives a directory's rows
    assert_same_search(s3_cfg, dir_cfg, tmp_path, env_s3)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no credentials", "nothing listening", "no such bucket"])
@pytest.mark.parametrize("command", ["ingest", "sql"])
def test_lake_s3_unusable_store_is_one_line_and_exit_2(postgres, object_store, tmp_path, case, command):
    from conftest import free_port

    bucket = object_store.create_bucket(f"err-{next(_ids)}")
    toml = object_store.toml(f"s3://{bucket}/newsmon/")
    env = _env(tmp_path, "err", **object_store.env())
    if case == "no credentials":
        env = _env(tmp_path, "err")
    elif case == "nothing listening":
        toml = toml.replace(object_store.endpoint, f"127.0.0.1:{free_port()}")
    else:
        toml = toml.replace(f"s3://{bucket}/", f"s3://{bucket}-gone/")
    cfg = _sample_config(tmp_path, "err", f'catalog = "{postgres.createdb(f"lake_s3_{next(_ids)}")}"\n' + toml)
    args = ["ingest", "--config", str(cfg)] if command == "ingest" else \
        ["sql", "--config", str(cfg), "SELECT count(*) FROM articles"]
    done = subprocess.run([str(NEWSMON), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("newsmon: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    expected = {"no credentials": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
                "nothing listening": "cannot reach the lake's object store",
                "no such bucket": "cannot reach the lake's object store"}[case]
    assert expected in done.stderr, done.stderr
    assert object_store.secret not in done.stderr
