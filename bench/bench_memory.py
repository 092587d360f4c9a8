"""Peak memory of a backfill against its size: does a 20,000-article backfill stay under 1 GB, in constant memory?

    python bench/bench_memory.py [--sizes 1000,5000,20000] [--per-feed 500] [--days 120]
                                 [--command backfill|ingest] [--processes 1] [--keep]

For each N, N synthetic-but-realistic news pages are served by the test suite's local HTTP
server on 127.0.0.1 (`tests/conftest.py`), listed by ceil(N / per-feed) local RSS feeds, their
publication dates spread evenly over `--days` days from 2025-01-01. Each page is built when it is
requested from the texts of the shared corpus, read by path (never copied into the repository):
news-length, 5 to 9 paragraphs of the Zyte articles' bodies (`../shared/corpus/zyte-articles`,
`articleBody` of its manifest) with one or two passages of the eval's sentence banks
(`../shared/eval/sentences/*.yaml`: positions and aid pledges, so that the change stage has claims
to read), drawn per URL by a seeded RNG: no two pages are syndicated copies of each other.

Then, in a fresh warehouse, one `newsmon backfill --since 2025-01-01 --until LAST` (or `newsmon
ingest`) runs as a subprocess without a Prefect API: it polls the feeds, downloads the N pages,
extracts, mines, detects changes. Reported per N: wall time, rc, articles / mined / positions /
pledges / changes stored, peak RSS of the largest process (`os.wait4`'s ru_maxrss) and of the
whole process tree (the sum over the command and its children, sampled from /proc every 0.2 s),
and at the end the ratio peak(N_largest) / peak(N_smallest): constant memory gives ~1.0.

`--stages` also prints the tree's peak RSS while each stage ran (from the CLI's progress lines
on stderr: slower, as the progress bar is on).
"""
from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import tree_rss_mb  # noqa: E402
from tests.conftest import Answer, LocalServer  # noqa: E402  (the test suite's real HTTP server)

NEWSMON = [sys.executable, "-m", "newsmon.cli"]
START = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


