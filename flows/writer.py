"""The warehouse writer slot: one Prefect global concurrency limit serialises the flows that write.

`newsmon serve` creates the limit `newsmon-warehouse-writer` (one slot); the ingest and
backfill flows hold it around their work, so a scheduled run and a backfill that overlap
take turns instead of racing. Without the limit (a flow run on a Prefect server that
`newsmon serve` never set up) runs are not serialised and rely on the warehouse's own lock
retry, as do plain CLI runs without a Prefect API (flows/runtime.py), which never ask.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flows import stages
from newsmon.errors import WarehouseError

__all__ = ["warehouse_writer", "WRITER_LIMIT", "WRITER_WAIT_SECONDS"]

#: The Prefect global concurrency limit (1 slot) that serialises the writing flows.
WRITER_LIMIT = "newsmon-warehouse-writer"
#: How long a run waits for that slot before it fails (a long backfill holds it for its whole run).
WRITER_WAIT_SECONDS = 4 * 3600.0


@contextlib.contextmanager
def warehouse_writer(wait: float = WRITER_WAIT_SECONDS) -> Iterator[bool]:
    """Hold one slot of the global concurrency limit WRITER_LIMIT while the block runs.

    Yields True when a slot is held, False when the limit does not exist: a Prefect
    server that `newsmon serve` never set up has none, and runs are unserialised
    (the warehouse's own lock retry keeps each transaction safe). Prefect's
    `concurrency()` would skip a missing limit too, but with a warning on every run;
    asking first keeps that quiet. The slot is a lease renewed in the background, so
    a run killed while holding it frees it when the lease expires (5 minutes).
    Raises WarehouseError after `wait` seconds without a slot.
    """
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectNotFound

    log = stages._logger()
    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(WRITER_LIMIT)
    except ObjectNotFound:
        log.debug("no concurrency limit %r on this Prefect server: not serialising this run", WRITER_LIMIT)
        yield False
        return
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(concurrency(WRITER_LIMIT, occupy=1, timeout_seconds=wait, strict=False,
                                            raise_on_lease_renewal_failure=False))
        except TimeoutError as exc:
            raise WarehouseError(
                f"waited {wait:.0f}s for the concurrency limit {WRITER_LIMIT!r}: another newsmon run still "
                "writes to the warehouse; see its flow run in the Prefect UI, or retry later") from exc
        yield True
