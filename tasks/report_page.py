"""The report page (`newsmon report`): one self-contained HTML file for a window of days.

Plain function, no I/O: `render_report` takes the rows `warehouse.queries.report_rows`
reads from the public views and returns the page. Self-contained means no request leaves
the file: the CSS is inline, the timelines are inline SVG, and links go only to the articles.
Sections: the changes of the window with both pieces of evidence, the standing pledges
(current_pledges: a raised pledge counts once), and a stance timeline per topic and actor
group (the last stance before the window drawn hollow at its left edge).
"""
from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

from tasks.changes import format_amount

__all__ = ["render_report", "STANCE_COLOURS"]

STANCE_COLOURS = {"support": "#2e7d32", "oppose": "#c62828", "conditional": "#ef6c00", "undecided": "#757575"}
_WIDTH, _ROW, _PAD = 640, 26, 10

_CSS = """
body{font:15px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1040px;margin:0 auto;padding:24px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin:20px 0 2px}.muted{color:#57606a;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #eaeef2}
th{background:#f6f8fa;font-weight:600}td.num,td.date{text-align:right;white-space:nowrap}td.date{text-align:left}
blockquote{margin:4px 0;padding:2px 8px;border-left:3px solid #d0d7de;color:#3d444d}
.stance{display:inline-block;padding:0 6px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.up{color:#2e7d32}.down{color:#c62828}.legend span{margin-right:12px}
.timeline td{border:none;padding:2px 8px}.timeline td.actor{width:180px;white-space:nowrap}
a{color:#0969da;text-decoration:none}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _day(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "?"
    return (value.date() if isinstance(value, dt.datetime) else value).isoformat()


def _stance(stance: str | None) -> str:
    colour = STANCE_COLOURS.get(stance or "", "#57606a")
    return f'<span class="stance" style="background:{colour}">{_e(stance)}</span>'


def _link(url: str | None, title: str | None, feed: str | None = None) -> str:
    if not url:
        return ""
    label = _e(title or url)
    outlet = f' <span class="muted">({_e(feed)})</span>' if feed else ""
    return f'<a href="{_e(url)}">{label}</a>{outlet}'


def _eur(amount: float | None) -> str:
    """EUR at a reading precision (€252m, €11.5bn): conversions are approximate anyway."""
    if amount is None:
        return "?"
    for size, suffix in ((1e9, "bn"), (1e6, "m")):
        if abs(amount) >= size:
            return f"€{amount / size:.3g}{suffix}"
    return f"€{amount:,.0f}"


def _change_row(c: Mapping[str, Any]) -> str:
    if c["kind"] == "aid":
        what = f"aid to {_e(c['subject'])}" + (f" ({_e(c.get('aid_kind'))})" if c.get("aid_kind") else "")
        pct = c.get("change_percent")
        arrow = "" if pct is None else f' <span class="{"up" if pct >= 0 else "down"}">{pct:+.1f}%</span>'
        values = (f"{_e(c['old_value'])} → {_e(c['new_value'])}{arrow}"
                  f'<br><span class="muted">{_eur(c.get("old_amount_eur"))} → {_eur(c.get("new_amount_eur"))}</span>')
    else:
        what = _e(c.get("topic_description") or c["subject"]) + f' <span class="muted">({_e(c["subject"])})</span>'
        values = f"{_stance(c['old_value'])} → {_stance(c['new_value'])}"
    evidence = (f'<blockquote>{_e(c.get("old_evidence"))}<br><span class="muted">{_day(c.get("old_published_at"))}, '
                f'{_link(c.get("old_url"), c.get("old_title"), c.get("old_feed"))}</span></blockquote>'
                f'<blockquote>{_e(c.get("new_evidence"))}<br><span class="muted">{_day(c.get("new_published_at"))}, '
                f'{_link(c.get("new_url"), c.get("new_title"), c.get("new_feed"))}</span></blockquote>')
    return (f'<tr data-change-id="{_e(c["change_id"])}"><td class="date">{_day(c.get("new_published_at"))}</td>'
            f'<td><strong>{_e(c["actor_group"])}</strong></td><td>{what}</td><td>{values}</td><td>{evidence}</td></tr>')


def _pledge_row(p: Mapping[str, Any]) -> str:
    replaced = ""
    if p.get("replaced_amount") is not None:
        replaced = (f'{_e(format_amount(p["replaced_amount"], p.get("replaced_currency")))}'
                    f'<br><span class="muted">{_day(p.get("replaced_published_at"))}</span>')
    return (f'<tr data-pledge="{_e(p["donor"])}|{_e(p["recipient"])}|{_e(p["kind"])}"><td>{_e(p["donor"])}</td>'
            f'<td>{_e(p["recipient"])}</td><td>{_e(p["kind"])}</td>'
            f'<td class="num">{_e(format_amount(p["amount"], p["currency"]))}</td>'
            f'<td class="num">{_eur(p.get("amount_eur"))}</td><td class="num">{replaced}</td>'
            f'<td class="date">{_day(p.get("standing_since"))}</td>'
            f'<td><blockquote>{_e(p.get("evidence"))}<br>{_link(p.get("url"), p.get("url"))}</blockquote></td></tr>')


def _timeline_svg(points: Sequence[Mapping[str, Any]], start: dt.datetime, end: dt.datetime) -> str:
    span = max((end - start).total_seconds(), 1.0)
    marks = []
    for p in points:
        when = p["published_at"]
        x = _PAD if p.get("before_window") else _PAD + (_WIDTH - 2 * _PAD) * max(
            0.0, min(1.0, (when - start).total_seconds() / span))
        colour = STANCE_COLOURS.get(p["stance"], "#57606a")
        fill = "#fff" if p.get("before_window") else colour
        tip = f"{_day(when)} {p['actor']}: {p['stance']} — {p.get('evidence') or ''}"
        marks.append(f'<circle cx="{x:.1f}" cy="{_ROW // 2}" r="6" fill="{fill}" stroke="{colour}" stroke-width="2">'
                     f'<title>{_e(tip)}</title></circle>')
    axis = (f'<text x="{_PAD}" y="{_ROW + 10}" font-size="10" fill="#57606a">{_day(start)}</text>'
            f'<text x="{_WIDTH - _PAD}" y="{_ROW + 10}" font-size="10" fill="#57606a" text-anchor="end">'
            f'{_day(end)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_ROW + 14}" role="img" '
            f'viewBox="0 0 {_WIDTH} {_ROW + 14}"><line x1="{_PAD}" y1="{_ROW // 2}" x2="{_WIDTH - _PAD}" '
            f'y2="{_ROW // 2}" stroke="#d0d7de" stroke-width="2"/>{axis}{"".join(marks)}</svg>')


def _timelines(positions: Sequence[Mapping[str, Any]], topics: Mapping[str, str | None],
               start: dt.datetime, end: dt.datetime) -> str:
    by_topic: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for p in positions:
        by_topic.setdefault(p["topic"], {}).setdefault(p["actor_group"], []).append(p)
    out = []
    for topic in sorted(by_topic):
        out.append(f'<h3 data-topic="{_e(topic)}">{_e(topics.get(topic) or topic)} '
                   f'<span class="muted">({_e(topic)})</span></h3><table class="timeline">')
        for group in sorted(by_topic[topic]):
            points = by_topic[topic][group]
            statements = "".join(
                f'<li>{_day(p["published_at"])} {_stance(p["stance"])} {_e(p["actor"])}: {_e(p.get("evidence"))} '
                f'{_link(p["url"], p.get("title"))}{" (before the window)" if p.get("before_window") else ""}</li>'
                for p in points)
            out.append(f'<tr data-timeline="{_e(topic)}|{_e(group)}"><td class="actor">{_e(group)}</td>'
                       f'<td>{_timeline_svg(points, start, end)}'
                       f'<details><summary class="muted">{len(points)} statement{"s" if len(points) != 1 else ""}'
                       f'</summary><ul>{statements}</ul></details></td></tr>')
        out.append("</table>")
    return "".join(out) or '<p class="muted">No positions stated in this window.</p>'


def render_report(rows: Mapping[str, Sequence[Mapping[str, Any]]], since: dt.datetime, until: dt.datetime | None,
                  generated_at: dt.datetime) -> str:
    """The report page for the window [since, until) from `report_rows`' rows."""
    changes, positions, pledges = rows["changes"], rows["positions"], rows["pledges"]
    topics = {t["topic"]: t.get("description") for t in rows["topics"]}
    stated = [p["published_at"] for p in positions if not p.get("before_window")]
    end = until or max([*stated, since + dt.timedelta(days=1)])
    window = f"{_day(since)} – {_day(until - dt.timedelta(days=1)) if until else _day(end)}"
    articles = rows["counts"][0]["articles"] if rows.get("counts") else 0
    totals: dict[str, float] = {}
    for p in pledges:
        if p.get("amount_eur") is not None:
            totals[p["recipient"]] = totals.get(p["recipient"], 0.0) + p["amount_eur"]
    total_line = "; ".join(f"{_e(r)}: {_eur(v)}" for r, v in sorted(totals.items(), key=lambda kv: -kv[1]))
    legend = "".join(f'<span>{_stance(s)}</span>' for s in STANCE_COLOURS)
    change_rows = "".join(_change_row(c) for c in changes)
    pledge_rows = "".join(_pledge_row(p) for p in pledges)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>newsmon report {window}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>newsmon report: {window}</h1>
