"""The alert digest as a briefing: what one recipient reads about the changes due to them.

`compose_digest` writes ONE message per recipient and run: multipart/alternative, a
text part that carries every fact and styled HTML (inline CSS only, table layout, so
that common mail clients render it) with each change's chart embedded as a related
image part (`cid:`). The subject names the biggest change (`weight`).

Each change is announced on one line of the text part (one table row of the HTML)
naming the actor group, the subject (topic id with spaces, or the aid recipient), the
old value then the new one and both dates; every other fact (the topic's description,
who said it, the outlets, the EUR equivalents, the evidence sentences with their key
words emphasised, the history behind the chart) stands on lines of its own, which
never name the group and the subject together, so a reader (or the acceptance
harness) finds exactly one announcement per change. Everything taken from articles is
HTML-escaped in the HTML part and never reaches a header with a line break in it.

The Message-ID is a hash of the recipient and the sorted change ids (and a resend
counter), so the same digest composed again is the same message. A resend
(`newsmon alerts resend`) starts its subject with "[Resent]" and carries
`X-Newsmon-Resend` with the resend count.

`Briefing` holds what the change_log row does not (see `tasks.briefing`); without one
the message still names every change.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from tasks.changes import Change, format_amount

__all__ = [
    "Briefing", "compose_digest", "digest_message_id", "digest_subject", "announcement", "weight", "biggest",
    "headline", "emphasise", "chart_cid", "SUBJECT_MAX", "QUOTE_WIDTH", "MESSAGE_ID_DOMAIN", "RESEND_PREFIX",
    "RESEND_HEADER",
]

SUBJECT_MAX = 140          # characters of the Subject header before it is cut with "…"
QUOTE_WIDTH = 72           # quoted evidence is wrapped like any plain-text mail
MESSAGE_ID_DOMAIN = "newsmon"
RESEND_PREFIX = "[Resent] "
RESEND_HEADER = "X-Newsmon-Resend"


# -- text helpers ---------------------------------------------------------------------
def _clean(text: object) -> str:
    """One line of text: every run of whitespace (CR/LF included) becomes one space."""
    return " ".join(str(text or "").split())


def _day(value: dt.datetime | None) -> str:
    if value is None:
        return "undated"
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.date().isoformat() if isinstance(value, dt.datetime) else str(value)


def _subject_text(change: Change) -> str:
    """The topic id with spaces, or the aid recipient."""
    return _clean(change.subject.replace("_", " ") if change.kind == "position" else change.subject)


def _values(change: Change) -> tuple[str, str]:
    return _clean(change.old_value or "?"), _clean(change.new_value)


def _trend(change: Change) -> str:
    if change.kind != "aid" or change.relative_change is None:
        return ""
    return f" ({change.relative_change:+.0%})"


def digest_message_id(recipient: str, change_ids: Iterable[str], resends: int = 0) -> str:
    """`<hash@newsmon>` of the recipient and the sorted change ids: the same digest, the same id."""
    key = "\n".join([recipient.casefold(), *sorted(change_ids)] + ([f"resend {resends}"] if resends else []))
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{MESSAGE_ID_DOMAIN}>"


def _ordered(changes: Iterable[Change]) -> list[Change]:
    """Publication order, so a digest composed again from the same changes is the same text."""
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(changes, key=lambda c: (c.new_published_at is None, c.new_published_at or epoch,
                                          c.new_url, c.kind, c.change_id))


# -- the briefing ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Briefing:
    """What the briefing says about a change beyond its change_log row (all optional).

    `topic`: the topic's description (config/topics.yaml); `old_actor`/`new_actor`: who
    stated it (a minister, a government); `old_keys`/`new_keys`: the words of each sentence
    to emphasise (the cue, the money); `aid_kind`: military, financial, humanitarian…;
    `old_eur`/`new_eur`: the amounts in EUR; `old_outlet`/`new_outlet`: the outlets;
    `history`: the series behind the change, (date, value as text), oldest first;
    `chart`: a PNG of that history.
    """

    topic: str | None = None
    old_actor: str | None = None
    new_actor: str | None = None
    old_keys: tuple[str, ...] = ()
    new_keys: tuple[str, ...] = ()
    aid_kind: str | None = None
    old_eur: float | None = None
    new_eur: float | None = None
    old_outlet: str | None = None
    new_outlet: str | None = None
    history: tuple[tuple[dt.datetime | None, str], ...] = ()
    chart: bytes | None = None


_NO_BRIEFING = Briefing()
_REVERSAL = {frozenset({"support", "oppose"})}
_FIRM = {"support", "oppose"}


def weight(change: Change, briefing: Briefing | None = None) -> tuple[float, float]:
    """How big a change is, for the subject: (rank, size). Higher is bigger.

    Positions: a reversal (support <-> oppose) ranks 3, a move to or from a firm stance 2,
    any other 1. Aid: a move of half the old amount or more ranks 3, a quarter 2, less 1;
    the size breaks ties (the EUR difference, when known).
    """
    if change.kind == "aid":
        rel = abs(change.relative_change) if change.relative_change is not None else 0.0
        rank = 3.0 if rel >= 0.5 else 2.0 if rel >= 0.25 else 1.0
        b = briefing or _NO_BRIEFING
        if b.old_eur is not None and b.new_eur is not None:
            size = abs(b.new_eur - b.old_eur)
        elif change.old_amount is not None and change.new_amount is not None:
            size = abs(change.new_amount - change.old_amount)
        else:
            size = 0.0
        return rank, size
    pair = frozenset({change.old_value, change.new_value})
    rank = 3.0 if pair in _REVERSAL else 2.0 if pair & _FIRM else 1.0
    return rank, 0.0


def biggest(changes: Sequence[Change], briefings: Mapping[str, Briefing] | None = None) -> Change:
    """The change the subject names: the heaviest (`weight`), the latest published among equals."""
    ordered = _ordered(changes)
    briefings = briefings or {}
    return max(reversed(ordered), key=lambda c: weight(c, briefings.get(c.change_id)))


def headline(change: Change) -> str:
    """'France on direct talks with putin: oppose → conditional',
    'Germany aid to Ukraine: €4bn → €8bn (+100%)'."""
    old, new = _values(change)
    if change.kind == "aid":
        return f"{_clean(change.actor_group)} aid to {_subject_text(change)}: {old} → {new}{_trend(change)}"
    return f"{_clean(change.actor_group)} on {_subject_text(change)}: {old} → {new}"


def digest_subject(changes: Sequence[Change], limit: int = SUBJECT_MAX,
                   briefings: Mapping[str, Briefing] | None = None) -> str:
    """The biggest change's headline, and how many more (one line, at most `limit` characters)."""
    n = len(changes)
    if not n:
        return "no changes"
    text = headline(biggest(changes, briefings))
    more = f" (and {n - 1} more change{'s' if n > 2 else ''})" if n > 1 else ""
    if len(text) + len(more) > limit:
        text = text[: max(1, limit - len(more) - 1)].rstrip() + "…"
    return text + more


