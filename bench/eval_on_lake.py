"""Run the acceptance harness against the DuckLake backend with two workers.

    NEWSMON_EVAL_CATALOG="postgres:dbname=eval host=… port=… user=…" \
        python ../shared/eval/run_eval.py --set dev --cmd "python bench/eval_on_lake.py {config}"

`run_eval.py` writes a config for a DuckDB file and scores that file's public views. This
command stands in for one scheduled run: it writes a lake config beside the harness's
(same feeds, SMTP and recipients; `[warehouse]` replaced by backend = "ducklake" on
$NEWSMON_EVAL_CATALOG with the data under the harness's work folder), starts
`newsmon ingest --shard 1/2` and `--shard 2/2` together, and then copies every public view
of the lake into the harness's DuckDB file (as tables of the same names), so that the harness
scores what the two workers left in the lake. Exit code: the workers' worst.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsmon.settings import load_settings  # noqa: E402
from warehouse.lake import LAKE, LakeConfig, open_lake  # noqa: E402

VIEWS = ["articles", "article_entities", "aid_pledges", "positions", "events", "changes", "alerts"]


def main() -> int:
    config = Path(sys.argv[1]).resolve()
    catalog = os.environ.get("NEWSMON_EVAL_CATALOG")
    if not catalog:
        print("eval_on_lake: set NEWSMON_EVAL_CATALOG to an empty PostgreSQL catalog (postgres:dbname=…)",
              file=sys.stderr)
        return 2
    harness = load_settings(config)
    text = config.read_text()
    start = text.index("[warehouse]")
    end = text.index("\n[", start + 1)
    lake_text = (text[:start] + f'[warehouse]\nbackend = "ducklake"\ncatalog = "{catalog}"\n'
                 f'data_path = "{config.parent / "lake"}/"\npath = "{config.parent / "local.duckdb"}"\n'
                 "lock_timeout_seconds = 600\n" + text[end:])
    lake_config = config.with_name("lake.toml")
    lake_config.write_text(lake_text)
    env = {k: v for k, v in os.environ.items() if k != "NEWSMON_CONFIG"}
    workers = []
    for i in (1, 2):
        env_i = dict(env, PREFECT_HOME=str(config.parent / f"prefect-{i}"),
                     PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
        workers.append(subprocess.Popen([sys.executable, "-m", "newsmon.cli", "ingest", "--config", str(lake_config),
                                         "--shard", f"{i}/2"], env=env_i))
    codes = [w.wait() for w in workers]
    settings = load_settings(lake_config)
    lake = LakeConfig(settings.warehouse.catalog, settings.warehouse.data_path)
    target = duckdb.connect(str(harness.warehouse.path))
    target.close()
    con = open_lake(lake, read_only=True)
    try:
        con.execute(f"ATTACH '{harness.warehouse.path}' AS harness")
        for view in VIEWS:
            if not re.fullmatch(r"[a-z_]+", view):
                raise ValueError(view)
            con.execute(f"CREATE OR REPLACE TABLE harness.main.{view} AS SELECT * FROM {LAKE}.main.{view}")
    finally:
        con.close()
    print(f"eval_on_lake: workers exited {codes}; views copied to {harness.warehouse.path}")
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
