"""The 2,274-feed run: every feed of ../shared/corpus in one `newsmon ingest` (issue 11).

    python bench/bench_corpus_run.py [--corpus ../shared/corpus] [--max-concurrency 8]
                                     [--budget 600] [--keep] [--runs 1]

The 2,243 documents of `feedparser-tests/` and the 31 snapshots of `real-feeds/` are served
by the test suite's local HTTP server (`tests/conftest.py`) on 127.0.0.1, each with the
headers its manifest names (as `tests/test_feeds.py` serves them), and listed as 2,274
feeds of one generated config (`per_host_delay = 0`: the feeds all come from one local
host; a temporary warehouse). Their entry pages point at hosts that do not resolve here
(example.org, the real feeds' sites) or at the local server (relative links: a 404).

One `newsmon ingest --config` runs as a subprocess without a Prefect API (the CLI's plain
path), as a cron job would. Reported: wall time, exit code, peak RSS (largest process and
the whole tree, as bench_pipeline.py measures them), the run's counts as the `runs` table
recorded them (feeds polled, pages fetched, hosts given up, pages left pending for the
budget), and from the warehouse the entries stored and the pages still pending (neither
stored nor rejected). `--runs 2` runs the ingest again on the same warehouse (the feeds are
then unchanged; the pending pages are tried again). Target (issue 11): <= 5 min, rc 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import run  # noqa: E402  (wall time, peak RSS of the command and of its tree)
from tests.conftest import Answer, LocalServer  # noqa: E402  (the test suite's real HTTP server)

DIRECTORIES = ("feedparser-tests", "real-feeds")


def served_headers(directory: str, row: dict) -> dict[str, str]:
    """The headers tests/test_feeds.py serves each corpus document with."""
    if directory == "real-feeds":
        return {"Content-Type": "application/atom+xml" if row["file"].endswith(".atom")
                else "application/rss+xml"}
    return dict(row.get("http_headers") or {"Content-Type": "application/xml"})


def serve_feeds(server: LocalServer, corpus: Path) -> list[tuple[str, str]]:
    """Routes for every document of the corpus; (feed name, URL) pairs."""
    feeds = []
    for directory in DIRECTORIES:
        manifest = corpus / directory / "manifest.jsonl"
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
        for i, row in enumerate(rows):
            path = corpus / directory / (row.get("path") or row["file"])
            url = server.add(f"/{directory}/{i}/{path.name}", Answer(path, headers=served_headers(directory, row)))
            feeds.append((f"{directory[:4]}-{i}", url))
    return feeds


def write_config(work: Path, feeds: list[tuple[str, str]], port: int, args) -> Path:
    extra = f"max_concurrency = {args.max_concurrency}\n" if args.max_concurrency else ""
    extra += f"run_budget_seconds = {args.budget}\n" if args.budget else ""
    lines = [f'[warehouse]\npath = "{work / "news.duckdb"}"\n',
             f'[fetch]\nallow_hosts = ["127.0.0.1:{port}"]\nper_host_delay = 0\n{extra}',
             "[alerts]\nrecipients = []\n"]
    lines += [f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds]
    cfg = work / "newsmon.toml"
    cfg.write_text("\n".join(lines))
    return cfg


def warehouse_figures(db: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        counts = json.loads(one("SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1") or "{}")
        return {
            "last run": counts,
            "feed entries (distinct URLs)": one("SELECT count(DISTINCT url) FROM feed_entries"),
            "entry hosts (distinct)": one("SELECT count(DISTINCT lower(split_part(split_part(url, '://', 2), '/', 1)))"
                                          " FROM feed_entries"),
            "pages stored": one("SELECT count(*) FROM pages"),
            "pages rejected (fetch)": one("SELECT count(*) FROM rejections WHERE stage = 'fetch'"),
            "pages pending": one("SELECT count(DISTINCT url) FROM feed_entries WHERE url NOT IN (SELECT url FROM pages)"
                                 " AND url NOT IN (SELECT key FROM rejections WHERE stage = 'fetch')"),
            "fetch attempts recorded": one("SELECT count(*) FROM fetches"),
        }
    finally:
        con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--max-concurrency", type=int, default=0, help="[fetch] max_concurrency (default: the default)")
    ap.add_argument("--budget", type=float, default=0, help="[fetch] run_budget_seconds (default: the default)")
    ap.add_argument("--runs", type=int, default=1, help="ingests on the same warehouse, one after another")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (config, warehouse, log)")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not all((corpus / d / "manifest.jsonl").is_file() for d in DIRECTORIES):
        print(f"no feed corpus at {corpus} (expected {', '.join(DIRECTORIES)} with manifest.jsonl)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    server = LocalServer()
    server.start()
    try:
        feeds = serve_feeds(server, corpus)
        cfg = write_config(work, feeds, server.port, args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "NEWSMON_CONFIG"}
        env.update(PREFECT_HOME=str(work / "prefect-home"), NO_COLOR="1")
        print(f"{len(feeds)} feeds served on {server.origin}; work folder {work}", flush=True)
        worst = 0
        for n in range(1, args.runs + 1):
            before = len(server.requests)
            seconds, peak, tree, rc = run([sys.executable, "-m", "newsmon.cli", "ingest", "--config", str(cfg)],
                                          env, work / "ingest.log")
            worst = max(worst, rc)
            print(f"\nrun {n}: rc {rc}, wall {seconds:.1f} s, peak RSS {peak} MB (tree {tree} MB), "
                  f"{len(server.requests) - before} requests to the local server", flush=True)
            for key, value in warehouse_figures(work / "news.duckdb").items():
                print(f"  {key}: {json.dumps(value, default=str) if isinstance(value, dict) else value}")
        log = (work / "ingest.log").read_text(errors="replace").strip().splitlines()
        summary = [line for line in log if line.startswith(("ingest ", "  problem:", "newsmon:"))]
        print("\nCLI summary lines, run by run:\n" + "\n".join(summary))
        return worst
    finally:
        server.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
