"""The run summary: one line for the CLI, one markdown page for the Prefect artifact."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any


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


# -- the Prefect artifact ----------------------------------------------------------------------------
def _md(text: Any) -> str:
    """Text on one line, with markdown's special characters escaped."""
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", " ".join(str(text).split()))


def _clean(text: Any, width: int = 300) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _day(v: Any) -> str:
    return v.date().isoformat() if isinstance(v, dt.datetime) else str(v or "?")


def change_line(c: dict[str, Any]) -> str:
    """One change as a markdown list item: actor, topic (its description) or aid recipient, old → new,
    links to the two articles that state them."""
    links = f"([before]({c['old_url']}), {_day(c['old_published_at'])} · [after]({c['new_url']}), " \
            f"{_day(c['new_published_at'])})"
    if c["kind"] == "aid":
        kind = f", {_md(c['aid_kind'])}" if c.get("aid_kind") else ""
        pct = f" ({c['change_percent']:+.1f} %)" if c.get("change_percent") is not None else ""
        return (f"- **{_md(c['actor_group'])}** aid to {_md(c['subject'])}{kind}: {_md(c['old_value'])} → "
                f"{_md(c['new_value'])}{pct} {links}")
    topic = _md(c.get("topic_description") or c["subject"])
    return (f"- **{_md(c['actor_group'])}** on *{topic}* (`{c['subject']}`): {_md(c['old_value'])} → "
            f"{_md(c['new_value'])} {links}")


def failure_lines(stages: dict[str, dict[str, Any]], findings: dict[str, Any] | None,
                  failure: str | None, problems: list[str]) -> list[str]:
    """One clean line per failure: the run's own, each failed stage, feed, page and rejected input,
    and the alerts that could not go out (`problems` of the run, for what `findings` does not list)."""
    lines = [f"run failed: {_clean(failure)}"] if failure else []
    for name, counts in stages.items():
        if isinstance(counts, dict) and counts.get("error") and not failure:
            lines.append(f"stage {name} failed: {_clean(counts['error'])}")
    if findings is None:  # the warehouse could not be read: the counted problems, at least
        return lines + problems
    for f in findings["feeds"]:
        status = f" (HTTP {f['status']})" if f.get("status") else ""
        lines.append(f"feed `{f['feed']}`{status}: {_clean(f['error'])}")
    for p in findings["pages"]:
        status = f" HTTP {p['status']}" if p.get("status") else ""
        lines.append(f"page <{p['url']}>: {p['outcome']} {p['reason'] or ''}{status}: {_clean(p['error'])}")
    for r in findings["rejected"]:
        lines.append(f"{r['stage']} <{r['key']}>: {r['reason']}: {_clean(r['detail'])}")
    more = findings.get("more") or {}
    for name, label in (("feeds", "failed polls"), ("pages", "pages not fetched"), ("rejected", "rejections")):
        if more.get(name):
            lines.append(f"… and {more[name]} more {label} (see the warehouse)")
    lines += [p for p in problems if p.startswith("alerts:")]
    return lines


def run_markdown(title: str, stages: dict[str, dict[str, Any]], findings: dict[str, Any] | None,
                 failure: str | None, problems: list[str]) -> str:
    """The run's artifact: its outcome, the changes it found (with links to the evidence), one line
    per failure, and the counts that are not zero."""
    out = [f"# {_md(title)}", "", f"**Failed**: {_md(_clean(failure))}" if failure else "**Completed**", ""]
    changes = (findings or {}).get("changes") or []
    out += [f"## Changes found ({len(changes)})", ""] if changes else ["## No new changes"]
    out += [change_line(c) for c in changes]
    more = ((findings or {}).get("more") or {}).get("changes")
    if more:
        out.append(f"- … and {more} more (the `changes` view)")
    failures = failure_lines(stages, findings, failure, problems)
    out += ["", f"## Failures ({len(failures)})", ""] if failures else ["", "## No failures"]
    out += [f"- {line}" for line in failures]
    out += ["", "## Counts", "", "| stage | counts |", "|---|---|"]
    out += [f"| {stage} | {_md(summary_line({stage: counts}).split(': ', 1)[1])} |" for stage, counts in stages.items()]
    return "\n".join(out) + "\n"
