"""Killed runs lose nothing and duplicate nothing: `newsmon ingest` SIGKILLed at random moments, then re-run.

    python bench/bench_kill.py [--trials 20] [--seed 1] [--during run|process] [--config FILE] [--keep DIR]

The config (default: the bundled offline sample) is copied with its warehouse moved into
a scratch folder. One clean run gives the reference, its duration T, and (from its row in
`runs`) the span [S, F] in which the run itself works, after the process has started up
(imports, model) and before it exits. Then, per trial, in a fresh warehouse: `newsmon
ingest` starts in a session of its own and is SIGKILLed (with everything it started) at a
moment drawn uniformly from [S, F] (`--during run`, the default: every kill lands while the
pipeline works) or from [0.1 s, T] (`--during process`); the warehouse
state it left is noted (rows in the stage tables); then `newsmon ingest` runs again to
completion (exit 0 required). Every public view (every non-internal view of the
warehouse, so views added later are compared too) must then hold exactly the rows of
the clean run, as a multiset: a row lost or a row stored twice is a difference. Columns
that record when something happened in this run (names ending in `_at`, except the
articles' publication times) are left out of the comparison. The killed run must be
marked `killed` in `runs` by the re-run.

Runs without a Prefect API (PREFECT_API_URL is removed from the environment): the CLI's
plain path. Prints one line per trial and a summary; exits 1 when any trial differs.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NEWSMON = Path(sys.executable).with_name("newsmon")
LAST_LAUNCH = 0.0  # wall-clock time the last `newsmon ingest` was started
STAGE_TABLES = ("feed_entries", "pages", "article_texts", "mined_articles", "change_log", "alert_outbox")


def scratch_config(source: Path, folder: Path) -> Path:
    """`source` with its warehouse in `folder` and its relative paths made absolute, except local
    feeds inside the source's folder: a local feed's pages must lie in its config's folder, so
    the folder holding such a feed (e.g. `sample/`) is copied into `folder` and the feed's URL
    is kept relative to it."""
    from newsmon.settings import load_settings

    settings = load_settings(source)  # resolves feed URLs and domain files against the source's folder
    text = source.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^path\s*=\s*"[^"]*"', f'path = "{folder / "news.duckdb"}"', text, count=1)
    home = source.parent.resolve()
    for feed in settings.feeds:
        local = Path(urllib.parse.unquote(urllib.parse.urlparse(feed.url).path)).resolve() \
            if feed.url.startswith("file:") else None
        if local is not None and local.is_relative_to(home) and local.parent != home:
            top = local.relative_to(home).parts[0]
            if not (folder / top).exists():
                shutil.copytree(home / top, folder / top)
            text = text.replace(f'"{_raw_url(source, feed.name)}"', f'"{local.relative_to(home).as_posix()}"')
        else:
            text = text.replace(f'"{_raw_url(source, feed.name)}"', f'"{feed.url}"')
    for key in ("entities", "topics", "money", "fx", "aid", "lang"):
        text = re.sub(rf'(?m)^{key}\s*=\s*"[^"]*"', f'{key} = "{getattr(settings.nlp, key)}"', text)
    path = folder / "newsmon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _raw_url(source: Path, name: str) -> str:
    import tomllib

    for feed in tomllib.loads(source.read_text(encoding="utf-8")).get("feeds", []):
        if feed.get("name") == name:
            return feed["url"]
    raise KeyError(name)


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "NEWSMON_CONFIG")}
    out.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return out


def ingest(config: Path, kill_after: float | None = None) -> tuple[int | str, float]:
    """Run `newsmon ingest`; with kill_after, SIGKILL its whole session then. (returncode or 'killed', seconds)."""
    global LAST_LAUNCH
    LAST_LAUNCH = time.time()
    started = time.monotonic()
    log = config.parent / f"run-{time.time_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(NEWSMON), "ingest", "--config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, env=env(), cwd=config.parent, start_new_session=True)
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 1800)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "killed", time.monotonic() - started
    if proc.returncode != 0:
        print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
    return proc.returncode, time.monotonic() - started


def public_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [n for (n,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                      "AND schema_name = 'main' ORDER BY view_name").fetchall()]


def stable_columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    cols = [r[0] for r in con.execute(f'DESCRIBE "{view}"').fetchall()]
    return [c for c in cols if not c.endswith("_at") or c.endswith("published_at")]


def contents(db: Path) -> dict[str, collections.Counter]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for view in public_views(con):
            cols = ", ".join(f'"{c}"' for c in stable_columns(con, view))
            rows = con.execute(f'SELECT {cols} FROM "{view}"').fetchall()
            out[view] = collections.Counter(json.dumps(r, default=str, sort_keys=True) for r in rows)
        return out
    finally:
        con.close()


def stage_rows(db: Path) -> str:
    if not db.exists():
        return "no warehouse yet"
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        return f"unreadable: {exc}"
    try:
        present = {n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        parts = [f"{t}={con.execute(f'SELECT count(*) FROM {t}').fetchone()[0]}" for t in STAGE_TABLES
                 if t in present]
        return " ".join(parts) or "schema only"
    finally:
        con.close()


def differences(clean: dict[str, collections.Counter], got: dict[str, collections.Counter]) -> list[str]:
    out = []
    for view in sorted(set(clean) | set(got)):
        a, b = clean.get(view, collections.Counter()), got.get(view, collections.Counter())
        lost, extra = a - b, b - a
        if lost or extra:
            out.append(f"{view}: {sum(lost.values())} row(s) lost, {sum(extra.values())} extra/duplicated")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--during", choices=["run", "process"], default="run",
                    help="kill while the pipeline works (run) or anywhere in the process's life (process)")
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "newsmon.toml")
    ap.add_argument("--keep", type=Path, help="keep the scratch folders here (default: a temporary folder, removed)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="bench-kill-", dir=args.keep))

    # Every run works in the same folder (base/work), moved aside when it is done: the sample's local
    # pages lie beside each run's config, so their URLs (and the ids derived from them) name that folder.
    work = base / "work"
    clean_dir = work
    clean_dir.mkdir(parents=True)
    clean_config = scratch_config(args.config, clean_dir)
    rc, clean_seconds = ingest(clean_config)
    if rc != 0:
        print(f"the clean run exited {rc}", file=sys.stderr)
        return 1
    clean = contents(clean_dir / "news.duckdb")
    if not sum(clean.get("articles", collections.Counter()).values()):
        # nothing to lose or duplicate: every comparison below would hold trivially
        print("the clean run stored no articles: nothing to compare (is the config's feed reachable?)",
              file=sys.stderr)
        return 1
    con = duckdb.connect(str(clean_dir / "news.duckdb"), read_only=True)
    begun, ended = con.execute("SELECT epoch(started_at), epoch(finished_at) FROM runs").fetchone()
    con.close()
    span = (begun - LAST_LAUNCH, ended - LAST_LAUNCH) if args.during == "run" else (0.1, clean_seconds)
    print(f"clean run: {clean_seconds:.1f}s, the pipeline from {begun - LAST_LAUNCH:.1f}s to "
          f"{ended - LAST_LAUNCH:.1f}s; kills drawn from [{span[0]:.1f}s, {span[1]:.1f}s]; views: "
          + ", ".join(f"{v}={sum(c.values())}" for v, c in clean.items()), flush=True)
    work.rename(base / "clean")

    failures = 0
    killed_marked = 0
    for trial in range(1, args.trials + 1):
        folder = work
        folder.mkdir()
        config = scratch_config(args.config, folder)
        at = rng.uniform(*span)
        outcome, _ = ingest(config, kill_after=at)
        left = stage_rows(folder / "news.duckdb")
        rc, seconds = ingest(config)
        diff = ["re-run exited %s" % rc] if rc != 0 else differences(clean, contents(folder / "news.duckdb"))
        statuses = [s for (s,) in duckdb.connect(str(folder / "news.duckdb"), read_only=True).execute(
            "SELECT status FROM runs ORDER BY started_at").fetchall()] if (folder / "news.duckdb").exists() else []
        if outcome == "killed" and len(statuses) == 2:
            if statuses[0] == "killed":
                killed_marked += 1
            elif statuses[0] != "completed":  # killed after it recorded its end: nothing to mark
                diff.append(f"the killed run is recorded as {statuses[0]!r}, not 'killed'")
        failures += bool(diff)
        print(f"trial {trial:2d}: {outcome} at {at:5.1f}s (left: {left}); re-run {seconds:.1f}s, runs {statuses}: "
              + ("; ".join(diff) if diff else "identical to the clean run"), flush=True)
        folder.rename(base / f"trial-{trial:02d}")
    print(f"{args.trials - failures}/{args.trials} trials identical to the clean run (every public view, as "
          f"multisets); {killed_marked} killed run(s) marked 'killed' by the re-run")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