def announcement(change: Change) -> str:
    """The one plain-text line that announces a change (links included, evidence not)."""
    old, new = _values(change)
    kind = "position" if change.kind == "position" else "aid"
    dates = f"{_day(change.old_published_at)} → {_day(change.new_published_at)}"
    if change.old_url and change.old_url != change.new_url:
        links = f"before: {_clean(change.old_url)} now: {_clean(change.new_url)}"
    else:
        links = f"source: {_clean(change.new_url)}"
    return (f"- {_clean(change.actor_group)} | {_subject_text(change)} | {kind}: {old} → {new}{_trend(change)}"
            f" | {dates} | {links}")


def _announcement_short(change: Change) -> str:
    """The announcing line of the briefing: group, subject, old then new (one line; links below)."""
    old, new = _values(change)
    return (f"{_clean(change.actor_group)} | {_subject_text(change)} | {change.kind}: {old} → {new}{_trend(change)}"
            f" | {_day(change.old_published_at)} → {_day(change.new_published_at)}")


def _evidence(change: Change) -> list[tuple[str, str | None, dt.datetime | None, str | None]]:
    """(label, sentence, date, url) of the claims behind a change; one if both are the same sentence."""
    if change.old_claim_id == change.new_claim_id or (
            change.old_url == change.new_url and _clean(change.old_evidence) == _clean(change.new_evidence)):
        return [("evidence", change.new_evidence, change.new_published_at, change.new_url)]
    return [("before", change.old_evidence, change.old_published_at, change.old_url),
            ("now", change.new_evidence, change.new_published_at, change.new_url)]


