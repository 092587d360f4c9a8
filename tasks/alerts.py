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

import datetime as dt
import hashlib
import html
import smtplib
import ssl
import textwrap
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.utils import format_datetime

from newsmon.errors import AlertError
from newsmon.mailaddr import needs_smtputf8, plain_address
from newsmon.settings import Recipient, SmtpSettings
from tasks.changes import Change

__all__ = [
    "SmtpUnavailableError", "DeliveryUnknownError", "PermanentAlertError", "compose_correction",
    "correction_message_id", "RESEND_PREFIX", "wants", "due_pairs", "digest_message_id",
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


def digest_subject(changes: Sequence[Change], limit: int = SUBJECT_MAX) -> str:
    """'3 changes: France direct talks with putin oppose → conditional, …' (one line, at most `limit`)."""
    n = len(changes)
    head = f"{n} change{'s' if n != 1 else ''}: "
    parts = []
    for c in _ordered(changes):
        old, new = _values(c)
        parts.append(f"{_clean(c.actor_group)} {_subject_text(c)} {old} → {new}")
    text = head + parts[0] if parts else head.rstrip(": ")
    for i, part in enumerate(parts[1:], start=1):
        if len(text) + 2 + len(part) + (3 if i < n - 1 else 0) > limit:
            text += ", …"
            break
        text += ", " + part
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


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


def _evidence(change: Change) -> list[tuple[str, str | None, dt.datetime | None, str | None]]:
    """(label, sentence, date, url) of the claims behind a change; one if both are the same sentence."""
    if change.old_claim_id == change.new_claim_id or (
            change.old_url == change.new_url and _clean(change.old_evidence) == _clean(change.new_evidence)):
        return [("evidence", change.new_evidence, change.new_published_at, change.new_url)]
    return [("before", change.old_evidence, change.old_published_at, change.old_url),
            ("now", change.new_evidence, change.new_published_at, change.new_url)]


def _plain(recipient: str, changes: list[Change]) -> str:
    n = len(changes)
    out = [f"newsmon found {n} change{'s' if n != 1 else ''} in stated positions and aid pledges.", ""]
    for c in changes:
        out.append(announcement(c))
        for label, sentence, when, _url in _evidence(c):
            out.append(f"    {label} ({_day(when)}):")
            quoted = textwrap.wrap(f"\u201c{_clean(sentence)}\u201d", width=QUOTE_WIDTH - 6) or ["\u201c\u201d"]
            out.extend(f"    > {line}" for line in quoted)
        out.append("")
    out += ["-- ", f"Sent by newsmon to {recipient}: each change is announced once.",
            "The outbox: newsmon alerts list"]
    return "\n".join(out) + "\n"


def _link(url: str | None, label: str) -> str:
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{html.escape(url, quote=True)}">{label}</a>'
    return f"{label} ({html.escape(url or '')})" if url else label


def _html(recipient: str, changes: list[Change]) -> str:
    e = lambda s: html.escape(_clean(s), quote=True)  # noqa: E731
    n = len(changes)
    rows = []
    for c in changes:
        old, new = _values(c)
        if c.old_url and c.old_url != c.new_url:
            links = (_link(c.old_url, f"before: {e(c.old_title or c.old_url)}") + " &middot; "
                     + _link(c.new_url, f"now: {e(c.new_title or c.new_url)}"))
        else:
            links = _link(c.new_url, f"source: {e(c.new_title or c.new_url)}")
        rows.append(
            f"<tr><td>{e(c.actor_group)}</td><td>{e(_subject_text(c))}</td><td>{e(c.kind)}</td>"
            f"<td>{e(old)} &rarr; {e(new)} {e(_trend(c))}</td>"
            f"<td>{e(_day(c.old_published_at))} &rarr; {e(_day(c.new_published_at))}</td><td>{links}</td></tr>")
        quotes = "".join(
            f'<p style="margin:0 0 4px 12px;color:#444">{e(label)} ({e(_day(when))}): '
            f"&ldquo;{e(sentence)}&rdquo;</p>" for label, sentence, when, _url in _evidence(c))
        rows.append(f'<tr><td colspan="6">{quotes}</td></tr>')
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>newsmon alerts</title></head><body>\n'
        f"<p>newsmon found {n} change{'s' if n != 1 else ''} in stated positions and aid pledges.</p>\n"
        '<table cellpadding="4" style="border-collapse:collapse">\n'
        "<thead><tr><th>Group</th><th>Subject</th><th>Kind</th><th>Change</th><th>Dates</th>"
        "<th>Articles</th></tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
        f"<p style=\"color:#666\">Sent by newsmon to {html.escape(recipient)}: each change is announced once. "
        "The outbox: <code>newsmon alerts list</code></p>\n</body></html>\n")


