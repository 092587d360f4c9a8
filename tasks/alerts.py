"""Alert emails: who wants which change, the digest message, and the SMTP send.

After `detect_changes` records new changes, `due_pairs` decides which recipients
want each one (their filters: actor groups, topics or aid recipients, kinds, the
smallest relative aid change). `send_alerts` then composes ONE digest per
recipient with `compose_digest` and hands it to `send_message`.

A digest is a multipart/alternative message, plain text and HTML. Each change is
announced on one line (plain) or one table row (HTML) naming the actor group, the
subject (topic with spaces, or the aid recipient), the old value then the new one,
both dates and both articles; the two evidence sentences are quoted below it, on
lines of their own. Everything taken from articles is HTML-escaped in the HTML
part and never reaches a header with a line break in it.

The Message-ID is a hash of the recipient and the sorted change ids (and a resend
counter), so the same digest composed again is the same message.

Errors (all `AlertError`):

    AlertError                the server refused this message for now (4xx): it stays due
     ├── SmtpUnavailableError  no connection, greeting, STARTTLS or login: no message can go now
     ├── DeliveryUnknownError  the connection broke after the message was handed over
     └── PermanentAlertError   this recipient or message can never go this way (5xx to RCPT/DATA,
                               an address that is not one, a non-ASCII address and a server
                               without SMTPUTF8): recorded as failed at once, never retried

Corrections: `compose_correction` writes the message that withdraws changes an earlier
message announced (a late article reordered the evidence). It names that message (its
date and Message-ID) and threads to it (`In-Reply-To`, `References`), and announces the
changes that now stand in their place on the same subject, if any.

Resends (`newsmon alerts resend`): the subject starts with "[Resent]" and the header
`X-Newsmon-Resend` gives the resend count.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import re
import smtplib
import ssl
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from email.message import EmailMessage
from email.utils import format_datetime

from newsmon.errors import AlertError
from newsmon.mailaddr import needs_smtputf8, plain_address
from newsmon.settings import Recipient, SmtpSettings
from tasks.changes import Change, format_amount

__all__ = [
    "SmtpUnavailableError", "DeliveryUnknownError", "PermanentAlertError", "compose_correction",
    "correction_message_id", "RESEND_PREFIX", "Briefing", "weight", "biggest", "headline", "emphasise",
    "chart_cid", "wants", "due_pairs", "digest_message_id",
    "digest_subject", "announcement", "compose_digest", "send_message",
]

SUBJECT_MAX = 140          # characters of the Subject header before it is cut with "…"
QUOTE_WIDTH = 72           # quoted evidence is wrapped like any plain-text mail
MESSAGE_ID_DOMAIN = "newsmon"
RESEND_PREFIX = "[Resent] "
RESEND_HEADER = "X-Newsmon-Resend"
CORRECTION_HEADER = "X-Newsmon-Correction"


class SmtpUnavailableError(AlertError):
    """The SMTP server cannot be reached or refuses the session: try again on a later run."""


class DeliveryUnknownError(AlertError):
    """The connection broke after the message was handed over: it may have arrived."""


class PermanentAlertError(AlertError):
    """This message can never go to this recipient this way: do not try again."""


# -- who wants what ----------------------------------------------------------------
def _fold(text: str | None) -> str:
    return " ".join((text or "").replace("_", " ").casefold().split())


def wants(recipient: Recipient, change: Change) -> bool:
    """Whether `change` passes the recipient's filters (an empty filter lets everything through)."""
    if recipient.kinds and change.kind not in recipient.kinds:
        return False
    if recipient.groups and _fold(change.actor_group) not in {_fold(g) for g in recipient.groups}:
        return False
    if recipient.topics and _fold(change.subject) not in {_fold(t) for t in recipient.topics}:
        return False
    if change.kind == "aid" and recipient.min_aid_change > 0:
        rel = change.relative_change
        if rel is None and change.old_amount and change.new_amount is not None \
                and change.old_currency == change.currency:
            rel = (change.new_amount - change.old_amount) / change.old_amount
        if rel is not None and abs(rel) < recipient.min_aid_change:
            return False
    return True


def due_pairs(changes: Iterable[Change], recipients: Sequence[Recipient]) -> list[tuple[str, str]]:
    """(change_id, address) for every change and every recipient who wants it."""
    return [(c.change_id, r.address) for c in changes for r in recipients if wants(r, c)]


# -- the digest ----------------------------------------------------------------------
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
    """'France on direct talks with putin: oppose → conditional', 'Germany aid to Ukraine: €4bn → €8bn (+100%)'."""
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
    return format_amount(amount, "EUR") if amount is not None else "?"


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