<p class="muted">{articles} article{"s" if articles != 1 else ""} published in the window; {len(changes)} change{"s" if len(changes) != 1 else ""}; generated {_e(generated_at.strftime("%Y-%m-%d %H:%M %Z"))}.</p>
<h2 id="changes">Changes</h2>
{f'<table><thead><tr><th>Date</th><th>Who</th><th>On</th><th>Old → new</th><th>Evidence</th></tr></thead><tbody>{change_rows}</tbody></table>' if changes else '<p class="muted">No change in this window.</p>'}
<h2 id="pledges">Current pledges</h2>
<p class="muted">The standing pledge per donor, recipient and kind (a raised pledge counts once, at its new amount). Total in EUR: {total_line or "none"}.</p>
{f'<table><thead><tr><th>Donor</th><th>Recipient</th><th>Kind</th><th>Amount</th><th>EUR</th><th>Replaced</th><th>Since</th><th>Evidence</th></tr></thead><tbody>{pledge_rows}</tbody></table>' if pledges else '<p class="muted">No pledges.</p>'}
<h2 id="timelines">Stances by topic and actor</h2>
<p class="legend muted">{legend} <span>hollow: the last stance before the window</span></p>
{_timelines(positions, topics, since, end)}
</main>
</body>
</html>
"""