def compose_digest(recipient: str, changes: Sequence[Change], sender: str, *, message_id: str | None = None,
                   date: dt.datetime | None = None, resends: int = 0) -> EmailMessage:
    """One message announcing every change in `changes` to `recipient` (plain text + HTML).

    `message_id` (default: `digest_message_id(recipient, ids, resends)`) is given when a
    digest is sent again after a crash, so that it stays the same message.
    """
    if not changes:
        raise ValueError("a digest needs at least one change")
    ordered = _ordered(changes)
    msg = EmailMessage()
    subject = _clean(digest_subject(ordered, SUBJECT_MAX - (len(RESEND_PREFIX) if resends else 0)))
    msg["Subject"] = (RESEND_PREFIX + subject) if resends else subject
    msg["From"] = _clean(sender)
    msg["To"] = _clean(recipient)
    msg["Date"] = format_datetime(date or dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = _clean(message_id or digest_message_id(recipient, [c.change_id for c in ordered], resends))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    if resends:
        msg[RESEND_HEADER] = str(int(resends))
    msg.set_content(_plain(recipient, ordered), cte="quoted-printable")
    msg.add_alternative(_html(recipient, ordered), subtype="html", cte="quoted-printable")
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
                       message_id: str | None = None, date: dt.datetime | None = None) -> EmailMessage:
    """The correction of the message `announced_message_id` (sent `announced_at`): the changes in
    `retracted` no longer stand; `replacements` (possibly none) are the changes on the same
    subjects that stand now, announced here (one line each, like a digest).

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
    if now_:
        plain += ["What the evidence shows now, on the same subjects:", ""]
        for c in now_:
            plain.append(announcement(c))
            for label, sentence, when_, _url in _evidence(c):
                plain.append(f"    {label} ({_day(when_)}):")
                quoted = textwrap.wrap(f"\u201c{_clean(sentence)}\u201d", width=QUOTE_WIDTH - 6) or ["\u201c\u201d"]
                plain.extend(f"    > {line}" for line in quoted)
            plain.append("")
    else:
        plain += ["No change on these subjects stands in their place.", ""]
    plain += ["-- ", f"Sent by newsmon to {recipient}: one correction per withdrawn announcement."]
    msg.set_content("\n".join(plain) + "\n", cte="quoted-printable")
    e = lambda t: html.escape(_clean(t), quote=True)  # noqa: E731
    items = "".join(
        f'<li style="margin:0 0 6px 0">{e(c.actor_group)} &middot; {e(_subject_text(c))} ({e(c.kind)})<br>'
        f'<span style="color:#8a1c1c">withdrawn: <s>{e(_values(c)[0])} &rarr; {e(_values(c)[1])}</s></span>, '
        f"dated {e(_day(c.new_published_at))} &middot; {_link(c.new_url, 'article')}</li>" for c in gone)
    standing = "".join(
        f"<tr><td>{e(announcement(c).removeprefix('- '))}</td></tr>" for c in now_) or \
        "<tr><td>No change on these subjects stands in their place.</td></tr>"
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>newsmon correction</title></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#222;max-width:720px">\n'
        f'<p style="background:#fff4e5;border-left:4px solid #d97706;padding:8px 12px">{e(intro)}</p>\n'
        f'<p><strong>Withdrawn</strong></p>\n<ul>{items}</ul>\n'
        f'<p><strong>What the evidence shows now</strong></p>\n<table cellpadding="4">{standing}</table>\n'
        f'<p style="color:#666;font-size:12px">Sent by newsmon to {html.escape(recipient)}.</p>\n</body></html>\n')
    msg.add_alternative(body, subtype="html", cte="quoted-printable")
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
