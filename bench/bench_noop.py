"""The run with nothing new, stage by stage: CPU seconds, wall seconds, peak RSS, and whether spaCy was imported.

    python bench/bench_noop.py [--root DIR] [--repeat 2]

A first run ingests the bundled sample (config/sample: two file feeds, four articles) into a
temporary warehouse; then `--repeat` runs with nothing new each run the stages (poll, fetch,
extract, mine, as plain functions: no Prefect server) in a fresh interpreter, which reports
its import time, each stage's wall and CPU time, its own CPU time and peak RSS, and whether
spaCy was imported. CPU time is the figure to compare on a loaded machine. `--root` runs
another checkout's code (e.g. ../main) with this interpreter, for a before/after comparison.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, uuid
t_start = time.perf_counter()
root, cfg = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
t0 = time.perf_counter()
from flows import stages
from newsmon.settings import load_settings
from warehouse import Warehouse
out = {"import_s": time.perf_counter() - t0}
settings = load_settings(cfg)
wh = Warehouse(settings.warehouse.path)
wh.migrate()
run_id = str(uuid.uuid4())
for name in ("poll_feeds", "fetch_pages", "extract_articles", "mine_articles"):
    t0, c0 = time.perf_counter(), time.process_time()
    out[name] = getattr(stages, name).fn(settings, wh, run_id)
    out[name + "_s"], out[name + "_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
ru = resource.getrusage(resource.RUSAGE_SELF)
out.update(total_s=time.perf_counter() - t_start, cpu_s=ru.ru_utime + ru.ru_stime, peak_rss_mb=ru.ru_maxrss / 1024,
           spacy_imported="spacy" in sys.modules)
print(json.dumps(out, default=str))
"""


def run_child(root: Path, cfg: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(cfg)], cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose code runs (default: this one)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    root = Path(args.root).resolve()
    with tempfile.TemporaryDirectory(prefix="newsmon-noop-") as tmp:
        # a copy of the sample beside the config: a local feed's pages must lie in the config's folder
        shutil.copytree(root / "config" / "sample", Path(tmp) / "sample")
        feeds = Path(tmp) / "sample" / "feeds"
        cfg = Path(tmp) / "newsmon.toml"
        cfg.write_text('[warehouse]\npath = "w.duckdb"\n\n'
                       f'[[feeds]]\nname = "kyiv"\nurl = "{(feeds / "kyiv-ledger.xml").as_uri()}"\n\n'
                       f'[[feeds]]\nname = "atlantic"\nurl = "{(feeds / "atlantic-wire.atom").as_uri()}"\n')
        first = run_child(root, cfg)
        print(f"first run: {first['extract_articles']} / {first['mine_articles']}", flush=True)
        runs = [run_child(root, cfg) for _ in range(args.repeat)]
    keys = ["import_s", "poll_feeds_cpu_s", "fetch_pages_cpu_s", "extract_articles_cpu_s", "mine_articles_cpu_s",
            "mine_articles_s", "cpu_s", "total_s", "peak_rss_mb"]
    print(f"no-op runs of {root} (median of {len(runs)}):")
    for key in keys:
        print(f"  {key:<24} {statistics.median(r[key] for r in runs):8.2f}   "
              f"({', '.join(f'{r[key]:.2f}' for r in runs)})")
    print(f"  spaCy imported: {[r['spacy_imported'] for r in runs]}; "
          f"mined: {[r['mine_articles'] for r in runs]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
