#!/usr/bin/env python3
"""Mining-only scores on the harness's gold article sets, in seconds instead of minutes.

Feeds each gold article's body (paragraphs joined by newlines, as extraction stores them)
to `newsmon mine --format jsonl -` and matches positions and aid per article with the
harness's own rules (`../shared/eval/run_eval.py`). No feeds, pages or warehouse: this
measures the miner alone, so it moves with `run_eval.py`'s positions and aid F1 but is
not the same figure (extraction and syndication are skipped).

usage: python bench/score_gold_mining.py [--set dev --set dev2 --set real] [--errors]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", dest="sets", help="gold set (default: dev, dev2, real)")
    ap.add_argument("--errors", action="store_true")
    ap.add_argument("--cmd", default="newsmon mine --format jsonl -")
    args = ap.parse_args()
    if not EVAL.is_dir():
        print(f"no acceptance harness at {EVAL}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(EVAL))
    import yaml
    from score_sentences import match_aid, match_positions, run_miner
    from run_eval import prf

    for name in args.sets or ["dev", "dev2", "real"]:
        arts = yaml.safe_load((EVAL / name / "articles.yaml").read_text())
        items = [dict(id=a["id"], text="\n".join(a["body"]), published=str(a["published"])[:10])
                 for a in arts if a.get("lang", "en") == "en"]
        found = run_miner(args.cmd, items, 1800)
        t = dict(ptp=0, psys=0, pgold=0, atp=0, asys=0, agold=0)
        for a in arts:
            if a.get("lang", "en") != "en":
                continue
            exp = a.get("expect") or {}
            got = found.get(str(a["id"]), [])
            ptp, psys, pgold, pmiss, pspur = match_positions(exp.get("positions") or [], got)
            atp, asys, agold, amiss, aspur = match_aid(exp.get("aid") or [], got)
            for k, v in zip(("ptp", "psys", "pgold", "atp", "asys", "agold"), (ptp, psys, pgold, atp, asys, agold)):
                t[k] += v
            if args.errors:
                for p in pmiss:
                    print(f"MISS {name}/{a['id']}: position {p['group']} {p['topic']} {p['stance']}")
                for r in pspur:
                    print(f"FP   {name}/{a['id']}: position {r.get('actor_group')} {r.get('topic')} {r.get('stance')}"
                          f"  <- {(r.get('evidence') or '').strip()[:200]}")
                for c in amiss:
                    print(f"MISS {name}/{a['id']}: aid {c['donor'][0]} -> {c['recipient'][0]} {c['amount']:,.0f} {c['currency']}")
                for r in aspur:
                    print(f"FP   {name}/{a['id']}: aid {r.get('donor')} -> {r.get('recipient')} {r.get('amount')} "
                          f"{r.get('currency')}  <- {(r.get('evidence') or '').strip()[:200]}")
        p, q = prf(t["ptp"], t["psys"], t["pgold"]), prf(t["atp"], t["asys"], t["agold"])
        print(f"{name:6s} positions P {p['precision']:.2f} R {p['recall']:.2f} F1 {p['f1']:.3f}   "
              f"aid P {q['precision']:.2f} R {q['recall']:.2f} F1 {q['f1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
