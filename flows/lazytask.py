"""Prefect tasks that import Prefect only when they run as tasks.

`import prefect` costs about 2 CPU seconds (its settings, client and plugins), which was most
of a run with nothing new. A stage decorated with `lazy_task(name=..., retries=...)` is a
`LazyTask`: `.fn` is the plain function (what `flows.runtime.stage` hands out outside a flow
run, and what the tests call); calling it, or any Prefect attribute (`submit`, `with_options`,
...), builds the real `prefect.task` with the same options on first use and delegates to it.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LazyTask", "lazy_task"]


class LazyTask:
    """A Prefect task built on first use; `.fn` is the plain function."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]):
        self.fn = fn
        self.options = options
        self._task: Any = None
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn)

    @property
    def task(self) -> Any:
        """The Prefect task (imports Prefect)."""
        if self._task is None:
            with self._lock:
                if self._task is None:
                    from prefect import task

                    self._task = task(**self.options)(self.fn)
        return self._task

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.task(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("fn", "options", "_task", "_lock"):
            raise AttributeError(name)
        return getattr(self.task, name)

    def __repr__(self) -> str:
        return f"LazyTask({self.options.get('name', self.fn.__name__)!r})"


def lazy_task(**options: Any) -> Callable[[Callable[..., Any]], LazyTask]:
    """`prefect.task(**options)` without importing Prefect until the task is used as one."""
    def wrap(fn: Callable[..., Any]) -> LazyTask:
        return LazyTask(fn, options)

    return wrap
