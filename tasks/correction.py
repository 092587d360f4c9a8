"""The correction of an alert whose change was retracted after it was sent.

`compose_correction` writes the message that withdraws changes an earlier message
announced (evidence found later reordered what was said). It names that message (its
date and Message-ID), threads to it (`In-Reply-To`, `References`, and
`X-Newsmon-Correction`), and announces, as a briefing does, the changes that now stand
in their place on the same subjects, if any. A withdrawn change is written on two
lines (group and subject, then the values withdrawn), so that no line reads as
announcing it again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime

from tasks.changes import Change
from tasks.digest import (_NO_BRIEFING, MESSAGE_ID_DOMAIN, QUOTE_WIDTH, SUBJECT_MAX, Briefing, _clean, _day,
                          _html_change, _link, _ordered, _plain_change, _subject_text, _trend, _values, chart_cid)

__all__ = ["compose_correction", "correction_message_id", "CORRECTION_HEADER"]

CORRECTION_HEADER = "X-Newsmon-Correction"


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
