"""Pipeline throughput, peak memory and the no-op run, as ratios against a bare loop in the same run.

    python bench/bench_pipeline.py [--corpus ../shared/corpus/zyte-articles] [--modes temp,server]
                                   [--backfill-sizes 1,2] [--processes 1]

The 181 real pages of the Zyte benchmark are served by a local HTTP server on 127.0.0.1
behind one generated RSS feed (`per_host_delay = 0`: every page comes from one local host),
with a temporary warehouse and config. Measured, each `newsmon` command a subprocess:

- cold `newsmon ingest` (empty warehouse): pages/s over the whole run, divided by the pages/s
  of the bare loop "trafilatura.extract + nlp.pipe" (en_core_web_sm alone, one core, the same
  pages, model load excluded) timed in this process in the same run: the ratio is the figure;
- peak RSS of each command (the largest process of its tree: `os.wait4`'s ru_maxrss);
- the no-op run: a second `newsmon ingest` with nothing new (the feed body is unchanged);
- with `--backfill-sizes 1,2`: `newsmon backfill --remine` over the whole window after an
  ingest of the pages served once, then twice (under other URLs): peak RSS must not grow
  with the window.

Modes: `temp` runs the CLI as a user would without PREFECT_API_URL (before 331ffe6 each
command started a temporary Prefect server; since, the CLI runs the plain-Python pipeline with
no server at all); `server` starts one `prefect server start` first and points
PREFECT_API_URL at it (the Prefect flows), the server's start-up not counted.
"""
from __future__ import annotations

import argparse
import contextlib
import email.utils
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import Answer, LocalServer  # noqa: E402  (the test suite's real HTTP server)

NEWSMON = [sys.executable, "-m", "newsmon.cli"]
PSS_PEAKS: list[int] = []
CPU_SECONDS: list[float] = []   # user + system CPU of each run's command and the children it waited for
APP = [ROOT]   # the checkout whose newsmon the commands run (--root)
PUBLISHED = 1_735_689_600  # 2025-01-01T00:00:00Z; entry i is published i minutes later


def load_pages(corpus: Path) -> list[tuple[str, Path]]:
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [(r["id"], corpus / r["file"]) for r in rows]


def feed_xml(items: list[tuple[str, str]]) -> bytes:
    """RSS 2.0 listing (title, url) pairs, one minute apart."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>bench</title>'
           '<link>http://127.0.0.1/</link><description>bench feed</description>']
    for i, (title, url) in enumerate(items):
        when = email.utils.formatdate(PUBLISHED + 60 * i, usegmt=True)
        out.append(f"<item><title>{escape(title)}</title><link>{escape(url)}</link><guid>{escape(url)}</guid>"
                   f"<pubDate>{when}</pubDate></item>")
    out.append("</channel></rss>\n")
    return "".join(out).encode()


def serve_corpus(server: LocalServer, name: str, pages: list[tuple[str, Path]], copies: int) -> str:
    """Routes for `copies` copies of every page (other URLs, same bytes) and their feed; returns the feed URL."""
    items = []
    for c in range(copies):
        for pid, path in pages:
            url = server.add(f"/{name}/c{c}/{pid}.html",
                             Answer(path, headers={"Content-Type": "text/html; charset=utf-8"}))
            items.append((f"page {c}/{pid[:12]}", url))
    return server.add(f"/{name}/feed.xml", Answer(feed_xml(items), headers={"Content-Type": "application/rss+xml"}))


def write_config(work: Path, feed_url: str, port: int, processes: int | None) -> Path:
    nlp = f"\n[nlp]\nprocesses = {processes}\n" if processes else ""
    cfg = work / "newsmon.toml"
    cfg.write_text(f"""[warehouse]
path = "{work / 'news.duckdb'}"

[fetch]
allow_hosts = ["127.0.0.1:{port}"]
per_host_delay = 0

[[feeds]]
name = "bench"
url = "{feed_url}"

[alerts]
recipients = []
{nlp}""")
    return cfg


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants now (MB), from /proc (the sum of their
    RSS: pages a forked helper shares with its parent count twice; see tree_pss_mb)."""
    return _tree_mb(root, _rss_pages)


def tree_pss_mb(root: int) -> float:
    """Proportional set size of a process and its descendants now (MB): each page shared by k
    processes counts 1/k in each, so the sum is the tree's memory with shared pages once."""
    return _tree_mb(root, _pss_pages)


