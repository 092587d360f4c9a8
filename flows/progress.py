"""Progress of the runs in this process, for a display (the progress bar of `newsmon backfill`).

The pipeline reports two kinds of events to the listeners registered with `listening()`:
a stage starting or done (`StageEvent`), and, inside the stages that work item by item, how
many of their items are done (`ItemsEvent`: feeds polled, pages fetched, articles extracted,
articles mined). Without a listener nothing is reported and nothing is counted for it. A
listener that raises never fails the run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any, Union

__all__ = ["StageEvent", "ItemsEvent", "listening", "wanted", "emit", "items", "in_parts"]


@dataclasses.dataclass(frozen=True)
class StageEvent:
    """A stage starting (`counts` None) or done (with its counts); `index` counts from 1."""
    stage: str
    index: int
    total: int
    counts: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class ItemsEvent:
    """`done` of the `total` items of one call of a stage (`unit`: what an item is); the first of a
    call has done 0."""
    stage: str
    done: int
    total: int
    unit: str


Event = Union[StageEvent, ItemsEvent]
_listeners: list[Callable[[Event], None]] = []


@contextlib.contextmanager
def listening(callback: Callable[[Event], None]) -> Iterator[None]:
    """Call `callback` with every event of the runs in this process while the block runs."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def wanted() -> bool:
    """Whether anyone listens (a stage counts its items only then)."""
    return bool(_listeners)


def emit(event: Event) -> None:
    for callback in list(_listeners):
        try:
            callback(event)
        except Exception:  # a display problem never fails the run
            logging.getLogger("newsmon").debug("progress listener failed", exc_info=True)


_parts: dict[str, list[int]] | None = None   # stage -> [items of the finished parts, done in this part]


def items(stage: str, done: int, total: int, unit: str) -> None:
    """Report `done` of `total` items of `stage` (nothing happens without a listener). Inside
    `in_parts`, the counts of the earlier parts are added."""
    if _listeners:
        if _parts is not None:
            base = _parts.setdefault(stage, [0, 0])
            base[1] = done
            done, total = base[0] + done, base[0] + total
        emit(ItemsEvent(stage, done, total, unit))


@contextlib.contextmanager
def in_parts() -> Iterator[Callable[[], None]]:
    """A stage that takes its window in parts (a backfill's `window_days`) reports one count over
    all of them: call the yielded function after each part. The total grows as parts begin (a part's
    items are counted when it starts)."""
    global _parts
    outer, _parts = _parts, {}

    def next_part() -> None:
        for base in (_parts or {}).values():
            base[0] += base[1]
            base[1] = 0

    try:
        yield next_part
    finally:
        _parts = outer
