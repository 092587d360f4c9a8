"""The last two stages of a run: detect changes, then send the alert emails that are due.

Thin Prefect tasks over `tasks.changes` / `tasks.alerts` (the rules and the
message) and `warehouse.outbox` (the SQL). `detect_changes` recomputes every
change from every claim and records the difference with the change log in one
transaction, together with the outbox rows of the new changes and the corrections
owed for retracted changes that were already emailed. `send_alerts` sends the due
corrections (threaded to their announcements) and one briefing per recipient: the
Message-ID is committed with status 'sending' before the send and the rows are
marked 'sent' right after, each in its own short transaction, before the next
message starts. A crash in between re-sends that one message (same Message-ID) on a
later run: at-least-once for the message in flight, exactly once for all others. A
server that is down leaves the alerts due for the next run.
"""
from __future__ import annotations

import collections
import datetime as dt
import functools
from typing import Any

from flows.lazytask import lazy_task
from flows.stages import _logger
from newsmon.mailaddr import plain_address
from newsmon.settings import Settings
from tasks.alerts import (Briefing, DeliveryUnknownError, PermanentAlertError, SmtpUnavailableError,
                          compose_correction, compose_digest, due_pairs, send_message)
from tasks.briefing import briefing_for
from tasks.changes import Change, compute_changes_ordered, diff_changes
from tasks.money import load_fx_table
from warehouse import Warehouse
from warehouse import outbox as ob

