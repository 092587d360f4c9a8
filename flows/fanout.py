"""A large backfill's parts as flow runs of their own, so that the workers of a work pool share them.

Task runs run inside their flow run's process, so the parts of `flows/backfill.py` taken as
task runs (its `window_days`) stay on one worker. With `fan_out` (the default of the
`backfill/ad-hoc` deployment that `newsmon deploy` registers), the backfill flow run instead
creates one flow run of the deployment `backfill-part/ad-hoc` per part with work (fetch,
re-extract and re-mine its days), which any worker of the pool takes, and waits for them
before it detects changes and sends alerts over the whole warehouse.

- **Keyed.** Each part's flow run is created with the idempotency key
  "<parent flow run id>:<first day>..<last day>:<attempt>": a parent flow run that is retried
  (or whose waiting is resumed) finds its parts instead of creating them again.
- **Idempotent, and re-run when killed.** A part whose flow run ends Crashed, Failed or
  Cancelled (its worker or process was killed, a stage failed) is created again, up to
  PART_ATTEMPTS times in all; its stages are keyed like every stage (pending pages only,
  articles and claims replaced atomically), so a re-run neither loses nor duplicates anything.
  A part still failed after its last attempt fails the parent's `parts` stage (the run is
  recorded failed, as a failing stage always is); what the other parts stored stays stored.
- **The writer slot.** The parent holds the warehouse writer slot (flows/writer.py) for the
  whole backfill; its parts do not ask for it (they write on its behalf; with the DuckDB file,
  their short write transactions take turns on the file's lock, retried; on a DuckLake each
  holds the catalog's advisory lock).

Without the part deployment on the Prefect server (`newsmon serve`, or a deploy of an older
newsmon) the backfill takes its parts as task runs in its own process, as before.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from newsmon.errors import NewsmonError
from warehouse import Warehouse
from warehouse import runs as wr

__all__ = ["PART_FLOW", "PART_DEPLOYMENT", "PART_ATTEMPTS", "Part", "part_deployment_exists", "run_parts",
           "PartsFailed"]

#: The flow and deployment a part runs as (registered by `newsmon deploy`).
PART_FLOW = "backfill-part"
PART_DEPLOYMENT = "ad-hoc"
#: Flow runs one part gets at most (the first and the re-runs after a crash or failure).
PART_ATTEMPTS = 3
#: How long the parent waits for its parts in all (they queue behind other runs on busy workers).
PARTS_TIMEOUT_SECONDS = 24 * 3600.0
POLL_SECONDS = 2.0


class PartsFailed(NewsmonError):
    """Parts of a fanned-out backfill that did not complete after their last attempt."""


@dataclasses.dataclass(frozen=True)
class Part:
    days: str                    # "2025-12-01..2025-12-07" (open: "2025-12-29..")
    parameters: dict[str, Any]   # of the part's flow run


def full_name() -> str:
    return f"{PART_FLOW}/{PART_DEPLOYMENT}"


def part_deployment_exists() -> bool:
    """True when the Prefect server has the part deployment (only asked inside a flow run)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(full_name())
    except ObjectNotFound:
        return False
    return True


def run_parts(wh: Warehouse, parts: Sequence[Part], parent_key: str, *, attempts: int = PART_ATTEMPTS,
              timeout: float = PARTS_TIMEOUT_SECONDS, poll: float = POLL_SECONDS,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Create a flow run of the part deployment for each part, re-create the ones that crash or fail
    (up to `attempts` in all), wait for all; the parts' counts per stage added up, with `parts`,
    `part_runs` (flow runs created) and `part_reruns`. Raises PartsFailed naming the parts that
    never completed (after the others finished)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.backfill import _merge

    def submit(part: Part, attempt: int) -> str:
        run = run_deployment(full_name(), parameters=part.parameters, timeout=0,
                             idempotency_key=f"{parent_key}:{part.days}:{attempt}",
                             flow_run_name=f"backfill-part {part.days}" + (f" (attempt {attempt})" if attempt > 1 else ""))
        return str(run.id)

    attempt = {p.days: 1 for p in parts}
    running = {p.days: submit(p, 1) for p in parts}
    by_days = {p.days: p for p in parts}
    done: dict[str, str] = {}        # days -> flow run id that completed
    failed: dict[str, str] = {}      # days -> why, after the last attempt
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while running:
            for days, run_id in list(running.items()):
                state = client.read_flow_run(run_id).state
                if state is None or not state.is_final():
                    continue
                del running[days]
                if state.is_completed():
                    done[days] = run_id
                elif attempt[days] < attempts:
                    attempt[days] += 1
                    log(f"backfill part {days} ended {state.type.value} ({state.message or 'no message'}): "
                        f"running it again (attempt {attempt[days]} of {attempts})")
                    running[days] = submit(by_days[days], attempt[days])
                else:
                    failed[days] = f"{state.type.value}: {state.message or 'no message'}"
            if running and time.monotonic() > deadline:
                for days in running:
                    failed[days] = f"not finished within {timeout:.0f} s"
                break
            if running:
                time.sleep(poll)
    with wh.connect(read_only=True) as con:
        outcomes = wr.run_outcomes(con, list(done.values()))
    counts: dict[str, Any] = {}
    for days, run_id in sorted(done.items()):   # {"pages": {...}, "articles": {...}, "claims": {...}} added up
        counts = _merge(counts, (outcomes.get(run_id) or {}).get("counts") or {})
    counts.update(parts=len(parts), part_runs=sum(attempt.values()), part_reruns=sum(attempt.values()) - len(parts))
    if failed:
        raise PartsFailed(f"{len(failed)} of {len(parts)} backfill part(s) did not complete: "
                          + "; ".join(f"{days} {why}" for days, why in sorted(failed.items())))
    return counts