def _rss_pages(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pss_pages(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _tree_mb(root: int, size) -> float:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            total += size(pid)
        except (OSError, IndexError, ValueError):
            pass
    return total / 2**20


def run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int, int, int]:
    """(seconds, peak RSS in MB of the command's largest process, peak RSS of its whole process tree
    sampled every 0.2 s, exit code). The tree's peak PSS goes to PSS_PEAKS (the last run's)."""
    t0 = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=APP[0], env=env, stdout=out, stderr=subprocess.STDOUT)
        tree = pss = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree = max(tree, tree_rss_mb(proc.pid))
            pss = max(pss, tree_pss_mb(proc.pid))
            time.sleep(0.2)
    PSS_PEAKS.append(round(pss))
    CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss // 1024, round(tree), proc.returncode


def bare_loop(pages: list[tuple[str, Path]], batch_size: int) -> dict[str, float]:
    """Seconds of trafilatura.extract + nlp.pipe over the pages on one core (model load apart)."""
    import spacy
    import trafilatura

    from tasks.nlp import MODEL

    htmls = [(f"https://bench.invalid/{pid}", path.read_bytes()) for pid, path in pages]
    t0 = time.perf_counter()
    nlp = spacy.load(MODEL)
    load = time.perf_counter() - t0
    list(nlp.pipe(["Warm-up text for the model."]))
    t0, c0 = time.perf_counter(), time.process_time()
    texts = [t for t in (trafilatura.extract(html, url=url) for url, html in htmls) if t]
    for _doc in nlp.pipe(texts, batch_size=batch_size):
        pass
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "load": load, "texts": len(texts)}


