"""Alert emails: who wants which change, and the SMTP send.

After `detect_changes` records new changes, `due_pairs` decides which recipients
want each one (their filters: actor groups, topics or aid recipients, kinds, the
smallest relative aid change). `send_alerts` then composes ONE digest per
recipient (`tasks.digest.compose_digest`, a briefing), and one correction per
withdrawn announcement (`tasks.correction.compose_correction`), and hands each to
`send_message`, which sends it to exactly one envelope recipient.

Errors (all `AlertError`):

    AlertError                the server refused this message for now (4xx): it stays due
     ├── SmtpUnavailableError  no connection, greeting, STARTTLS or login: no message can go now
     ├── DeliveryUnknownError  the connection broke after the message was handed over
     └── PermanentAlertError   this recipient or message can never go this way (5xx to RCPT/DATA,
                               an address that is not one, a non-ASCII address and a server
                               without SMTPUTF8): recorded as failed at once, never retried

The composing functions are re-exported here.
"""
from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable, Sequence
from email.message import EmailMessage

from newsmon.errors import AlertError
from newsmon.mailaddr import needs_smtputf8, plain_address
from newsmon.settings import Recipient, SmtpSettings
from tasks.changes import Change
from tasks.correction import CORRECTION_HEADER, compose_correction, correction_message_id
from tasks.digest import (RESEND_HEADER, RESEND_PREFIX, Briefing, _clean, announcement, biggest, chart_cid,
                          compose_digest, digest_message_id, digest_subject, emphasise, headline, weight)

__all__ = [
    "SmtpUnavailableError", "DeliveryUnknownError", "PermanentAlertError", "wants", "due_pairs", "send_message",
    # re-exported from tasks.digest and tasks.correction
    "Briefing", "compose_digest", "digest_message_id", "digest_subject", "announcement", "weight", "biggest",
    "headline", "emphasise", "chart_cid", "RESEND_PREFIX", "RESEND_HEADER", "compose_correction",
    "correction_message_id", "CORRECTION_HEADER",
]


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