def _key_spans(sentence: str, keys: Iterable[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) of every key phrase in the sentence (case-insensitive, whole words)."""
    spans: list[tuple[int, int]] = []
    for key in sorted({_clean(k) for k in keys if k and _clean(k)}, key=len, reverse=True):
        for m in re.finditer(rf"(?<!\w){re.escape(key)}(?!\w)", sentence, re.IGNORECASE):
            if all(m.end() <= a or m.start() >= b for a, b in spans):
                spans.append((m.start(), m.end()))
    return sorted(spans)


def emphasise(sentence: str | None, keys: Iterable[str], *, html_out: bool) -> str:
    """The sentence with its key words marked: <strong> in HTML (the rest escaped), *…* in plain text."""
    text = _clean(sentence)
    out, at = [], 0
    for a, b in _key_spans(text, keys):
        if html_out:
            out += [html.escape(text[at:a]), f"<strong>{html.escape(text[a:b])}</strong>"]
        else:
            out += [text[at:a], f"*{text[a:b]}*"]
        at = b
    out.append(html.escape(text[at:]) if html_out else text[at:])
    return "".join(out)


def _eur(amount: float | None) -> str:
    """An EUR equivalent, rounded to three significant digits (it is an estimate): €628m, €2.79bn."""
    if amount is None:
        return "?"
    return format_amount(float(f"{amount:.3g}"), "EUR")


def _percent(change: Change, b: Briefing) -> str | None:
    if change.relative_change is not None:
        return f"{change.relative_change:+.0%}"
    if b.old_eur and b.new_eur is not None:
        return f"{(b.new_eur - b.old_eur) / b.old_eur:+.0%}"
    return None


def _side(change: Change, b: Briefing, old: bool) -> dict[str, Any]:
    return dict(
        label="Before" if old else "Now",
        value=_values(change)[0 if old else 1],
        day=_day(change.old_published_at if old else change.new_published_at),
        outlet=_clean((b.old_outlet if old else b.new_outlet) or _host(change.old_url if old else change.new_url)),
        url=change.old_url if old else change.new_url,
        title=change.old_title if old else change.new_title,
        actor=b.old_actor if old else b.new_actor,
        sentence=change.old_evidence if old else change.new_evidence,
        keys=tuple(b.old_keys if old else b.new_keys) + tuple(
            k for k in ((b.old_actor if old else b.new_actor), change.actor_group) if k))


def _host(url: str | None) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url or "").hostname or ""
    except ValueError:
        return ""


def _sides(change: Change, b: Briefing) -> list[dict[str, Any]]:
    if len(_evidence(change)) == 1:  # one sentence states both (a stated revision)
        return [dict(_side(change, b, old=False), label="Evidence", value=f"{_values(change)[0]} → "
                     f"{_values(change)[1]}")]
    return [_side(change, b, old=True), _side(change, b, old=False)]


def _history_text(b: Briefing) -> str | None:
    if len(b.history) < 2:
        return None
    return "History: " + ", ".join(f"{_clean(v)} ({_day(d)})" for d, v in b.history)


def _plain_change(i: int, c: Change, b: Briefing) -> list[str]:
    """A change in the text part: one announcing line, then every fact on lines of their own
    (none of which names the group and subject together: the announcement stays the one line)."""
    out = [f"{i}. {_announcement_short(c)}"]
    if c.kind == "position" and b.topic:
        out.append(f"   Topic: {_clean(b.topic)}")
    if c.kind == "aid":
        facts = [f"kind: {_clean(b.aid_kind or 'unspecified')}"]
        if b.old_eur is not None or b.new_eur is not None:
            facts.append(f"in EUR: {_eur(b.old_eur)} → {_eur(b.new_eur)}")
        pct = _percent(c, b)
        if pct:
            facts.append(f"change: {pct}")
        out.append("   " + "; ".join(facts))
    for side in _sides(c, b):
        who = f", {_clean(side['actor'])}" if side["actor"] and c.kind == "position" else ""
        out.append(f"   {side['label']}: {side['value']}, {side['day']}, {side['outlet'] or 'unknown outlet'}{who}")
        out.append(f"     {_clean(side['url'])}")
        quoted = textwrap.wrap(f"\u201c{emphasise(side['sentence'], side['keys'], html_out=False)}\u201d",
                               width=QUOTE_WIDTH - 7) or ["\u201c\u201d"]
        out.extend(f"     > {line}" for line in quoted)
    history = _history_text(b)
    if history:
        out.extend("   " + line for line in textwrap.wrap(history, width=QUOTE_WIDTH - 3))
    out.append("")
    return out


def _plain(recipient: str, changes: list[Change], briefings: Mapping[str, Briefing]) -> str:
    n = len(changes)
    out = [f"newsmon briefing: {n} change{'s' if n != 1 else ''} in stated positions and aid pledges, "
           "oldest first.", ""]
    for i, c in enumerate(changes, start=1):
        out += _plain_change(i, c, briefings.get(c.change_id, _NO_BRIEFING))
    out += ["-- ", f"Sent by newsmon to {recipient}. Each change is announced once; if later evidence",
            "withdraws one, a correction follows in this thread."]
    return "\n".join(out) + "\n"


def _link(url: str | None, label: str) -> str:
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{html.escape(url, quote=True)}" style="color:#1d4ed8">{label}</a>'
    return f"{label} ({html.escape(url or '')})" if url else label


_STANCE_COLOURS = {"support": "#047857", "oppose": "#b91c1c", "conditional": "#b45309", "undecided": "#4b5563"}


def _chip(value: str, kind: str) -> str:
    colour = _STANCE_COLOURS.get(value, "#1f2937") if kind == "position" else "#1f2937"
    return (f'<span style="display:inline-block;padding:1px 8px;border-radius:10px;border:1px solid {colour};'
            f'color:{colour};font-weight:bold">{html.escape(value)}</span>')


def chart_cid(index: int, change: Change) -> str:
    """The Content-ID of a change's chart (without the angle brackets)."""
    return f"chart-{index}-{change.change_id[:16]}@{MESSAGE_ID_DOMAIN}"


def _html_change(i: int, c: Change, b: Briefing) -> str:
    e = lambda t: html.escape(_clean(t), quote=True)  # noqa: E731
    old, new = _values(c)
    badge_colour = "#1d4ed8" if c.kind == "position" else "#7c3aed"
    head = (f'<tr><td style="padding:12px 16px 4px 16px;font-size:16px">'
            f'<span style="font-size:11px;color:#fff;background:{badge_colour};padding:2px 6px;border-radius:3px;'
            f'text-transform:uppercase;letter-spacing:0.5px">{e(c.kind)}</span> '
            f"<strong>{e(c.actor_group)}</strong> &middot; {e(_subject_text(c))}: "
            f"{_chip(old, c.kind)} &rarr; {_chip(new, c.kind)} {e(_trend(c))}</td></tr>")
    rows = [head]
    if c.kind == "position" and b.topic:
        rows.append(f'<tr><td style="padding:0 16px 6px 16px;color:#4b5563;font-style:italic">{e(b.topic)}</td></tr>')
    if c.kind == "aid":
        facts = [f"Kind: <strong>{e(b.aid_kind or 'unspecified')}</strong>"]
        if b.old_eur is not None or b.new_eur is not None:
            facts.append(f"In EUR: <strong>{e(_eur(b.old_eur))} &rarr; {e(_eur(b.new_eur))}</strong>")
        pct = _percent(c, b)
        if pct:
            facts.append(f"Change: <strong>{e(pct)}</strong>")
        rows.append(f'<tr><td style="padding:0 16px 6px 16px;color:#374151">{" &middot; ".join(facts)}</td></tr>')
    for side in _sides(c, b):
        who = f" &middot; {e(side['actor'])}" if side["actor"] and c.kind == "position" else ""
        title = e(side["title"] or side["outlet"] or side["url"])
        rows.append(
            '<tr><td style="padding:4px 16px">'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'style="border-left:3px solid #d1d5db"><tr><td style="padding:2px 10px">'
            f'<div style="font-size:12px;color:#6b7280">{e(side["label"])}: <strong>{e(side["value"])}</strong>, '
            f'{e(side["day"])}, {e(side["outlet"] or "unknown outlet")}{who}</div>'
            f'<div style="font-size:14px;color:#111827;margin:2px 0">&ldquo;'
            f'{emphasise(side["sentence"], side["keys"], html_out=True)}&rdquo;</div>'
            f'<div style="font-size:12px">{_link(side["url"], title)}</div></td></tr></table></td></tr>')
    if b.chart:
        alt = e(_history_text(b) or "history")
        rows.append(f'<tr><td style="padding:6px 16px 12px 16px"><img src="cid:{chart_cid(i, c)}" width="560" '
                    f'alt="{alt}" style="display:block;max-width:100%;height:auto;border:0"></td></tr>')
    return ('<tr><td style="padding:0 0 14px 0"><table role="presentation" width="100%" cellpadding="0" '
            'cellspacing="0" style="background:#ffffff;border:1px solid #e5e7eb;border-radius:6px">'
            + "".join(rows) + "</table></td></tr>")


def _html(recipient: str, changes: list[Change], briefings: Mapping[str, Briefing], subject: str) -> str:
    n = len(changes)
    cards = "\n".join(_html_change(i, c, briefings.get(c.change_id, _NO_BRIEFING))
                      for i, c in enumerate(changes, start=1))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width,initial-scale=1"><title>newsmon briefing</title></head>\n'
        '<body style="margin:0;padding:0;background:#f3f4f6">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6">'
        '<tr><td align="center" style="padding:20px 8px">\n'
        '<table role="presentation" width="640" cellpadding="0" cellspacing="0" '
        'style="max-width:640px;width:100%;font-family:Arial,Helvetica,sans-serif;color:#111827">\n'
        '<tr><td style="padding:0 0 12px 0">'
        '<div style="font-size:12px;color:#6b7280;text-transform:uppercase;letter-spacing:1px">newsmon briefing</div>'
        f'<div style="font-size:20px;font-weight:bold;margin-top:4px">{html.escape(subject)}</div>'
        f'<div style="font-size:13px;color:#4b5563;margin-top:4px">{n} change{"s" if n != 1 else ""} in stated '
        "positions and aid pledges, oldest first.</div></td></tr>\n"
        f"{cards}\n"
        '<tr><td style="padding:8px 0;font-size:12px;color:#6b7280">'
        f"Sent by newsmon to {html.escape(recipient)}. Each change is announced once; if later evidence "
        "withdraws one, a correction follows in this thread.</td></tr>\n"
        "</table></td></tr></table>\n</body></html>\n")


