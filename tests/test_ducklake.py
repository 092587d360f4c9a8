"""The DuckLake backend (catalog in a real PostgreSQL started by the `postgres` fixture):
the same migrations, views and statements as the DuckDB file, keys kept by the writer,
writers serialised across processes, `newsmon sql` read-only, and feed shards."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import sample_config
from newsmon.errors import ConfigError, WarehouseError
from newsmon.settings import load_settings
from tasks.shard import in_shard, parse_shard
from warehouse import Warehouse
from warehouse import queries as q
from warehouse.db import MIGRATIONS, VIEWS, insert_rows
from warehouse.lake import LakeConfig, adapt_ddl, keys_in, table_keys
from warehouse.readonly import run_readonly

ROOT = Path(__file__).resolve().parents[1]
NEWSMON = Path(sys.executable).with_name("newsmon")
UTC = dt.timezone.utc
VIEW_NAMES = ["articles", "article_entities", "aid_pledges", "positions", "events", "changes", "alerts",
              "current_pledges", "topics", "entities"]


# -- DDL for the lake ---------------------------------------------------------------------
def test_lake_adapt_ddl_drops_every_key_of_the_migrations_and_keeps_them_for_the_writer():
    for path in sorted(MIGRATIONS.glob("*.sql")):
        adapted = adapt_ddl(path.read_text())
        assert "PRIMARY KEY" not in adapted.upper(), path.name
    keys = table_keys()
    assert keys["feed_entries"] == ("feed", "url")
    assert keys["alert_outbox"] == ("change_id", "recipient")
    assert keys["rejections"] == ("stage", "key")
    assert keys["pages"] == ("url",) and keys["schema_migrations"] == ("version",)
    assert "fetches" not in keys and "mentions" not in keys  # logs without a key stay keyless


def test_lake_adapt_ddl_keeps_key_columns_not_null():
    sql = "CREATE TABLE IF NOT EXISTS t (a VARCHAR PRIMARY KEY, b INTEGER DEFAULT 0);\n" \
          "CREATE TABLE u (x INT, y INT NOT NULL, PRIMARY KEY (x, y))"
    adapted = adapt_ddl(sql)
    assert "a VARCHAR NOT NULL" in adapted and "PRIMARY" not in adapted
    assert keys_in(sql) == {"t": ("a",), "u": ("x", "y")}


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t (a VARCHAR UNIQUE)",
    "CREATE INDEX t_a ON t (a)",
    "CREATE SEQUENCE ids",
])
def test_lake_adapt_ddl_refuses_what_the_lake_cannot_hold(sql):
    with pytest.raises(WarehouseError, match="DuckLake cannot hold"):
        adapt_ddl(sql)


# -- schema and statements on both backends ---------------------------------------------------
def _describe(wh: Warehouse, name: str) -> list[tuple[str, str]]:
    return [(r["column_name"], r["column_type"]) for r in wh.read(f"DESCRIBE {name}")]


def test_lake_migrations_apply_once_and_give_the_duckdb_views(lake_warehouse, warehouse):
    assert lake_warehouse.migrate() == []
    names = [r["name"] for r in lake_warehouse.read("SELECT name FROM schema_migrations ORDER BY version")]
    assert names == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    for view in VIEW_NAMES:
        assert _describe(lake_warehouse, view) == _describe(warehouse, view), view
    assert len(list(VIEWS.glob("*.sql"))) == len(VIEW_NAMES)


def test_lake_documents_the_same_columns_and_macros_as_the_duckdb_file(lake_warehouse, warehouse):
    # DuckLake refuses COMMENT ON COLUMN of a view and COMMENT ON MACRO: the view files' text stands in
    from warehouse.readonly import public_columns, public_macros

    warehouse.migrate()
    with lake_warehouse.connect() as lake, warehouse.connect(read_only=True) as local:
        for view in VIEW_NAMES:
            on_lake = public_columns(lake, view)
            assert on_lake == public_columns(local, view), view
            assert all(comment for _, _, comment in on_lake), view
        assert public_macros(lake) == public_macros(local)
        assert "pledges_as_of" in [name for name, *_ in public_macros(lake)]


def _load_twice(wh: Warehouse) -> list[dict]:
    t = dt.datetime(2025, 12, 1, tzinfo=UTC)
    first = [dict(stage="fetch", key="u1", reason="gone", rejected_at=t),
             dict(stage="fetch", key="u2", reason="gone", rejected_at=t),
             dict(stage="fetch", key="u1", reason="again", rejected_at=t)]     # same key twice in one batch
    second = [dict(stage="fetch", key="u2", reason="blocked", rejected_at=t),
              dict(stage="extract", key="u1", reason="no_text", rejected_at=t)]
    entries = [dict(feed="f", url="a", title="first", first_seen_at=t), dict(feed="f", url="a", title="dup",
                                                                              first_seen_at=t)]
    with wh.transaction() as con:
        insert_rows(con, "rejections", first[:2], on_conflict="replace")
        insert_rows(con, "rejections", first[2:], on_conflict="replace")
        insert_rows(con, "feed_entries", entries[:1], on_conflict="ignore")
    with wh.transaction() as con:
        insert_rows(con, "rejections", second, on_conflict="replace")
        insert_rows(con, "feed_entries", entries[1:], on_conflict="ignore")
    return wh.read("SELECT stage, key, reason FROM rejections ORDER BY stage, key") + \
        wh.read("SELECT feed, url, title FROM feed_entries")


def test_lake_insert_rows_keeps_keys_unique_like_the_duckdb_constraints(lake_warehouse, warehouse):
    on_lake = _load_twice(lake_warehouse)
    assert on_lake == _load_twice(warehouse)
    assert on_lake == [dict(stage="extract", key="u1", reason="no_text"), dict(stage="fetch", key="u1", reason="again"),
                       dict(stage="fetch", key="u2", reason="blocked"), dict(feed="f", url="a", title="first")]


def test_lake_insert_rows_refuses_to_guess_a_key(lake_warehouse):
    with pytest.raises(WarehouseError, match="no PRIMARY KEY"), lake_warehouse.transaction() as con:
        insert_rows(con, "fetches", [dict(url="u", attempted_at=dt.datetime.now(UTC), outcome="ok")],
                    on_conflict="ignore")


@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_lake_feed_and_run_statements_are_idempotent_on_both(backend, lake_warehouse, warehouse):
    wh = lake_warehouse if backend == "ducklake" else warehouse
    with wh.transaction() as con:
        q.start_run(con, "r1", "ingest")
        q.start_run(con, "r1", "ingest")
        q.sync_feeds(con, [("a", "http://x/a"), ("b", "http://x/b")])
        con.execute("UPDATE feeds SET etag = 'e1' WHERE name IN ('a', 'b')")
    with wh.transaction() as con:
        q.sync_feeds(con, [("a", "http://x/a"), ("b", "http://x/b2")])  # b moved: its validator goes
        q.add_url_entries(con, "a", "http://x/a", ["http://x/1"])
    assert wh.read("SELECT count(*) AS n FROM runs") == [{"n": 1}]
    assert wh.read("SELECT name, url, etag FROM feeds ORDER BY name") == [
        dict(name="a", url="http://x/a", etag="e1"), dict(name="b", url="http://x/b2", etag=None)]


# -- concurrent writers ------------------------------------------------------------------------
@pytest.mark.parametrize("writers", ["two processes", "two threads of one process"])
def test_lake_write_transactions_of_two_writers_take_turns(lake_warehouse, writers):
    """Two writers both check that a run id is new and insert it. DuckLake alone would commit
    both (appends never conflict); the writer lock makes the second wait, see the first's row,
    and insert nothing. Two Warehouse objects stand for two processes (each its own DuckDB and
    PostgreSQL sessions); one Warehouse used from two threads shares its DuckDB."""
    other = Warehouse(lake_warehouse.path, lock_timeout=30, lake=lake_warehouse.lake) \
        if writers == "two processes" else lake_warehouse
    inside = threading.Barrier(2, timeout=30)
    spans: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []

    def write(wh: Warehouse, name: str) -> None:
        try:
            wh.read("SELECT 1")  # attach first, so that both reach the lock together
            inside.wait()
            with wh.transaction() as con:
                start = time.monotonic()
                (n,) = con.execute("SELECT count(*) FROM runs WHERE run_id = 'same'").fetchone()
                time.sleep(0.5)
                if n == 0:
                    con.execute("INSERT INTO runs (run_id, flow, started_at) VALUES ('same', ?, now())", [name])
            spans[name] = (start, time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w, n)) for w, n in ((lake_warehouse, "one"), (other, "two"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if other is not lake_warehouse:
        other.close()
    assert not errors
    assert lake_warehouse.read("SELECT count(*) AS n FROM runs WHERE run_id = 'same'") == [{"n": 1}]
    (a0, a1), (b0, b1) = sorted(spans.values())
    assert b0 >= a1 - 0.05  # the second transaction began after the first committed


def test_lake_two_processes_create_and_migrate_a_new_lake_at_once(postgres, tmp_path):
    """The first ATTACH of an empty catalog creates DuckLake's tables; two workers starting
    together on a new lake must not collide there, nor apply a migration twice."""
    lake = LakeConfig(postgres.createdb("lake_new_together"), str(tmp_path / "lake") + "/")
    whs = [Warehouse(tmp_path / "local.duckdb", lock_timeout=60, lake=lake) for _ in range(2)]
    start = threading.Barrier(2, timeout=30)
    results: list = []

    def migrate(wh: Warehouse) -> None:
        start.wait()
        try:
            results.append(wh.migrate())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            results.append(exc)

    threads = [threading.Thread(target=migrate, args=(wh,)) for wh in whs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    files = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert sorted(results, key=len) == [[], files]
    assert whs[0].read("SELECT count(*) AS n FROM schema_migrations") == [{"n": len(files)}]
    for wh in whs:
        wh.close()


def test_lake_writer_gives_up_after_lock_timeout_with_a_clear_error(lake_warehouse):
    impatient = Warehouse(lake_warehouse.path, lock_timeout=0.5, lake=lake_warehouse.lake)
    try:
        with lake_warehouse.transaction():
            with pytest.raises(WarehouseError, match="kept writing to the lake"):
                with impatient.transaction():
                    pass
    finally:
        impatient.close()


def test_lake_reads_do_not_wait_for_a_writer(lake_warehouse):
    reader = Warehouse(lake_warehouse.path, lock_timeout=0.5, lake=lake_warehouse.lake)
    try:
        with lake_warehouse.transaction() as con:
            con.execute("INSERT INTO runs (run_id, flow, started_at) VALUES ('pending', 'ingest', now())")
            assert reader.read("SELECT count(*) AS n FROM runs") == [{"n": 0}]  # the committed snapshot
        assert reader.read("SELECT count(*) AS n FROM runs") == [{"n": 1}]
    finally:
        reader.close()


# -- newsmon sql ---------------------------------------------------------------------------------
def test_lake_sql_reads_views_and_refuses_writes_and_other_files(lake_warehouse, tmp_path):
    with lake_warehouse.transaction() as con:
        con.execute("INSERT INTO article_texts (url, text, text_sha256, extractor_version, extracted_at) "
                    "SELECT 'http://x/' || i, 'text', 'h', 'v', now() FROM range(3) t(i)")
    assert run_readonly(lake_warehouse, "SELECT count(*) AS n FROM articles") == (["n"], [(3,)])
    with pytest.raises(WarehouseError, match="refused"):
        run_readonly(lake_warehouse, "DELETE FROM article_texts")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(WarehouseError, match="disabled by configuration"):
        run_readonly(lake_warehouse, f"SELECT * FROM read_csv('{secret}')")
    # the catalog is attached read-only too: its PostgreSQL session cannot write
    assert run_readonly(lake_warehouse, "SELECT * FROM postgres_query('__ducklake_metadata_lake', "
                                        "'SELECT current_setting(''transaction_read_only'') AS ro')") == (["ro"], [("on",)])


# -- settings and shards -----------------------------------------------------------------------
def _config(tmp_path: Path, warehouse: str) -> Path:
    path = tmp_path / "newsmon.toml"
    path.write_text(f"[warehouse]\n{warehouse}\n")
    return path


def test_lake_settings_resolve_the_data_path_and_name_missing_keys(tmp_path):
    s = load_settings(_config(tmp_path, 'backend = "ducklake"\ncatalog = "postgres:dbname=n host=h"\n'
                                        'data_path = "lake"'))
    assert s.warehouse.data_path == str(tmp_path / "lake") + "/"
    assert Warehouse.from_settings(s.warehouse).lake == LakeConfig("postgres:dbname=n host=h", s.warehouse.data_path)
    assert load_settings(_config(tmp_path, 'backend = "ducklake"\ncatalog = "postgres:dbname=n"\n'
                                           'data_path = "s3://b/p"')).warehouse.data_path == "s3://b/p/"
    with pytest.raises(ConfigError, match="warehouse: .*needs data_path"):
        load_settings(_config(tmp_path, 'backend = "ducklake"\ncatalog = "postgres:dbname=n"'))
    with pytest.raises(ConfigError, match="warehouse.catalog"):
        load_settings(_config(tmp_path, 'backend = "ducklake"\ncatalog = "sqlite:x.db"\ndata_path = "d/"'))
    with pytest.raises(ConfigError, match="warehouse.backend"):
        load_settings(_config(tmp_path, 'backend = "iceberg"'))
    assert Warehouse.from_settings(load_settings(_config(tmp_path, 'path = "w.duckdb"')).warehouse).lake is None


def test_shard_every_feed_falls_in_exactly_one_shard():
    urls = [f"https://outlet{i}.example/feed.xml" for i in range(200)]
    for n in (1, 2, 3, 5):
        owners = [[i for i in range(1, n + 1) if in_shard(u, i, n)] for u in urls]
        assert all(len(o) == 1 for o in owners)
        if n > 1:
            assert len({o[0] for o in owners}) == n  # no shard is left empty by 200 feeds
    assert parse_shard(" 2/3 ") == (2, 3)
    for bad in ("0/2", "3/2", "1", "a/b", ""):
        with pytest.raises(ConfigError, match="i/n"):
            parse_shard(bad)


# -- the whole pipeline: two workers on the lake == one run on the DuckDB file --------------------
#: Searches of the bundled sample: (newsmon search arguments, search_articles arguments).
SAMPLE_SEARCHES = [(["ukraine"], "'ukraine'"), (["winter aid"], "'winter aid'"),
                   (["billion", "--since", "2025-12-01"], "'billion', since := DATE '2025-12-01'"),
                   (["security guarantees", "--any"], "'security guarantees', any_term := true")]


def assert_same_search(config: Path, reference: Path, cwd: Path, env: dict[str, str]) -> None:
    """`newsmon search` and `newsmon sql ... search_articles(...)` give the same rows on `config` as on
    `reference` for SAMPLE_SEARCHES, and find something."""
    def run(*args: str) -> list:
        done = subprocess.run([str(NEWSMON), *args, "--format", "json"], capture_output=True, text=True,
                              timeout=300, cwd=cwd, env=env)
        assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout)

    found = 0
    for cli_args, macro_args in SAMPLE_SEARCHES:
        for args in (["search", *cli_args], ["sql", f"SELECT * FROM search_articles({macro_args})"]):
            expected = run(*args, "--config", str(reference))
            assert run(*args, "--config", str(config)) == expected, args
            found += len(expected)
    assert found, "the sample's searches find articles"


_VOLATILE = {"extracted_at", "fetched_at", "detected_at", "created_at", "last_attempt_at", "sent_at"}


def _view_rows(wh: Warehouse) -> dict[str, list[tuple]]:
    out = {}
    for view in VIEW_NAMES:
        cols = [c for c, _ in _describe(wh, view) if c not in _VOLATILE]
        select = ", ".join(f'"{c}"' for c in cols)
        out[view] = sorted(tuple(map(repr, r.values())) for r in wh.read(f"SELECT {select} FROM {view}"))
    return out


def _sample_config(tmp_path: Path, name: str, warehouse: str) -> Path:
    """The bundled sample feeds (config/newsmon.toml's), on a warehouse of this test."""
    return sample_config(tmp_path, name, f"{warehouse}\nlock_timeout_seconds = 300")


def _newsmon(args: list[str], tmp_path: Path, home: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    # every CLI run starts a temporary Prefect server; two or three at once on a busy machine are slow to come up
    env.update(PREFECT_HOME=str(tmp_path / home), NO_COLOR="1", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    log = open(tmp_path / f"{home}.log", "w")
    return subprocess.Popen([str(NEWSMON), *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                            start_new_session=True)


@pytest.mark.slow
def test_lake_two_ingest_workers_leave_the_views_of_one_duckdb_ingest(postgres, tmp_path):
    catalog = postgres.createdb("lake_two_workers")
    lake_cfg = _sample_config(tmp_path, "lake", f'backend = "ducklake"\ncatalog = "{catalog}"\n'
                                                f'data_path = "lake/"\npath = "local.duckdb"')
    file_cfg = _sample_config(tmp_path, "file", 'path = "file.duckdb"')
    settings = load_settings(lake_cfg)
    shards = {i: [f.name for f in settings.feeds if in_shard(f.url, i, 2)] for i in (1, 2)}
    assert sorted(shards[1] + shards[2]) == sorted(f.name for f in settings.feeds)

    lake = Warehouse.from_settings(settings.warehouse)
    lake.migrate()  # so that `newsmon sql` has the views while the workers run
    workers = [_newsmon(["ingest", "--config", str(lake_cfg), "--shard", f"{i}/2"], tmp_path, f"worker{i}")
               for i in (1, 2)]
    procs = list(workers)
    answers = []
    try:
        while any(w.poll() is None for w in workers):
            done = subprocess.run([str(NEWSMON), "sql", "--config", str(lake_cfg), "--format", "csv",
                                   "SELECT count(*) AS n FROM articles"], capture_output=True, text=True,
                                  timeout=120, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
            answers.append((done.returncode, done.stdout, done.stderr))
        procs.append(_newsmon(["ingest", "--config", str(file_cfg)], tmp_path, "single"))  # the reference, alone
        codes = [p.wait(600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    logs = {n: (tmp_path / f"{n}.log").read_text()[-3000:] for n in ("worker1", "worker2", "single")}
    assert codes == [0, 0, 0], logs
    assert answers and all(rc == 0 and out.startswith("n\n") for rc, out, _ in answers), answers
    polls = lake.read("SELECT run_id, list(feed ORDER BY feed) AS feeds FROM feed_polls GROUP BY run_id")
    assert sorted(r["feeds"] for r in polls) == sorted(sorted(f) for f in shards.values() if f)  # no feed twice
    runs = [json.loads(r["counts"]) for r in lake.read("SELECT counts FROM runs WHERE flow = 'ingest'")]
    (articles,) = lake.read("SELECT count(*) AS n FROM article_texts")
    assert len(runs) == 2 and articles["n"] > 0
    for stage, key in (("articles", "extracted"), ("claims", "articles")):  # no page parsed twice
        assert sum(r[stage].get(key, 0) for r in runs) == articles["n"], runs

    file_wh = Warehouse(tmp_path / "file.duckdb")
    # the topic/entity catalog views are filled by the read commands (the lake's `newsmon sql` above)
    from newsmon.reading import refresh_derived

    refresh_derived(load_settings(file_cfg), file_wh)
    refresh_derived(settings, lake)
    expected, got = _view_rows(file_wh), _view_rows(lake)
    assert expected["articles"] and expected["positions"] and expected["changes"]  # the sample has something
    for view in VIEW_NAMES:
        assert got[view] == expected[view], view
    for table, key in (("article_texts", "url"), ("pages", "url"), ("feed_entries", "feed, url"),
                       ("mined_articles", "url"), ("change_log", "change_id"), ("alert_outbox", "change_id, recipient")):
        dupes = lake.read(f"SELECT {key}, count(*) AS n FROM {table} GROUP BY ALL HAVING count(*) > 1")
        assert dupes == [], table
    # full-text search: the lake's index (in its local file) finds what the DuckDB file's finds
    assert_same_search(lake_cfg, file_cfg, tmp_path, dict(os.environ, NO_COLOR="1"))
    sql = subprocess.run([str(NEWSMON), "sql", "--config", str(lake_cfg), "SELECT actor_group, topic, stance "
                          "FROM positions ORDER BY ALL LIMIT 3"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert sql.returncode == 0 and "actor_group" in sql.stdout and "(3 rows)" in sql.stdout, sql.stderr
    lake.close()