# -- corrections -----------------------------------------------------------------------
def correction_message_id(recipient: str, announced_message_id: str, retracted_ids: Iterable[str],
                          replacement_ids: Iterable[str] = ()) -> str:
    """`<hash@newsmon>` of what the correction withdraws and announces: the same correction, the same id."""
    key = "\n".join(["correction", recipient.casefold(), announced_message_id, *sorted(retracted_ids), "now",
                     *sorted(replacement_ids)])
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{MESSAGE_ID_DOMAIN}>"


def _correction_subject(announced_at: dt.datetime | None, retracted: Sequence[Change],
                        limit: int = SUBJECT_MAX) -> str:
    first = retracted[0]
    old, new = _values(first)
    more = f" and {len(retracted) - 1} more" if len(retracted) > 1 else ""
    text = (f"Correction to the alert of {_day(announced_at)}: {_clean(first.actor_group)} "
            f"{_subject_text(first)} {old} → {new} withdrawn{more}")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _withdrawn_plain(c: Change) -> list[str]:
    """A withdrawn change, written so that no line reads as announcing it: the group and
    subject on one line, the values withdrawn on the next."""
    old, new = _values(c)
    return [f"- {_clean(c.actor_group)} | {_subject_text(c)} ({c.kind})",
            f"    withdrawn: {old} → {new}{_trend(c)}, dated {_day(c.new_published_at)}",
            f"    announced on the evidence of: {_clean(c.new_url)}"]


def compose_correction(recipient: str, retracted: Sequence[Change], replacements: Sequence[Change],
                       sender: str, *, announced_message_id: str, announced_at: dt.datetime | None,
                       message_id: str | None = None, date: dt.datetime | None = None,
                       briefings: Mapping[str, Briefing] | None = None) -> EmailMessage:
    """The correction of the message `announced_message_id` (sent `announced_at`): the changes in
    `retracted` no longer stand; `replacements` (possibly none) are the changes on the same
    subjects that stand now, announced here as in a briefing (`briefings` as in `compose_digest`).

    Threaded under the announcement (`In-Reply-To`, `References`).
    """
    if not retracted:
        raise ValueError("a correction needs at least one withdrawn change")
    gone, now_ = _ordered(retracted), _ordered(replacements)
    announced_message_id = _clean(announced_message_id)
    msg = EmailMessage()
    msg["Subject"] = _clean(_correction_subject(announced_at, gone))
    msg["From"] = _clean(sender)
    msg["To"] = _clean(recipient)
    msg["Date"] = format_datetime(date or dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = _clean(message_id or correction_message_id(
        recipient, announced_message_id, [c.change_id for c in gone], [c.change_id for c in now_]))
    msg["In-Reply-To"] = announced_message_id
    msg["References"] = announced_message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg[CORRECTION_HEADER] = announced_message_id
    when = _day(announced_at)
    n = len(gone)
    intro = (f"Correction: newsmon's alert of {when} (Message-ID {announced_message_id}) announced "
             f"{'a change' if n == 1 else f'{n} changes'} that no longer stand{'s' if n == 1 else ''}: "
             "evidence found later (an article published earlier but listed late, or the articles "
             "read again) changed the sequence of what was said.")
    plain = [*textwrap.wrap(intro, width=QUOTE_WIDTH, break_long_words=False, break_on_hyphens=False), "",
             "Withdrawn:"]
    for c in gone:
        plain += _withdrawn_plain(c)
    plain.append("")
    briefings = briefings or {}
    if now_:
        plain += ["What the evidence shows now, on the same subjects:", ""]
        for i, c in enumerate(now_, start=1):
            plain += _plain_change(i, c, briefings.get(c.change_id, _NO_BRIEFING))
    else:
        plain += ["No change on these subjects stands in their place.", ""]
    plain += ["-- ", f"Sent by newsmon to {recipient}: one correction per withdrawn announcement."]
    msg.set_content("\n".join(plain) + "\n", cte="quoted-printable")
    e = lambda t: html.escape(_clean(t), quote=True)  # noqa: E731
    items = "".join(
        f'<li style="margin:0 0 6px 0">{e(c.actor_group)} &middot; {e(_subject_text(c))} ({e(c.kind)})<br>'
        f'<span style="color:#8a1c1c">withdrawn: <s>{e(_values(c)[0])} &rarr; {e(_values(c)[1])}</s></span>, '
        f"dated {e(_day(c.new_published_at))} &middot; {_link(c.new_url, 'article')}</li>" for c in gone)
    standing = "".join(_html_change(i, c, briefings.get(c.change_id, _NO_BRIEFING))
                       for i, c in enumerate(now_, start=1)) or \
        '<tr><td style="padding:4px 0">No change on these subjects stands in their place.</td></tr>'
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>newsmon correction</title></head>'
        '<body style="margin:0;padding:16px;background:#f3f4f6">\n'
        '<table role="presentation" width="640" cellpadding="0" cellspacing="0" '
        'style="max-width:640px;width:100%;font-family:Arial,Helvetica,sans-serif;color:#111827">\n'
        f'<tr><td style="background:#fff4e5;border-left:4px solid #d97706;padding:8px 12px">{e(intro)}</td></tr>\n'
        f'<tr><td style="padding:12px 0 4px 0"><strong>Withdrawn</strong><ul>{items}</ul></td></tr>\n'
        '<tr><td style="padding:4px 0"><strong>What the evidence shows now</strong></td></tr>\n'
        f"{standing}\n"
        f'<tr><td style="color:#6b7280;font-size:12px;padding:8px 0">Sent by newsmon to {html.escape(recipient)}: '
        "one correction per withdrawn announcement.</td></tr>\n</table>\n</body></html>\n")
    msg.add_alternative(body, subtype="html", cte="quoted-printable")
    html_part = msg.get_payload()[1]
    for i, c in enumerate(now_, start=1):
        chart = briefings.get(c.change_id, _NO_BRIEFING).chart
        if chart:
            html_part.add_related(chart, "image", "png", cid=f"<{chart_cid(i, c)}>",
                                  filename=f"chart-{i}.png", disposition="inline")
    return msg


