"""The DuckLake backend against the DuckDB file, as ratios measured in the same run.

    python bench/bench_lake.py [--transactions 100] [--rows 20000]

A temporary PostgreSQL cluster is started (tests/conftest.py's `temporary_postgres`; needs
Debian's `postgresql` binaries), with a fresh catalog database per lake, and removed afterwards.

Measures, each on the DuckDB file (baseline) and on the lake:
- write transaction latency: `--transactions` small write transactions (one row each), ms each;
- bulk load: `--rows` feed entries through insert_rows(on_conflict="ignore"), then the same rows again
  (all ignored), rows/s;
- `newsmon sql`: run_readonly of one count (open + attach + query), ms;
- the bundled sample through every stage in-process (poll, fetch, extract, mine, changes, alerts;
  no Prefect server): one process on the file, one process on the lake, and two processes on the
  lake at once with `shard` 1/2 and 2/2 (wall time until both finish).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_pipeline(config: str, shard: str | None) -> dict:
    """Every stage of one ingest run, in this process, without Prefect (the tasks' plain functions)."""
    from flows import notify, stages
    from newsmon.settings import load_settings
    from tasks.shard import in_shard, parse_shard
    from warehouse import Warehouse
    from warehouse import queries as q

    settings = load_settings(config)
    feeds = None
    if shard:
        i, n = parse_shard(shard)
        feeds = [f.name for f in settings.feeds if in_shard(f.url, i, n)]
    wh = Warehouse.from_settings(settings.warehouse)
    run_id = str(uuid.uuid4())
    wh.migrate()
    with wh.transaction() as con:
        q.start_run(con, run_id, "bench")
    steps = {"feeds": lambda: stages.poll_feeds.fn(settings, wh, run_id, feeds=feeds),
             "pages": lambda: stages.fetch_pages.fn(settings, wh, run_id, feeds=feeds),
             "articles": lambda: stages.extract_articles.fn(settings, wh, run_id, feeds=feeds),
             "claims": lambda: stages.mine_articles.fn(settings, wh, run_id, feeds=feeds),
             "changes": lambda: notify.detect_changes.fn(settings, wh, run_id),
             "alerts": lambda: notify.send_alerts.fn(settings, wh, run_id)}
    counts, seconds = {}, {}
    for name, step in steps.items():
        t = time.perf_counter()
        counts[name] = step()
        seconds[name] = round(time.perf_counter() - t, 2)
    with wh.transaction() as con:
        q.finish_run(con, run_id, counts)
    wh.close()
    return {"seconds": seconds, "counts": counts}


def sample_config(work: Path, name: str, warehouse: str) -> Path:
    text = (ROOT / "config" / "newsmon.toml").read_text()
    feeds = text[text.index("[[feeds]]"):text.index("# [smtp]")].replace('url = "sample/', f'url = "{ROOT}/config/sample/')
    path = work / f"{name}.toml"
    path.write_text(f"[warehouse]\n{warehouse}\nlock_timeout_seconds = 300\n\n{feeds}\n"
                    "[alerts]\nrecipients = [\"analyst@example.org\"]\n")
    return path


def timed_workers(config: Path, shards: list[str | None]) -> float:
    """Wall time of len(shards) pipeline processes started together (each loads spaCy itself)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", config.as_posix(), *(["--shard", s] if s else [])],
                              stdout=subprocess.PIPE, text=True) for s in shards]
    for p in procs:
        out, _ = p.communicate(timeout=1800)
        if p.returncode:
            raise SystemExit(f"worker failed ({p.returncode}): {out}")
        print(f"{config.stem} worker: {json.loads(out.splitlines()[-1])['seconds']}", file=sys.stderr)
    return time.perf_counter() - t0


def measure(args, work: Path, new_catalog) -> dict:
    from warehouse import Warehouse
    from warehouse import queries as q
    from warehouse.db import insert_rows
    from warehouse.lake import LakeConfig
    from warehouse.readonly import run_readonly

    def backends():
        yield "duckdb", Warehouse(work / f"{uuid.uuid4().hex}.duckdb")
        yield "ducklake", Warehouse(work / "local.duckdb",
                                    lake=LakeConfig(new_catalog(), str(work / uuid.uuid4().hex) + "/"))

    out: dict = {}
    for name, wh in backends():
        t = time.perf_counter()
        wh.migrate()
        r = out.setdefault(name, {})
        r["migrate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(args.transactions):
            with wh.transaction() as con:
                q.start_run(con, f"bench-{i}", "bench")
        r["write_txn_ms"] = (time.perf_counter() - t) / args.transactions * 1000
        now = dt.datetime.now(dt.timezone.utc)
        rows = [dict(feed="bench", url=f"https://example.org/{i}", title=f"t{i}", first_seen_at=now)
                for i in range(args.rows)]
        for label in ("bulk_insert_rows_per_s", "bulk_ignore_rows_per_s"):
            t = time.perf_counter()
            with wh.transaction() as con:
                insert_rows(con, "feed_entries", rows, on_conflict="ignore")
            r[label] = args.rows / (time.perf_counter() - t)
        assert wh.read("SELECT count(*) AS n FROM feed_entries")[0]["n"] == args.rows
        t = time.perf_counter()
        for _ in range(5):
            run_readonly(wh, "SELECT count(*) FROM articles")
        r["sql_ms"] = (time.perf_counter() - t) / 5 * 1000
        wh.close()

    file_cfg = sample_config(work, "file", f'path = "{uuid.uuid4().hex}.duckdb"')
    out["duckdb"]["sample_one_process_s"] = timed_workers(file_cfg, [None])
    lake1 = sample_config(work, "lake1", f'backend = "ducklake"\ncatalog = "{new_catalog()}"\n'
                                         f'data_path = "{uuid.uuid4().hex}/"')
    out["ducklake"]["sample_one_process_s"] = timed_workers(lake1, [None])
    lake2 = sample_config(work, "lake2", f'backend = "ducklake"\ncatalog = "{new_catalog()}"\n'
                                         f'data_path = "{uuid.uuid4().hex}/"')
    out["ducklake"]["sample_two_processes_s"] = timed_workers(lake2, ["1/2", "2/2"])
    d, l = out["duckdb"], out["ducklake"]
    out["ratios"] = {
        "write_txn_lake_over_file": l["write_txn_ms"] / d["write_txn_ms"],
        "bulk_insert_lake_over_file": l["bulk_insert_rows_per_s"] / d["bulk_insert_rows_per_s"],
        "sql_lake_over_file": l["sql_ms"] / d["sql_ms"],
        "sample_lake_over_file": l["sample_one_process_s"] / d["sample_one_process_s"],
        "sample_two_lake_workers_over_file": l["sample_two_processes_s"] / d["sample_one_process_s"],
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, default=100)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--shard", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import logging

        logging.disable(logging.WARNING)  # "alerts due but no [smtp]": expected here
        print(json.dumps(run_pipeline(args.worker, args.shard), default=str))
        return 0
    with tempfile.TemporaryDirectory(prefix="newsmon-bench-lake-") as tmp:
        work = Path(tmp)
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import pg_unavailable, temporary_postgres

        reason = pg_unavailable()
        if reason:
            raise SystemExit(reason)
        with temporary_postgres() as pg:
            ids = iter(range(100))
            result = measure(args, work, lambda: pg.createdb(f"bench_{next(ids)}"))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
