"""`newsmon alerts ...`: look at the alert outbox, re-queue an alert, send what is due.

A typer sub-app, registered in `newsmon.cli` as `app.add_typer(alerts_app, name="alerts")`.
Commands stay thin: the SQL is in `warehouse.outbox`, the sending in `flows.notify`.
Library errors propagate to `newsmon.cli.main`, which prints them as one line.
"""
from __future__ import annotations

import datetime as dt
import uuid
from enum import Enum
from typing import Annotated, Optional

import typer

from newsmon.cli_options import ConfigOption
from newsmon.errors import NewsmonError
from newsmon.settings import load_settings

__all__ = ["alerts_app"]

alerts_app = typer.Typer(help="The alert outbox: list alerts, re-queue one, send what is due.",
                         no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


class Status(str, Enum):
    due = "due"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    retracted = "retracted"
    cancelled = "cancelled"  # corrections only: the change was restored before its correction went out


def _warehouse(config: str | None):
    from warehouse import Warehouse

    settings = load_settings(config)
    wh = Warehouse.from_settings(settings.warehouse)
    wh.migrate()
    return settings, wh


@alerts_app.command("list")
def list_alerts(config: ConfigOption = None,
                status: Annotated[Optional[Status], typer.Option(
                    "--status", "-s", help="only alerts in this state")] = None,
                limit: Annotated[int, typer.Option(help="at most this many rows (0: all)")] = 100,
                max_width: Annotated[int, typer.Option(help="cut table cells to this many characters (0: never)")] = 40,
                corrections: Annotated[bool, typer.Option(
                    "--corrections", help="list the corrections of retracted changes instead")] = False,
                ) -> None:
    """List alerts (one row per change and recipient): due, sending, sent, failed or retracted;
    with --corrections, the corrections owed for retracted changes that were already emailed.

    Example: newsmon alerts list --status due
    """
    from newsmon.cli import render_table
    from warehouse import outbox as ob

    _, wh = _warehouse(config)
    with wh.connect(read_only=True) as con:
        if corrections:
            rows = ob.list_corrections(con, status.value if status else None, limit or None)
        else:
            rows = ob.list_alerts(con, status.value if status else None, limit or None)
    columns = ["change_id", "recipient", "status", "attempts", "kind", "actor_group", "subject", "old_value",
               "new_value", "published", "sent_at", "last_error"]
    if corrections:
        columns = ["change_id", "recipient", "status", "attempts", "actor_group", "subject", "old_value",
                   "new_value", "announced_message_id", "announced_at", "sent_at", "last_error"]
    typer.echo(render_table(columns, [tuple(r[c] for c in columns) for r in rows], max_width))


@alerts_app.command()
def resend(change_id: Annotated[str, typer.Argument(help="the change id (a unique prefix will do)")],
           recipient: Annotated[Optional[str], typer.Option(help="only this address (default: every recipient "
                                                                 "the alert went to)")] = None,
           force: Annotated[bool, typer.Option("--force", help="send even where the recipient's filters "
                                                              "(kinds, groups, topics, min_aid_change) exclude "
                                                              "the change, or to an address not in "
                                                              "alerts.recipients")] = False,
           config: ConfigOption = None) -> None:
    """Re-queue the alert of one change; the next `newsmon ingest` or `newsmon alerts send` sends it,
    marked as a resend ("[Resent]" subject, X-Newsmon-Resend header).

    Each recipient's filters apply as in a run, unless --force.

    Example: newsmon alerts resend 3f9c2a71 --recipient analyst@example.org
    """
    from newsmon.mailaddr import plain_address
    from tasks.alerts import wants
    from tasks.changes import Change
    from warehouse import outbox as ob

    settings, wh = _warehouse(config)
    configured = {r.address.casefold(): r for r in settings.alerts.recipients}
    if recipient is not None:
        try:
            recipient = plain_address(recipient)
        except ValueError as exc:
            raise NewsmonError(f"--recipient: {exc}") from None
    with wh.transaction() as con:
        found = ob.find_change_ids(con, change_id.strip())
        if not found:
            raise NewsmonError(f"no change with id {change_id!r}: see `newsmon alerts list` for the ids")
        if len(found) > 1:
            raise NewsmonError(f"change id {change_id!r} is ambiguous ({len(found)} changes): give more characters")
        change = found[0]
        if change["retracted_at"] is not None:
            raise NewsmonError(f"change {change['change_id']} was retracted (a later article reordered the "
                               "evidence); it is not announced again")
        the_change = Change.from_row(ob.change_row(con, change["change_id"]))
        targets = [recipient] if recipient is not None else ob.alert_recipients(con, change["change_id"])
        chosen, refused = [], []
        for address in targets:
            who = configured.get(address.casefold())
            if who is None:
                why = f"{address} is not in alerts.recipients of {settings.source}"
            elif not wants(who, the_change):
                why = f"{address}'s filters ({_filters(who)}) exclude this change"
            else:
                why = None
            if why and not force:
                refused.append(why)
            else:
                chosen.append(address)
        if recipient is not None and refused:
            raise NewsmonError(f"not re-queued: {refused[0]}; pass --force to send it anyway")
        now = dt.datetime.now(dt.timezone.utc)
        n = sum(ob.requeue(con, change["change_id"], address, now) for address in chosen)
    for why in refused:
        typer.echo(f"skipped: {why} (--force sends it anyway)", err=True)
    if n == 0:
        raise NewsmonError(f"change {change['change_id']} has no alert to re-queue (or it is being sent now); "
                           "pass --recipient ADDRESS to queue one")
    typer.echo(f"queued {n} alert{'s' if n != 1 else ''} of change {change['change_id']}; "
               "the next `newsmon ingest` or `newsmon alerts send` sends them")


def _filters(recipient) -> str:
    parts = [f"{name}={','.join(map(str, getattr(recipient, name)))}" for name in ("kinds", "groups", "topics")
             if getattr(recipient, name)]
    if recipient.min_aid_change:
        parts.append(f"min_aid_change={recipient.min_aid_change:g}")
    return "; ".join(parts) or "none"


@alerts_app.command()
def send(config: ConfigOption = None) -> None:
    """Send every due alert and correction now (one digest per recipient), without running the pipeline.

    Exits 1 when a message could not be sent (it stays due, or is failed for good).

    Example: newsmon alerts send --config config/newsmon.toml
    """
    from flows.notify import send_alerts

    settings, wh = _warehouse(config)
    if settings.smtp is None:
        raise NewsmonError(f"no [smtp] section in {settings.source}: add host, port and sender to send alerts")
    counts = send_alerts.fn(settings, wh, f"cli-{uuid.uuid4()}")
    summary = ", ".join(f"{k}={v}" for k, v in counts.items()) or "nothing was due"
    typer.echo(f"alerts: {summary}")
    unsent = counts.get("failed", 0) + counts.get("unknown", 0)
    if unsent:
        typer.echo(f"newsmon: {unsent} alert(s) not sent in this run (see `newsmon alerts list --status due` "
                   "and `--status failed` for the reasons)", err=True)
        raise typer.Exit(1)