def compose_digest(recipient: str, changes: Sequence[Change], sender: str, *, message_id: str | None = None,
                   date: dt.datetime | None = None, resends: int = 0,
                   briefings: Mapping[str, Briefing] | None = None) -> EmailMessage:
    """One briefing announcing every change in `changes` to `recipient`: a text part with
    every fact, and styled HTML (inline CSS) with each change's chart embedded (`cid:`).

    `briefings` (change id -> `Briefing`) adds what the change_log row does not hold;
    without it the message still names every change. `message_id` (default:
    `digest_message_id(recipient, ids, resends)`) is given when a digest is sent again
    after a crash, so that it stays the same message.
    """
    if not changes:
        raise ValueError("a digest needs at least one change")
    ordered = _ordered(changes)
    briefings = briefings or {}
    msg = EmailMessage()
    subject = _clean(digest_subject(ordered, SUBJECT_MAX - (len(RESEND_PREFIX) if resends else 0), briefings))
    msg["Subject"] = (RESEND_PREFIX + subject) if resends else subject
    msg["From"] = _clean(sender)
    msg["To"] = _clean(recipient)
    msg["Date"] = format_datetime(date or dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = _clean(message_id or digest_message_id(recipient, [c.change_id for c in ordered], resends))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    if resends:
        msg[RESEND_HEADER] = str(int(resends))
    msg.set_content(_plain(recipient, ordered, briefings), cte="quoted-printable")
    msg.add_alternative(_html(recipient, ordered, briefings, subject), subtype="html", cte="quoted-printable")
    html_part = msg.get_payload()[1]
    for i, c in enumerate(ordered, start=1):
        chart = briefings.get(c.change_id, _NO_BRIEFING).chart
        if chart:
            html_part.add_related(chart, "image", "png", cid=f"<{chart_cid(i, c)}>",
                                  filename=f"chart-{i}.png", disposition="inline")
    return msg
