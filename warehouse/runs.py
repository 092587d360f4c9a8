"""The `runs` table: one row per ingest or backfill run, with its outcome.

    status   running      the run is under way (or its process died: see below)
             completed    every stage ran; feeds could be polled
             failed       a stage failed, or no feed could be polled (`error` says which)
             interrupted  stopped by Ctrl-C or SIGTERM; the next run finishes its work
             killed       its process vanished without a word (SIGKILL, OOM, power cut),
                          found and marked by a later run (`error` says how it was found)

A run records its process (`pid`, `host`, and `pid_started`, the process's start time,
so that a recycled pid is not mistaken for the run's process). Every run begins by
marking the runs left "running" whose process is gone: on the same host, the pid is not
alive or belongs to a newer process; on another host (which this one cannot see), the
run started more than STALE_AFTER ago. Every stage is idempotent, so nothing a killed
run did is lost: the next run completes it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["start_run", "finish_run", "run_outcomes", "mark_vanished_runs", "run_findings", "FINDINGS_LIMIT", "process_token", "pid_alive", "STALE_AFTER",
           "STATUSES"]

Con = duckdb.DuckDBPyConnection

STATUSES = ("running", "completed", "failed", "interrupted", "killed")
#: A run of another host still "running" after this long is taken for killed.
STALE_AFTER = dt.timedelta(hours=48)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_token(pid: int) -> str | None:
    """A process's identity beyond its pid: boot id and start time (Linux /proc); None elsewhere or if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    fields = stat[stat.rfind(")") + 2:].split()
    return f"{_boot_id()}:{fields[19]}" if len(fields) > 19 else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def start_run(con: Con, run_id: str, flow: str) -> None:
    pid = os.getpid()
    from warehouse.db import insert_rows  # no OR IGNORE: a DuckLake has no keys, insert_rows keeps them

    insert_rows(con, "runs", [dict(run_id=run_id, flow=flow, started_at=_now(), status="running", pid=pid,
                                   host=socket.gethostname(), pid_started=process_token(pid))], on_conflict="ignore")


def finish_run(con: Con, run_id: str, counts: dict[str, Any], status: str = "completed",
               error: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    con.execute("UPDATE runs SET finished_at = ?, counts = ?, status = ?, error = ? WHERE run_id = ?",
                [_now(), json.dumps(counts, default=str), status, error, run_id])


def mark_vanished_runs(con: Con, *, now: dt.datetime | None = None) -> list[str]:
    """Mark 'killed' every run left 'running' whose process is gone; returns their run ids."""
    now = now or _now()
    host = socket.gethostname()
    rows = con.execute("SELECT run_id, pid, host, pid_started, started_at FROM runs "
                       "WHERE status = 'running' AND finished_at IS NULL").fetchall()
    killed: list[tuple[str, str]] = []
    for run_id, pid, run_host, token, started_at in rows:
        if run_host == host and pid is not None:
            if pid == os.getpid() and token == process_token(pid):
                continue  # this very process (a run inside a run is not ours to judge)
            if not pid_alive(pid):
                killed.append((run_id, f"process {pid} on {host} is gone"))
            elif token is not None and process_token(pid) not in (None, token):
                killed.append((run_id, f"process {pid} on {host} is gone (the pid now belongs to another process)"))
        elif started_at is not None and now - started_at > STALE_AFTER:
            where = f"on {run_host}" if run_host else "of an older newsmon"
            killed.append((run_id, f"still running {where} after {STALE_AFTER.total_seconds() / 3600:.0f} h"))
    for run_id, why in killed:
        con.execute("UPDATE runs SET status = 'killed', error = ? WHERE run_id = ? AND status = 'running'",
                    [f"marked killed by a later run: {why}", run_id])
    return [run_id for run_id, _ in killed]


def run_outcomes(con: Con, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """run_id -> {status, counts (dict, or None), error} of the given runs that are recorded."""
    rows = con.execute("SELECT run_id, status, counts, error FROM runs WHERE list_contains(?::VARCHAR[], run_id)",
                       [list(run_ids)]).fetchall()
    return {run_id: dict(status=status, counts=json.loads(counts) if counts else None, error=error)
            for run_id, status, counts, error in rows}


#: Rows of each kind `run_findings` lists at most (the rest are counted).
FINDINGS_LIMIT = 100


def run_findings(con: Con, run_id: str, limit: int = FINDINGS_LIMIT) -> dict[str, Any]:
    """What one run found and what failed in it, for its summary artifact.

    `changes`: the changes detected since the run started (the `changes` view, with the topic's
    description); `feeds`: its failed polls; `pages`: its fetches that did not store a page (the
    last attempt per URL); `rejected`: input it rejected beyond fetches (pages without article
    text, feed entries). Each a list of at most `limit` dicts; `more` counts what was left out.
    """
    from warehouse.db import fetch_dicts

    row = con.execute("SELECT started_at FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        return {"changes": [], "feeds": [], "pages": [], "rejected": [], "more": {}}
    started = row[0]
    queries = {
        "changes": ("""
            SELECT c.kind, c.actor_group, c.subject, t.description AS topic_description, c.old_value, c.new_value,
                   c.change_percent, c.aid_kind, c.old_url, c.new_url, c.old_published_at, c.new_published_at
            FROM changes c LEFT JOIN topic_catalog t ON c.kind = 'position' AND t.topic = c.subject
            WHERE c.detected_at >= ?
            ORDER BY c.new_published_at, c.actor_group, c.subject""", [started]),
        "feeds": ("""
            SELECT feed, status, error FROM feed_polls WHERE run_id = ? AND outcome = 'failed'
            ORDER BY feed, polled_at""", [run_id]),
        "pages": ("""
            SELECT url, outcome, reason, status, error FROM fetches
            WHERE run_id = ? AND outcome <> 'ok' AND url NOT IN (SELECT url FROM pages)
            QUALIFY row_number() OVER (PARTITION BY url ORDER BY attempted_at DESC) = 1
            ORDER BY url""", [run_id]),
        "rejected": ("""
            SELECT stage, key, reason, detail FROM rejections WHERE run_id = ? AND stage <> 'fetch'
            ORDER BY stage, key""", [run_id]),
    }
    out: dict[str, Any] = {"more": {}}
    for name, (sql, params) in queries.items():
        rows = fetch_dicts(con, sql + "\n            LIMIT ?", [*params, limit + 1])
        if len(rows) > limit:
            total = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
            out["more"][name] = total - limit
            rows = rows[:limit]
        out[name] = rows
    return out
