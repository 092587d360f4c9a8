"""Full-text search costs, as ratios against plain DuckDB work on the same rows in the same run.

    python bench/bench_search.py [--corpus ../shared/corpus/zyte-articles] [--copies 10]

Texts: the hand-written ground-truth bodies of the 181 real pages of the Zyte benchmark,
stored `--copies` times under distinct URLs (a warehouse of 1,810 articles by default).

- a two-word search (`search_articles`: BM25 rank, stems, snippets) against the
  `text ILIKE '%...%'` scan it replaces: target ratio <= 2 (search may cost at most twice
  the scan that finds less);
- index rebuild (`warehouse.search.refresh_index`, paid by the first search after new
  articles: fts rebuilds whole) against loading the same rows into article_texts
  (`insert_rows`), and per article: reported, no target; it is why only searches rebuild;
- the freshness check a search pays on a fresh index (`index_is_stale`) against
  `SELECT count(*) FROM article_texts`: reported (both are milliseconds).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warehouse import Warehouse  # noqa: E402
from warehouse.db import insert_rows  # noqa: E402
from warehouse.search import index_is_stale, load_fts, refresh_index  # noqa: E402


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "zyte-articles"))
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--query", default="video games")
    args = ap.parse_args()
    truth = json.loads((Path(args.corpus) / "ground-truth.json").read_text(encoding="utf-8"))
    bodies = [v["articleBody"] for v in truth.values() if v.get("articleBody")]
    now = dt.datetime.now(dt.timezone.utc)
    rows = [dict(url=f"https://bench.example/{c}/{i}", title=body.split("\n", 1)[0][:120], published_at=now,
                 language="en", text=body, text_sha256=hashlib.sha256(f"{c}{body}".encode()).hexdigest(),
                 extractor_version="bench", extracted_at=now)
            for c in range(args.copies) for i, body in enumerate(bodies)]
    words = sum(len(r["text"].split()) for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        wh.migrate()

        def load() -> None:
            with wh.transaction() as con:
                con.execute("DELETE FROM article_texts")
                insert_rows(con, "article_texts", rows)

        t_load = timed(load)

        def rebuild() -> None:
            with wh.transaction() as con:
                con.execute("DELETE FROM derived_state WHERE name = 'search_index'")
                refresh_index(con)

        t_index = timed(rebuild)
        with wh.connect(read_only=True) as con:
            load_fts(con)
            assert not index_is_stale(con)
            t_count = timed(lambda: con.execute("SELECT count(*) FROM article_texts").fetchall(), 5)
            t_check = timed(lambda: index_is_stale(con), 5)
            pattern = f"%{args.query}%"
            t_scan = timed(lambda: con.execute("SELECT url FROM article_texts WHERE text ILIKE ?",
                                               [pattern]).fetchall(), 5)
            t_search = timed(lambda: con.execute("SELECT url, snippet FROM search_articles(?) LIMIT 20",
                                                 [args.query]).fetchall(), 5)
            found = len(con.execute("SELECT url FROM search_articles(?)", [args.query]).fetchall())
            scanned = len(con.execute("SELECT url FROM article_texts WHERE text ILIKE ?", [pattern]).fetchall())
    print(f"articles: {len(rows)} ({words:,} words)")
    print(f"load into article_texts: {t_load:.3f}s; index rebuild: {t_index:.3f}s "
          f"({t_index / len(rows) * 1000:.1f} ms an article); ratio {t_index / t_load:.2f}")
    print(f"fresh-index check: {t_check * 1000:.2f}ms; count(*): {t_count * 1000:.2f}ms; "
          f"ratio {t_check / t_count:.2f}")
    print(f"search {args.query!r}: {t_search * 1000:.1f}ms, {found} articles; ILIKE scan: {t_scan * 1000:.1f}ms, "
          f"{scanned} articles; ratio {t_search / t_scan:.2f} (target <= 2)")
    return 0 if t_search / t_scan <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