# -- sending -------------------------------------------------------------------------
def send_message(smtp: SmtpSettings, msg: EmailMessage, recipient: str | None = None) -> None:
    """Deliver `msg` to `recipient` (default: its To header) through the configured server
    (SSL or STARTTLS, login when a username is set). The envelope is `smtp.sender` and the
    one recipient, never parsed from headers.

    Raises `SmtpUnavailableError` (nothing can go now), `DeliveryUnknownError` (the link
    broke after the hand-over), `PermanentAlertError` (never to this recipient this way)
    or `AlertError` (this message was refused for now).
    """
    where = f"{smtp.host}:{smtp.port}"
    raw_to = recipient if recipient is not None else str(msg["To"] or "")
    try:
        to_addr = plain_address(raw_to)
    except ValueError as exc:
        raise PermanentAlertError(f"alert to {_clean(raw_to)!r} not sent: {exc}") from None
    phase = "connect"
    try:
        context = ssl.create_default_context() if (smtp.ssl or smtp.starttls) else None
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            client.ehlo()
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=context)
                client.ehlo()
            if smtp.username:
                password = smtp.password()
                if not password:
                    where_pw = (f"${smtp.password_env}" if smtp.password_env else "") or \
                               (f"Prefect Secret block {smtp.password_block!r}" if smtp.password_block else "")
                    raise SmtpUnavailableError(
                        f"SMTP login as {smtp.username!r} needs a password: set {where_pw or 'smtp.password_env'}")
                phase = "login"
                client.login(smtp.username, password)
            phase = "send"
            if needs_smtputf8(to_addr) and not client.has_extn("smtputf8"):
                raise PermanentAlertError(
                    f"the address {to_addr!r} is not ASCII and SMTP server {where} does not offer SMTPUTF8; "
                    "it cannot be delivered through this server (give an ASCII address)")
            client.send_message(msg, from_addr=smtp.sender, to_addrs=[to_addr])
            phase = "sent"
    except AlertError:
        raise
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentAlertError(f"SMTP server {where} cannot take the message to {to_addr!r}: "
                                  f"{_reason(exc)}") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpUnavailableError(
            f"SMTP server {where} refused the login of {smtp.username!r} ({exc.smtp_code}); "
            "check smtp.username and the password; alerts stay due") from None
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
        cls = PermanentAlertError if _permanent(exc) else AlertError
        raise cls(f"SMTP server {where} refused the message to {to_addr}: {_reason(exc)}") from None
    except smtplib.SMTPSenderRefused as exc:  # the sender is config: fix it, the alerts wait
        raise AlertError(f"SMTP server {where} refused the sender {smtp.sender!r}: {_reason(exc)}; "
                         "check smtp.sender") from None
    except (OSError, smtplib.SMTPException) as exc:
        if phase == "sent":
            return  # delivered; only the goodbye failed
        if phase == "send":
            raise DeliveryUnknownError(
                f"connection to SMTP server {where} broke while sending to {msg['To']}: {_reason(exc)}; "
                "the same message is sent again on a later run") from None
        raise SmtpUnavailableError(
            f"cannot use SMTP server {where} ({phase}): {_reason(exc)}; "
            "alerts stay due and go out on a later run") from None


def _permanent(exc: smtplib.SMTPException) -> bool:
    """A 5xx answer: the server will not take this recipient or message, however often asked."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [f"{code} {resp.decode(errors='replace') if isinstance(resp, bytes) else resp}"
                 for code, resp in exc.recipients.values()]
        return "; ".join(codes) or "recipients refused"
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {_clean(err)}"
    return _clean(str(exc)) or type(exc).__name__
