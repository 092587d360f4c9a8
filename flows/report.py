"""The run summary: one markdown table for the Prefect artifact and the CLI."""
from __future__ import annotations

from typing import Any


def summary_markdown(title: str, stages: dict[str, dict[str, Any]]) -> str:
    lines = [f"# {title}", "", "| stage | count | value |", "|---|---|---|"]
    for stage, counts in stages.items():
        for key, value in counts.items():
            if isinstance(value, dict):
                for sub, n in sorted(value.items()):
                    lines.append(f"| {stage} | {key}: {sub} | {n} |")
            else:
                lines.append(f"| {stage} | {key} | {value} |")
    return "\n".join(lines) + "\n"


def summary_line(stages: dict[str, dict[str, Any]]) -> str:
    def flat(counts: dict[str, Any]) -> str:
        parts = []
        for k, v in counts.items():
            if isinstance(v, dict):
                if v:
                    parts.append(f"{k}(" + ", ".join(f"{a}={b}" for a, b in sorted(v.items())) + ")")
            elif v:
                parts.append(f"{k}={v}")
        return " ".join(parts) or "-"
    return "; ".join(f"{stage}: {flat(c)}" for stage, c in stages.items())
