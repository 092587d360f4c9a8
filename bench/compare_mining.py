"""Mine the same texts with this checkout and another one and diff every row: claims and mentions.

    python bench/compare_mining.py --root /tmp/base          # another checkout (e.g. `git archive main`)
    python bench/compare_mining.py --root . --env B=1        # this checkout twice, once with a setting changed
    python bench/compare_mining.py --root /tmp/base --env COMPARE_PROCESSES=2   # this side on 2 processes

Texts: every English gold article of ../shared/eval (dev, dev2, real: the paragraphs joined
by newlines, as extraction stores them), every passage of the sentence banks, and trafilatura's
extraction of the 181 Zyte pages. Each side runs in a fresh interpreter with its own code
(`--root` first on sys.path), mines them with `tasks.mine.Miner` in chunks of 32 (as the
pipeline does) and dumps every row of mentions, pledge, position and meeting claims and
mined_articles (the extractor version left out: it differs by design). Exit 0 when the two
sides' rows are identical, 1 with the differences listed otherwise; the CPU time of each side's
mining is printed too (this process's only: with COMPARE_PROCESSES=N, N > 1, a side mines
through `tasks.mine.mine_chunks` with helper processes, whose CPU is not counted).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
ZYTE = ROOT.parent / "shared" / "corpus" / "zyte-articles"

CHILD = r"""
import datetime as dt, json, os, sys, time
root, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
from newsmon.settings import NlpSettings
from tasks.mine import Miner
items = [json.loads(line) for line in open(src, encoding="utf-8")]
t0 = time.perf_counter()
miner = Miner.from_settings(NlpSettings())
t_load = time.perf_counter() - t0
out = {"mentions": [], "pledge_claims": [], "position_claims": [], "meeting_claims": [], "mined_articles": []}
c0 = time.process_time()
chunks = [[dict(url=it["id"], text=it["text"], language="en",
                published_at=dt.datetime.fromisoformat(it["published_at"]) if it.get("published_at") else None)
           for it in items[i:i + 32]] for i in range(0, len(items), 32)]
processes = int(os.environ.get("COMPARE_PROCESSES", "1"))
if processes > 1:   # the pipeline's way: tasks.mine.mine_chunks with helper processes
    from tasks.mine import mine_chunks
    results = ((rows, mined) for _, rows, mined in mine_chunks(NlpSettings(), iter(chunks), processes, miner=miner))
else:
    results = (miner.mine(chunk) for chunk in chunks)
for rows, mined in results:
    for table, found in rows.items():
        out[table].extend(found)
    out["mined_articles"].extend(mined)
cpu = time.process_time() - c0
for table, found in out.items():
    for r in found:
        r.pop("extractor_version", None)
        r.pop("mined_at", None)
json.dump({"rows": out, "cpu_s": cpu, "load_s": t_load}, open(dst, "w", encoding="utf-8"), default=str)
"""


def corpus_items(zyte: bool) -> list[dict]:
    import yaml

    items = []
    for name in ("dev", "dev2", "real"):
        path = EVAL / name / "articles.yaml"
        if not path.exists():
            continue
        for a in yaml.safe_load(path.read_text()) or []:
            if a.get("lang", "en") == "en":
                items.append(dict(id=f"{name}/{a['id']}", text="\n".join(a["body"]),
                                  published_at=f"{str(a['published'])[:10]}T12:00:00+00:00"))
    for path in sorted((EVAL / "sentences").glob("*.yaml")):
        for p in yaml.safe_load(path.read_text()) or []:
            pub = p.get("published")
            items.append(dict(id=f"bank-{path.stem}/{p['id']}", text=p["text"],
                              published_at=f"{str(pub)[:10]}T12:00:00+00:00" if pub else None))
    if zyte and (ZYTE / "manifest.jsonl").exists():
        sys.path.insert(0, str(ROOT))
        from tasks.extract import extract_article
        from newsmon.errors import ExtractError

        for line in (ZYTE / "manifest.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            page = json.loads(line)
            try:
                text = extract_article((ZYTE / page["file"]).read_bytes(), page["url"]).text
            except ExtractError:
                continue
            items.append(dict(id=f"zyte/{page['id']}", text=text, published_at="2025-01-01T12:00:00+00:00"))
    return items


def mine_with(root: Path, src: Path, dst: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), str(src), str(dst)], cwd=root,
                          env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mining with {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(dst.read_text(encoding="utf-8"))


def keyed(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="the other checkout (the reference side)")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for this checkout's side only")
    ap.add_argument("--no-zyte", action="store_true", help="gold articles and sentence banks only")
    args = ap.parse_args()
    if not EVAL.is_dir():
        print(f"no acceptance harness at {EVAL}", file=sys.stderr)
        return 2
    items = corpus_items(not args.no_zyte)
    env = dict(kv.split("=", 1) for kv in args.env)
    with tempfile.TemporaryDirectory(prefix="newsmon-compare-") as tmp:
        src = Path(tmp) / "items.jsonl"
        src.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
        ref = mine_with(Path(args.root).resolve(), src, Path(tmp) / "ref.json", {})
        new = mine_with(ROOT, src, Path(tmp) / "new.json", env)
    print(f"{len(items)} texts; mining CPU: reference {ref['cpu_s']:.1f} s, this checkout {new['cpu_s']:.1f} s "
          f"({ref['cpu_s'] / new['cpu_s']:.2f}x)")
    differ = 0
    for table in ref["rows"]:
        a, b = keyed(ref["rows"][table]), keyed(new["rows"][table])
        only_ref, only_new = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        same = a == b
        print(f"  {table:<16} {len(a):6d} rows vs {len(b):6d}: {'identical' if same else 'DIFFERENT'}")
        if not same:
            differ += 1
            for r in only_ref[:10]:
                print(f"    only in reference: {r[:300]}")
            for r in only_new[:10]:
                print(f"    only in this one:  {r[:300]}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