__all__ = ["detect_changes", "send_alerts", "stale_after_seconds"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stale_after_seconds(settings: Settings) -> float:
    """How old a 'sending' row must be before it counts as left behind by a crashed run.

    Longer than one send can take, so that a run never re-sends what a concurrent run
    is sending at that moment.
    """
    timeout = settings.smtp.timeout if settings.smtp else 30.0
    return max(120.0, 4 * timeout)


@lazy_task(name="detect_changes")
def detect_changes(settings: Settings, wh: Warehouse, run_id: str) -> dict[str, Any]:
    """Recompute all changes from all claims; insert new ones, retract vanished ones, queue alerts."""
    log = _logger()
    fx = load_fx_table(settings.nlp.fx)
    now = _now()
    with wh.transaction() as con:
        # the claims of first copies stream from DuckDB in publication order: memory follows the
        # changes found, not the claims stored
        claims = ob.count_claims(con)
        positions, pledges = ob.first_copy_claims(con)
        computed = compute_changes_ordered(positions, pledges, threshold=settings.alerts.aid_change_threshold, fx=fx)
        diff = diff_changes(computed, ob.stored_changes(con))
        pairs = due_pairs([*diff.new, *diff.restored], settings.alerts.recipients)
        counts = ob.record_changes(con, diff, pairs, now)
    if counts["retracted"]:
        log.info("%d change(s) retracted: a late article reordered what was said", counts["retracted"])
    return dict(counts, claims=claims, changes=len(computed))


def _changes(rows: list[dict[str, Any]]) -> list[Change]:
    return [Change.from_row(r) for r in rows]


#: Charts per message at most (each is a PNG of ~20 KB); later changes go without one.
MAX_CHARTS = 12


@functools.lru_cache(maxsize=8)
def _topic_descriptions(path: str) -> dict[str, str]:
    from tasks.topics import load_topics

    return {tid: t.description for tid, t in load_topics(path).topics.items()}


def briefings_for(settings: Settings, con, changes: list[Change],
                  cache: dict[str, Briefing] | None = None) -> dict[str, Briefing]:
    """What the briefing adds to each change (topic description, actors, outlets, EUR, history,
    chart: `tasks.briefing`). Never fails a send: without them the message still names every change."""
    cache = {} if cache is None else cache  # one run: a change's briefing (and chart) is made once
    if not changes:
        return {}
    try:
        facts = ob.briefing_facts(con, changes)
        topics = _topic_descriptions(str(settings.nlp.topics))
        fx = load_fx_table(settings.nlp.fx)
    except Exception as exc:  # noqa: BLE001
        _logger().warning("alert email without its briefing details: %s", exc)
        return {}
    out = {}
    for i, c in enumerate(changes):
        chart = i < MAX_CHARTS
        known = cache.get(c.change_id)
        if known is not None and (known.chart is not None or not chart):
            out[c.change_id] = known
            continue
        try:
            out[c.change_id] = cache[c.change_id] = briefing_for(c, facts.get(c.change_id, {}), topics, fx,
                                                                 chart=chart)
        except Exception as exc:  # noqa: BLE001
            _logger().warning("no briefing details for change %s: %s", c.change_id, exc)
    return out


@lazy_task(name="send_alerts")
def send_alerts(settings: Settings, wh: Warehouse, run_id: str, *,
                stale_after: float | None = None) -> dict[str, Any]:
    """Send every due correction and one digest per recipient of the due alerts; what cannot
    go now stays due.

    Each message is recorded before the next one starts: its rows are claimed ('sending',
    with the Message-ID) in one transaction before the send and marked 'sent' in another
    right after. A run killed in between leaves only that one message in 'sending', and a
    later run sends it again with the same Message-ID: at-least-once for the single
    message in flight, exactly once for every other. One recipient's failure (a refused or
    malformed address, a server without SMTPUTF8) never stops the others.

    `stale_after` (seconds; default `stale_after_seconds`) is how old a 'sending' row
    must be to be re-sent as left behind by a crash.
    """
    log = _logger()
    counts: collections.Counter[str] = collections.Counter()
    if settings.smtp is None:
        with wh.transaction() as con:
            due = ob.outbox_counts(con).get("due", 0) + ob.correction_counts(con).get("due", 0)
        if due:
            log.warning("%d alert(s) due but no [smtp] section is configured; they stay due", due)
        return {"due": due, "smtp_not_configured": 1} if due else {}
    sender = _Sender(settings, wh, counts, log)
    cache: dict[str, Briefing] = {}

    # 1. messages left in 'sending' by a crash: the same Message-ID, the same rows
    cutoff = _now() - dt.timedelta(seconds=stale_after_seconds(settings) if stale_after is None else stale_after)
    with wh.transaction() as con:
        stale = {(r["recipient"], r["message_id"]) for r in [*ob.stale_alerts(con, cutoff),
                                                             *ob.stale_corrections(con, cutoff)]}
    for recipient, message_id in sorted(stale):
        if sender.unavailable:
            break
        with wh.transaction() as con:
            if not ob.claim_stale(con, recipient, message_id, cutoff, _now()):
                continue  # another run took it
            alerts = ob.outbox_rows_of_message(con, recipient, message_id)
            corrections = ob.corrections_of_message(con, recipient, message_id)
            briefings = briefings_for(settings, con, _changes(alerts), cache)
        sender.send(recipient, message_id, alerts, corrections, stale=True, briefings=briefings)

    # 2. due corrections: one message per recipient and announcing message, threaded to it,
    #    carrying the due alerts that now stand on the same subjects
    with wh.transaction() as con:
        groups = sorted({(r["recipient"], r["announced_message_id"]) for r in ob.due_corrections(con)})
    for recipient, announced in groups:
        now = _now()
        with wh.transaction() as con:
            rows = [r for r in ob.due_corrections(con, recipient) if r["announced_message_id"] == announced]
            if not rows:
                continue
            if sender.unavailable:
                ob.mark_corrections_failed(con, recipient, announced, sender.unavailable, now,
                                           settings.alerts.max_attempts)
                counts["failed"] += len(rows)
                continue
            series = {(r["kind"], r["actor_group"], r["subject"]) for r in rows}
            standing = [r for r in ob.due_alerts(con, recipient) if (r["kind"], r["actor_group"], r["subject"])
                        in series and not r["resends"]]
            try:
                _check_address(recipient)
                msg = compose_correction(recipient, _changes(rows), _changes(standing), settings.smtp.sender,
                                         announced_message_id=announced, announced_at=rows[0]["announced_at"],
                                         date=now,
                                         briefings=briefings_for(settings, con, _changes(standing), cache))
            except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
                error = f"correction to {recipient!r} not composed: {exc}"
                ob.mark_corrections_failed(con, recipient, announced, error, now,
                                           1 if isinstance(exc, _BadAddress) else settings.alerts.max_attempts)
                log.warning("%s", error)
                counts["failed"] += len(rows)
                continue
            message_id = msg["Message-ID"]
            ob.claim_corrections(con, recipient, announced, [r["change_id"] for r in rows], message_id, now)
            if standing:
                ob.claim_due(con, recipient, [r["change_id"] for r in standing], message_id, now)
        sender.deliver(recipient, message_id, msg, len(rows) + len(standing), kind="corrections")

    # 3. due alerts: one digest per recipient (deliberate resends in a message of their own)
    with wh.transaction() as con:
        recipients = sorted({r["recipient"] for r in ob.due_alerts(con)})
    for recipient in recipients:
        for resent in (False, True):
            now = _now()
            with wh.transaction() as con:
                # again, inside the claim: a concurrent run may have sent some
                rows = [r for r in ob.due_alerts(con, recipient) if bool(r["resends"]) == resent]
                if not rows:
                    continue
                ids = [r["change_id"] for r in rows]
                if sender.unavailable:  # the server is down: record it, do not knock again for every recipient
                    ob.mark_failed(con, recipient, ids, sender.unavailable, now, settings.alerts.max_attempts)
                    counts["failed"] += len(rows)
                    continue
                try:
                    _check_address(recipient)  # an outbox row from an older config or a hand edit
                    msg = compose_digest(recipient, _changes(rows), settings.smtp.sender, date=now,
                                         resends=max(r["resends"] for r in rows),
                                         briefings=briefings_for(settings, con, _changes(rows), cache))
                except Exception as exc:  # noqa: BLE001 - one bad message never stops the others
                    error = f"alert to {recipient!r} not composed: {exc}"
                    # a malformed address fails for good; anything else is tried again up to max_attempts
                    ob.mark_failed(con, recipient, ids, error, now,
                                   1 if isinstance(exc, _BadAddress) else settings.alerts.max_attempts)
                    log.warning("%s", error)
                    counts["failed"] += len(rows)
                    continue
                message_id = msg["Message-ID"]
                ob.claim_due(con, recipient, ids, message_id, now)
            sender.deliver(recipient, message_id, msg, len(rows), kind="messages")
    with wh.transaction() as con:
        left = ob.outbox_counts(con)
        left_corrections = ob.correction_counts(con)
    counts["due"] = left.get("due", 0) + left_corrections.get("due", 0)
    if left.get("failed") or left_corrections.get("failed"):
        counts["failed_for_good"] = left.get("failed", 0) + left_corrections.get("failed", 0)
    return {k: v for k, v in counts.items() if v}


class _BadAddress(ValueError):
    pass


def _check_address(recipient: str) -> None:
    """Raises `_BadAddress` (a failure for good) unless `recipient` is one plain address."""
    try:
        plain_address(recipient)
    except ValueError as exc:
        raise _BadAddress(str(exc)) from None


class _Sender:
    """Sends one message and records the outcome of every row it carries (alerts and corrections)."""

    def __init__(self, settings: Settings, wh: Warehouse, counts: collections.Counter, log) -> None:
        self.smtp = settings.smtp
        self.max_attempts = settings.alerts.max_attempts
        self.wh, self.counts, self.log = wh, counts, log
        self.unavailable: str | None = None

    def send(self, recipient: str, message_id: str, alerts: list[dict[str, Any]],
             corrections: list[dict[str, Any]], *, stale: bool, briefings: dict[str, Briefing]) -> None:
        """Compose a claimed message again from its stored rows, then deliver it."""
        try:
            if corrections:
                first = corrections[0]
                msg = compose_correction(recipient, _changes(corrections), _changes(alerts), self.smtp.sender,
                                         announced_message_id=first["announced_message_id"],
                                         announced_at=first["announced_at"], message_id=message_id,
                                         briefings=briefings)
            else:
                msg = compose_digest(recipient, _changes(alerts), self.smtp.sender, message_id=message_id,
                                     resends=max((r["resends"] for r in alerts), default=0), briefings=briefings)
        except Exception as exc:  # noqa: BLE001
            with self.wh.transaction() as con:
                ob.mark_unknown(con, recipient, message_id, f"cannot compose: {exc}", _now(), self.max_attempts)
            self.counts["failed"] += len(alerts) + len(corrections)
            return
        self.deliver(recipient, message_id, msg, len(alerts) + len(corrections),
                     kind="resent_messages", stale=stale)

    def deliver(self, recipient: str, message_id: str, msg, rows: int, *, kind: str, stale: bool = False) -> None:
        try:
            send_message(self.smtp, msg, recipient)
        except PermanentAlertError as exc:
            with self.wh.transaction() as con:
                ob.mark_message_failed(con, recipient, message_id, str(exc), _now(), self.max_attempts,
                                       permanent=True)
            self.counts["failed"] += rows
            self.log.warning("alert to %s failed for good: %s", recipient, exc)
            return
        except DeliveryUnknownError as exc:
            with self.wh.transaction() as con:
                ob.mark_unknown(con, recipient, message_id, str(exc), _now(), self.max_attempts)
            self.counts["unknown"] += rows
            self.log.warning("alert to %s may not have arrived: %s", recipient, exc)
            return
        except Exception as exc:  # noqa: BLE001 - AlertError, or a bug: this recipient only
            with self.wh.transaction() as con:
                if stale:  # it may have arrived before: keep its Message-ID
                    ob.mark_unknown(con, recipient, message_id, str(exc), _now(), self.max_attempts)
                else:
                    ob.mark_message_failed(con, recipient, message_id, str(exc), _now(), self.max_attempts)
            self.counts["failed"] += rows
            self.log.warning("alert to %s not sent: %s", recipient, exc)
            if isinstance(exc, SmtpUnavailableError):
                self.unavailable = str(exc)
            return
        with self.wh.transaction() as con:
            ob.mark_sent(con, recipient, message_id, _now())
        self.counts[kind] += 1
        self.counts["sent_alerts"] += rows