# -- texts ------------------------------------------------------------------------------------
def load_texts(zyte: Path, banks: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Paragraphs of the Zyte articles' bodies; (text, first words) of the sentence banks' passages."""
    import yaml

    paragraphs = []
    for line in (zyte / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            body = json.loads(line).get("articleBody") or ""
            paragraphs += [p.strip() for p in body.split("\n") if 80 <= len(p.strip()) <= 1200]
    passages = []
    for bank in sorted(banks.glob("*.yaml")):
        for item in yaml.safe_load(bank.read_text(encoding="utf-8")) or []:
            if isinstance(item, dict) and item.get("text"):
                passages.append(" ".join(str(item["text"]).split()))
    if not paragraphs or not passages:
        raise SystemExit(f"no texts under {zyte} or {banks}")
    return paragraphs, [(p, " ".join(p.split()[:8])) for p in passages]


def published(i: int, n: int, days: int) -> dt.datetime:
    """Page i of n, spread evenly over `days` days (to the minute)."""
    return START + dt.timedelta(minutes=(i * days * 24 * 60) // max(n, 1))


def page_html(i: int, n: int, days: int, paragraphs: list[str], passages: list[tuple[str, str]]) -> bytes:
    rng = random.Random(i)
    body = rng.sample(paragraphs, rng.randint(5, 9))
    for _ in range(rng.randint(1, 2)):
        body.insert(rng.randint(0, len(body)), rng.choice(passages)[0])
    title = f"{rng.choice(passages)[1]} ... (report {i})"
    when = published(i, n, days).isoformat()
    paras = "\n".join(f"<p>{escape(p)}</p>" for p in body)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta property="article:published_time" content="{when}"></head><body>'
            f'<header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>'
            f'<article><h1>{escape(title)}</h1><p class="byline">By Staff Reporter</p>\n{paras}\n</article>'
            f'<footer>Copyright bench news</footer></body></html>').encode()


def feed_xml(name: str, items: list[tuple[int, str, dt.datetime]]) -> bytes:
    out = [f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{name}</title>'
           '<link>http://127.0.0.1/</link><description>bench feed</description>']
    for i, url, when in items:
        out.append(f"<item><title>report {i}</title><link>{escape(url)}</link><guid>{escape(url)}</guid>"
                   f"<pubDate>{email.utils.format_datetime(when, usegmt=True)}</pubDate></item>")
    out.append("</channel></rss>\n")
    return "".join(out).encode()


def serve(server: LocalServer, prefix: str, n: int, per_feed: int, days: int, paragraphs: list[str],
          passages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Routes for n pages (built on request) and their feeds; returns (feed name, feed URL)."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    feeds = []
    n_feeds = math.ceil(n / per_feed)
    for f in range(n_feeds):
        items = []
        for i in range(f, n, n_feeds):   # feed f lists every n_feeds-th page: each feed spans the window
            url = server.add(f"/{prefix}/a/{i}.html",
                             lambda req, i=i: Answer(page_html(i, n, days, paragraphs, passages), headers=html))
            items.append((i, url, published(i, n, days)))
        feeds.append((f"f{f}", server.add(f"/{prefix}/feed{f}.xml",
                                          Answer(feed_xml(f"f{f}", items),
                                                 headers={"Content-Type": "application/rss+xml"}))))
    return feeds


def write_config(work: Path, feeds: list[tuple[str, str]], port: int, processes: int | None) -> Path:
    cfg = work / "newsmon.toml"
    nlp = f"\n[nlp]\nprocesses = {processes}\n" if processes else ""
    listed = "".join(f'\n[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds)
    cfg.write_text(f"""[warehouse]
path = "{work / 'news.duckdb'}"

[fetch]
allow_hosts = ["127.0.0.1:{port}"]
per_host_delay = 0
run_budget_seconds = 86400

[alerts]
recipients = []
{nlp}{listed}""")
    return cfg


# -- running ----------------------------------------------------------------------------------
def run(cmd: list[str], env: dict[str, str], log: Path, stages: bool) -> dict:
    """Run `cmd`; wall s, rc, peak RSS (largest process; tree), and with `stages` the tree's peak per stage."""
    t0 = time.perf_counter()
    per_stage: dict[str, float] = {}
    began: dict[str, int] = {}   # stage -> second it was first seen
    with log.open("ab") as out, open(log.with_suffix(".stderr"), "ab") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        tree = 0.0
        errpath = log.with_suffix(".stderr")
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = tree_rss_mb(proc.pid)
            tree = max(tree, now)
            if stages:
                stage = _current_stage(errpath)
                if stage not in per_stage:
                    began[stage] = round(time.perf_counter() - t0)
                per_stage[stage] = max(per_stage.get(stage, 0.0), now)
            time.sleep(0.2)
    return dict(seconds=time.perf_counter() - t0, rc=os.waitstatus_to_exitcode(status),
                rss=usage.ru_maxrss // 1024, tree=round(tree), stages={k: f"{round(v)} MB from {began[k]} s" for k, v in per_stage.items()})


def _current_stage(errpath: Path) -> str:
    """The stage running now, from the CLI's stage lines on stderr ("  3/8 articles: ..." when a stage ends)."""
    try:
        text = errpath.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "?"
    done = re.findall(r"^\s*(\d+)/(\d+) (\w+)", text, flags=re.M)
    return f"after {done[-1][2]}" if done else "first stage"


def counts(cfg: Path, env: dict[str, str]) -> dict[str, int]:
    sql = ("SELECT (SELECT count(*) FROM articles) AS articles, (SELECT count(*) FROM mined_articles) AS mined, "
           "(SELECT count(*) FROM positions) AS positions, (SELECT count(*) FROM aid_pledges) AS pledges, "
           "(SELECT count(*) FROM changes) AS changes, (SELECT count(DISTINCT story_id) FROM articles "
           "WHERE story_id IS NOT NULL) AS stories")
    out = subprocess.run([*NEWSMON, "sql", "--config", str(cfg), "--format", "json", sql], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    return json.loads(out.stdout)[0] if out.returncode == 0 else {"error": out.stderr.strip()[-300:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000", help="article counts, comma-separated (e.g. 1000,5000,20000)")
    ap.add_argument("--per-feed", type=int, default=500, help="entries per feed (max_feed_entries is 1000)")
    ap.add_argument("--days", type=int, default=120, help="days the publication dates spread over")
    ap.add_argument("--command", choices=("backfill", "ingest"), default="backfill")
    ap.add_argument("--processes", type=int, default=None, help="[nlp] processes (default: the config default)")
    ap.add_argument("--stages", action="store_true", help="peak RSS per stage (runs with the progress bar)")
    ap.add_argument("--zyte", default=str(ROOT.parent / "shared" / "corpus" / "zyte-articles"))
    ap.add_argument("--banks", default=str(ROOT.parent / "shared" / "eval" / "sentences"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, warehouses)")
    args = ap.parse_args()
    zyte, banks = Path(args.zyte), Path(args.banks)
    if not (zyte / "manifest.jsonl").is_file() or not banks.is_dir():
        print(f"no corpus at {zyte} or no sentence banks at {banks}: pass --zyte / --banks", file=sys.stderr)
        return 2
    paragraphs, passages = load_texts(zyte, banks)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="newsmon-bench-mem-"))
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect"), PYTHONPATH=str(ROOT))
    env.pop("PREFECT_API_URL", None)
    server = LocalServer()
    server.start()
    results = []
    ok = True
    print(f"{len(paragraphs)} paragraphs, {len(passages)} bank passages; work dir {work}", flush=True)
    try:
        for n in sizes:
            nwork = work / f"n{n}"
            nwork.mkdir()
            feeds = serve(server, f"n{n}", n, args.per_feed, args.days, paragraphs, passages)
            cfg = write_config(nwork, feeds, server.port, args.processes)
            last = published(n - 1, n, args.days).date()
            cmd = [*NEWSMON, args.command, "--config", str(cfg)]
            if args.command == "backfill":
                cmd += ["--since", START.date().isoformat(), "--until", last.isoformat()]
            load = os.getloadavg()[0]
            res = run(cmd, env if args.stages else dict(env, NO_COLOR="1"), nwork / "run.log", args.stages)
            res.update(n=n, feeds=len(feeds), load=(load, os.getloadavg()[0]), counts=counts(cfg, env))
            ok &= res["rc"] == 0 and res["counts"].get("mined") == n
            results.append(res)
            print(json.dumps(res), flush=True)
    finally:
        server.stop()
        if not args.keep and ok:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'N':>6} | {'feeds':>5} | {'wall s':>7} | {'rc':>2} | {'peak RSS MB (largest / tree)':>28} | load | stored")
    for r in results:
        c = r["counts"]
        print(f"{r['n']:>6} | {r['feeds']:>5} | {r['seconds']:>7.0f} | {r['rc']:>2} | "
              f"{r['rss']:>13} / {r['tree']:<12} | {r['load'][0]:.1f}-{r['load'][1]:.1f} | {c}")
        if r["stages"]:
            print(f"{'':>6}   tree peak per stage: {r['stages']}")
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(f"peak(N={large['n']}) / peak(N={small['n']}): largest process "
              f"{large['rss'] / small['rss']:.2f}, tree {large['tree'] / small['tree']:.2f}")
    if not ok:
        print(f"a run failed or mined fewer than N articles: see {work}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