def bare_loop_in_child(corpus: Path, batch_size: int, env: dict[str, str]) -> dict[str, float]:
    """The bare loop in a process of its own, so that this one stays small (a child's ru_maxrss
    starts from its parent's RSS at fork) and the loop owns one core like the pipeline's parser."""
    out = subprocess.run([sys.executable, __file__, "--corpus", str(corpus), "--batch-size", str(batch_size),
                          "--bare-loop-only"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A `prefect server start` of our own on a free port; yields its API URL, stops it (by pid) after."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    with log.open("ab") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                                 "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start; see {log}")
            time.sleep(0.5)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def count_articles(cfg: Path, env: dict[str, str]) -> int:
    out = subprocess.run([*NEWSMON, "sql", "--config", str(cfg), "--format", "json",
                          "SELECT count(*) AS n FROM articles"], cwd=APP[0], env=env, capture_output=True, text=True)
    return json.loads(out.stdout)[0]["n"] if out.returncode == 0 else -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "zyte-articles"))
    ap.add_argument("--modes", default="temp,server", help="temp (a temporary Prefect server per command), "
                                                           "server (one running server), comma-separated")
    ap.add_argument("--backfill-sizes", default="", help="copies of the corpus for the backfill memory check, "
                                                         "e.g. 1,2 (default: none)")
    ap.add_argument("--processes", default="", help="[nlp] processes in the generated configs, e.g. 1,2: "
                                                    "each mode runs once per value (default: the config's default)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose newsmon runs the pipeline (default: this "
                                                      "one); the bare loop and the local server stay this one's")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, warehouses)")
    ap.add_argument("--bare-loop-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not (corpus / "manifest.jsonl").is_file():
        print(f"no corpus at {corpus} (expected manifest.jsonl): pass --corpus", file=sys.stderr)
        return 2
    pages = load_pages(corpus)
    APP[0] = Path(args.root).resolve()
    if args.bare_loop_only:
        print(json.dumps(bare_loop(pages, args.batch_size)))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    procs: list[int | None] = [int(p) for p in args.processes.split(",") if p] or [None]
    sizes = [int(s) for s in args.backfill_sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    log = work / "commands.log"
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_LOGGING_LEVEL="CRITICAL", PYTHONPATH=str(APP[0]),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")  # a loaded machine starts it slowly
    env.pop("PREFECT_API_URL", None)
    server = LocalServer()
    server.start()
    rows: list[tuple[str, str, str]] = []
    ok = True
    try:
        print(f"{len(pages)} pages; work dir {work}", flush=True)
        bare: list[float] = []
        bare_cpu: list[float] = []

        def bare_rate() -> float:
            """pages/s of the bare loop, run again now: the machine's load drifts, so each pipeline
            figure is divided by the mean of the bare loops just before and just after it."""
            res = bare_loop_in_child(corpus, args.batch_size, env)
            bare.append(len(pages) / res["seconds"])
            bare_cpu.append(res["cpu"])
            rows.append((f"bare loop #{len(bare)} (extract + nlp.pipe, 1 core)", f"{bare[-1]:.2f} pages/s",
                         f"{res['seconds']:.1f} s, CPU {res['cpu']:.1f} s, {res['texts']} texts; model load "
                         f"{res['load']:.1f} s not counted; load average {os.getloadavg()[0]:.1f}"))
            print(rows[-1], flush=True)
            return bare[-1]

        bare_rate()
        for mode, processes in [(m, p) for m in modes for p in procs]:
            label = mode if processes is None else f"{mode}, {processes} proc"
            with contextlib.ExitStack() as stack:
                menv = dict(env)
                if mode == "server":
                    menv["PREFECT_API_URL"] = stack.enter_context(prefect_server(env, log))
                elif mode != "temp":
                    raise SystemExit(f"unknown mode {mode!r}")
                mwork = work / f"{mode}-p{processes}"
                mwork.mkdir()
                cfg = write_config(mwork, serve_corpus(server, mwork.name, pages, 1), server.port, processes)
                secs, rss, tree, rc = run([*NEWSMON, "ingest", "--config", str(cfg)], menv, log)
                n = count_articles(cfg, env)
                ok &= rc == 0 and n > 0
                rate = len(pages) / secs
                before, after = bare[-1], bare_rate()
                rows.append((f"[{label}] cold ingest", f"{rate:.2f} pages/s = {rate / ((before + after) / 2):.2f}x bare",
                             f"{secs:.1f} s, rc {rc}, {n} articles; bare loops before/after: "
                             f"{before:.2f}/{after:.2f} pages/s; load average {os.getloadavg()[0]:.1f}"))
                cpu, bcpu = CPU_SECONDS[-1], (bare_cpu[-2] + bare_cpu[-1]) / 2
                rows.append((f"[{label}] cold ingest CPU", f"{cpu:.1f} s = {bcpu / cpu:.2f}x bare loop's CPU",
                             f"the bare loop's {bcpu:.1f} s (mean of before/after): the same pages' work on one "
                             f"core; with k cores free the ratio above can reach about k times this"))
                rows.append((f"[{label}] cold ingest peak RSS", f"{rss} MB",
                             f"whole process tree: {tree} MB (sum of RSS), {PSS_PEAKS[-1]} MB (sum of PSS)"))
                print(*rows[-3:], sep="\n", flush=True)
                secs, rss, tree, rc = run([*NEWSMON, "ingest", "--config", str(cfg)], menv, log)
                ok &= rc == 0
                rows.append((f"[{label}] no-op ingest", f"{secs:.1f} s", f"peak RSS {rss} MB (tree {tree} MB), rc {rc}"))
                print(rows[-1], flush=True)
                for copies in sizes:
                    bcfg, n = cfg, count_articles(cfg, env)
                    if copies > 1:  # the same pages again under other URLs: a window `copies` times as large
                        bwork = mwork / f"backfill-x{copies}"
                        bwork.mkdir()
                        bcfg = write_config(bwork, serve_corpus(server, f"{mwork.name}-x{copies}", pages, copies),
                                            server.port, processes)
                        secs, rss, tree, rc = run([*NEWSMON, "ingest", "--config", str(bcfg)], menv, log)
                        ok &= rc == 0
                        n = count_articles(bcfg, env)
                        rows.append((f"[{label}] ingest of {copies} x {len(pages)} pages", f"peak RSS {rss} MB",
                                     f"tree {tree} MB; {secs:.1f} s, rc {rc}, {n} articles"))
                        print(rows[-1], flush=True)
                    secs, rss, tree, rc = run([*NEWSMON, "backfill", "--config", str(bcfg), "--since", "2024-12-31",
                                               "--remine"], menv, log)
                    ok &= rc == 0
                    rows.append((f"[{label}] backfill --remine of {n} articles", f"peak RSS {rss} MB",
                                 f"tree {tree} MB; {secs:.1f} s, rc {rc}"))
                    print(rows[-1], flush=True)
    finally:
        server.stop()
        if not args.keep and ok:
            shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'figure':<{width}} | {'value':<28} | detail")
    print(f"{'-' * width}-+-{'-' * 28}-+-------")
    for name, value, detail in rows:
        print(f"{name:<{width}} | {value:<28} | {detail}")
    if not ok:
        print(f"a command failed: see {log}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
