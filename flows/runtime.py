"""One orchestration path, two ways to run it: plain Python, or as a Prefect flow.

The ingest and backfill pipelines are plain functions (`flows.ingest.run_ingest`,
`flows.backfill.run_backfill`) that call the stage functions of `flows/stages.py` and
`flows/notify.py` through `stage()`. The Prefect flows `ingest` and `backfill` are thin
wrappers around them. So:

- `newsmon ingest` / `newsmon backfill` without a Prefect API (no PREFECT_API_URL in the
  environment or the Prefect profile) call the pipeline directly: no Prefect server, no
  temporary one either; `stage()` hands back each task's plain function.
- With an API (PREFECT_API_URL set, or a flow run started by `newsmon serve`), the CLI
  runs the flow; inside a flow run `stage()` hands back the Prefect task, so every stage
  is a task run, the run holds the writer slot (flows/writer.py) and leaves a summary
  artifact.

Either way the run is recorded in the warehouse's `runs` table (warehouse/runs.py) with
its outcome, and a run whose stage failed, or that could poll no feed, raises `RunFailed`
(a flow run ends Failed) after recording what it did.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from newsmon.errors import NewsmonError, OrchestratorError, RunFailed, WarehouseError
from warehouse import Warehouse
from warehouse import runs as wr

__all__ = ["in_flow_run", "stage", "current_run_id", "run_pipeline", "run_failure", "run_problems", "run_summary",
           "run_name", "ingest_run_name", "backfill_run_name",
           "prefect_api_url", "check_prefect_api", "is_orchestrator_error", "RunFailed"]

T = TypeVar("T")
log = logging.getLogger("newsmon")


def in_flow_run() -> bool:
    """True inside a Prefect flow run (of this process)."""
    if "prefect" not in sys.modules:  # never imported: certainly not in a flow run
        return False
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def stage(task: T) -> T:
    """The Prefect task inside a flow run (one task run per call), else its plain function."""
    if in_flow_run():
        return task
    return getattr(task, "fn", task)


def current_run_id() -> str:
    """The flow run's id inside a flow run, else a new UUID."""
    if in_flow_run():
        from prefect.context import FlowRunContext

        return str(FlowRunContext.get().flow_run.id)
    return str(uuid.uuid4())


def _logger():
    if in_flow_run():
        from prefect import get_run_logger

        return get_run_logger()
    return log


@contextlib.contextmanager
def _writer_slot(wh: Warehouse, hold: bool = True) -> Iterator[None]:
    # plain runs rely on the warehouse's own lock retry; on a lake each write transaction holds
    # the catalog's advisory lock, so workers' runs overlap instead of taking turns; the parts of a
    # fanned-out backfill (hold=False) write under the slot their parent holds
    if not hold or not in_flow_run() or wh.lake is not None:
        yield
        return
    from flows.writer import warehouse_writer

    with warehouse_writer():
        yield


def run_summary(wh: Warehouse, run_id: str, title: str, result: dict[str, Any], failure: str | None) -> str:
    """The markdown of a run's artifact (flows.report.run_markdown), its findings read from the warehouse."""
    from flows.report import run_markdown

    try:
        with wh.connect(read_only=True) as con:
            findings = wr.run_findings(con, run_id)
    except Exception as exc:  # noqa: BLE001 - the counts still make an artifact
        log.warning("cannot read the findings of run %s: %s", run_id, exc)
        findings = None
    return run_markdown(title, result, findings, failure, run_problems(result))


def _publish(wh: Warehouse, run_id: str, title: str, key: str, result: dict[str, Any], failure: str | None) -> None:
    if not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact

    try:
        markdown = run_summary(wh, run_id, title, result, failure)
        create_markdown_artifact(markdown=markdown, key=key,
                                 description=f"Changes found and failures of one {key.split('-')[0]} run")
    except Exception as exc:  # noqa: BLE001 - the run is recorded; a missing artifact does not fail it
        if is_orchestrator_error(exc):
            raise
        _logger().warning("could not publish the run's summary artifact: %s", exc)


# -- flow run names -------------------------------------------------------------------------
def run_name(make: Callable[[dict[str, Any], dt.datetime], str]) -> Callable[[], str]:
    """A `flow_run_name` callable: `make(parameters, scheduled start)` inside the flow run's context
    (Prefect calls it without arguments once the run starts)."""
    def name() -> str:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        params = dict(ctx.parameters or {}) if ctx else {}
        run = ctx.flow_run if ctx else None
        when = (run and (run.expected_start_time or run.start_time)) or dt.datetime.now(dt.timezone.utc)
        return make(params, when)
    name.__name__ = f"{make.__name__}_from_context"
    return name


def ingest_run_name(params: dict[str, Any], when: dt.datetime) -> str:
    """`ingest 2026-12-03T10:15` (the scheduled minute, UTC), `ingest 2026-12-03T10:15 shard 1/3`."""
    text = f"ingest {when.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M}"
    return text + (f" shard {params['shard']}" if params.get("shard") else "")


def backfill_run_name(params: dict[str, Any], when: dt.datetime | None = None) -> str:
    """`backfill 2025-12-01..2025-12-07`, `backfill 2025-12-01..` (no end), with `remine`, the feeds and
    the number of URLs when given."""
    def day(v: Any) -> str:
        return v.isoformat() if isinstance(v, dt.date) else str(v or "")

    text = f"backfill {day(params.get('since'))}..{day(params.get('until'))}"
    if params.get("remine"):
        text += " remine"
    if params.get("feeds"):
        text += " feeds " + ",".join(map(str, params["feeds"]))
    if params.get("urls") or params.get("urls_file"):
        text += f" +{len(params.get('urls') or [])} urls" + (" +file" if params.get("urls_file") else "")
    return text


# -- outcome ------------------------------------------------------------------------------
def run_failure(result: dict[str, dict[str, Any]]) -> str | None:
    """Why a run failed (one line), or None: a stage that raised, or feeds of which none could be polled."""
    reasons = []
    failed = [name for name, counts in result.items() if isinstance(counts, dict) and counts.get("error")]
    if failed:
        reasons.append("stage " + ", ".join(f"{n} failed ({result[n]['error']})" for n in failed))
    feeds = result.get("feeds")
    if isinstance(feeds, dict) and not feeds.get("error"):
        polled_ok = feeds.get("polled", 0) - feeds.get("failed", 0)
        attempted = feeds.get("polled", 0) + feeds.get("skipped_backoff", 0)
        if attempted and polled_ok <= 0:
            why = ", ".join(f"{k}={v}" for k, v in sorted((feeds.get("failures") or {}).items()))
            backoff = feeds.get("skipped_backoff", 0)
            detail = "; ".join(x for x in (f"failed: {why}" if why else "",
                                            f"{backoff} backing off after failures" if backoff else "") if x)
            reasons.append(f"no feed could be polled ({detail})" if detail else "no feed could be polled")
    return "; ".join(reasons) or None


def run_problems(result: dict[str, dict[str, Any]]) -> list[str]:
    """Partial failures worth a line of the summary (the run itself may still have completed)."""
    out = []
    for name, counts in result.items():
        if not isinstance(counts, dict) or counts.get("error"):
            continue
        failures = counts.get("failures") or {}
        if failures:
            what = {"feeds": "feed(s) failed", "pages": "page(s) not fetched"}.get(name, "failed")
            out.append(f"{name}: {sum(failures.values())} {what}: "
                       + ", ".join(f"{k}={v}" for k, v in sorted(failures.items())))
        if counts.get("hosts_given_up"):
            what = "feed" if name == "feeds" else "page"
            out.append(f"{name}: {counts['hosts_given_up']} unreachable host(s) given up for this run "
                       f"(fetch.host_give_up_after); their {counts.get('left_host_down', 0)} other {what}(s) "
                       "stay pending for the next run")
        if counts.get("left_budget"):
            what = "feed" if name == "feeds" else "page"
            out.append(f"{name}: the run's budget (fetch.run_budget_seconds) is spent: "
                       f"{counts['left_budget']} {what}(s) left for the next run (partial run)")
        if name == "articles" and counts.get("rejected"):
            out.append(f"articles: {counts['rejected']} page(s) without article text (see the rejections table)")
        if name == "alerts":
            if counts.get("failed") or counts.get("unknown"):
                out.append(f"alerts: {counts.get('failed', 0) + counts.get('unknown', 0)} alert(s) not sent "
                           "this run; they stay due")
            if counts.get("smtp_not_configured"):
                out.append(f"alerts: {counts.get('due', 0)} alert(s) due but no [smtp] section is configured")
    return out


# -- the run --------------------------------------------------------------------------------
Step = tuple[str, Callable[[str], dict[str, Any]]]  # a stage: its name, and a call taking the run id


def run_pipeline(wh: Warehouse, flow: str, plan: list[Step], *, title: str,
                 on_stage: Callable[[str, int, int, dict[str, Any] | None], None] | None = None,
                 hold_writer: bool = True) -> dict[str, dict[str, Any]]:
    """Run `plan` (named stages, in order, each called with the run id) as one recorded run.

    Returns each stage's counts.
    A stage that raises is recorded as `{"error": ...}` and the run goes on with the next
    stage (each works off what the warehouse says is pending), except after a warehouse
    error, which the later stages would only meet again. Raises RunFailed, after the run is
    recorded as failed, when `run_failure` finds a reason. Ctrl-C or SIGTERM records the run
    as interrupted and re-raises. `hold_writer=False`: do not take the Prefect writer slot (a
    part of a fanned-out backfill, whose parent flow run holds it; flows/fanout.py).
    """
    logger = _logger()
    run_id = current_run_id()
    result: dict[str, dict[str, Any]] = {}
    with _writer_slot(wh, hold_writer):
        wh.migrate()
        with wh.transaction() as con:
            killed = wr.mark_vanished_runs(con)
            wr.start_run(con, run_id, flow)
        if killed:
            logger.warning("marked %d earlier run(s) as killed (their process is gone): %s", len(killed),
                           ", ".join(killed))
        try:
            stop: str | None = None
            for index, (name, step) in enumerate(plan, 1):
                if stop:
                    result[name] = {"error": f"not run: {stop}"}
                    continue
                if on_stage:
                    on_stage(name, index, len(plan), None)
                try:
                    result[name] = step(run_id)
                except Exception as exc:  # noqa: BLE001 - recorded, reported, and the run fails
                    if in_flow_run() and is_orchestrator_error(exc):
                        raise  # the flow run cannot be recorded either: the CLI says so in one line
                    message = str(exc) if isinstance(exc, NewsmonError) else f"{type(exc).__name__}: {exc}"
                    message = " ".join(message.split())[:500] or type(exc).__name__
                    result[name] = {"error": message}
                    # a bug deserves its traceback in the log; an expected error does not
                    logger.error("stage %s failed: %s", name, message, exc_info=not isinstance(exc, NewsmonError))
                    if isinstance(exc, WarehouseError):
                        stop = f"the {name} stage met a warehouse error"
                if on_stage:
                    on_stage(name, index, len(plan), result[name])
        except BaseException as exc:
            with contextlib.suppress(Exception):
                with wh.transaction() as con:
                    wr.finish_run(con, run_id, result, "interrupted",
                                  f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__)
            raise
        failure = run_failure(result)
        with wh.transaction() as con:
            wr.finish_run(con, run_id, result, "failed" if failure else "completed", failure)
    _publish(wh, run_id, title, f"{flow}-summary", result, failure)
    if failure:
        raise RunFailed(failure, result)
    return result


# -- Prefect API ------------------------------------------------------------------------------
def prefect_api_url() -> str | None:
    """The Prefect API the CLI should run flows on: PREFECT_API_URL (environment or Prefect profile), or None."""
    if os.environ.get("PREFECT_API_URL", None) == "":
        return None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if no_prefect_api_configured():
        return None
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


#: Environment variables that make Prefect read its settings from elsewhere than the profiles file.
_PREFECT_TEST_MODES = ("PREFECT_TEST_MODE", "PREFECT_UNIT_TEST_MODE", "PREFECT_TESTING_UNIT_TEST_MODE",
                       "PREFECT_TESTING_TEST_MODE")


def no_prefect_api_configured() -> bool:
    """True when none of Prefect's setting sources can name an API, found without importing Prefect.

    `import prefect.settings` alone costs ~2 CPU seconds, most of a run with nothing new. Besides
    the environment (checked by the caller), Prefect 3 reads PREFECT_API_URL from `.env`,
    `prefect.toml` and `pyproject.toml` ([tool.prefect]) in the working directory and from the
    active profile of its profiles file ($PREFECT_PROFILES_PATH, else $PREFECT_HOME/profiles.toml,
    else ~/.prefect/profiles.toml; without one, Prefect's template, whose active profile names no
    API). This answers True only when each of those certainly names none; False means "ask Prefect".
    """
    import tomllib
    from pathlib import Path

    if any(os.environ.get(k) for k in _PREFECT_TEST_MODES) or Path(".env").exists() or Path("prefect.toml").exists():
        return False
    try:
        if Path("pyproject.toml").exists() and "prefect" in tomllib.loads(
                Path("pyproject.toml").read_text(encoding="utf-8")).get("tool", {}):
            return False
        if os.environ.get("PREFECT_PROFILES_PATH"):
            profiles = Path(os.environ["PREFECT_PROFILES_PATH"])
        elif os.environ.get("PREFECT_HOME"):
            profiles = Path(os.environ["PREFECT_HOME"]).expanduser() / "profiles.toml"
        else:
            profiles = Path.home() / ".prefect" / "profiles.toml"
        if not profiles.exists():
            return True
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable or not TOML: Prefect's own reading decides
        return False
    active = os.environ.get("PREFECT_PROFILE") or data.get("active")
    profile = (data.get("profiles") or {}).get(active) if isinstance(active, str) else None
    if not isinstance(profile, dict):
        return False   # the template's profile applies, or something unusual: ask Prefect
    return not any(str(key).upper() == "PREFECT_API_URL" and value for key, value in profile.items())


def check_prefect_api(url: str, timeout: float = 20.0) -> None:
    """OrchestratorError (one line) unless the Prefect API at `url` answers its health check within `timeout`.

    The check runs in a daemon thread with a hard deadline: Prefect's client retries
    connection errors with backoff, which against a hung server takes minutes.
    """
    import contextvars
    import threading

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    answer: list[BaseException | None] = []

    def ask() -> None:
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                with get_client(httpx_settings={"timeout": timeout}, sync_client=True) as client:
                    answer.append(client.api_healthcheck())
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same answer
            answer.append(exc)

    context = contextvars.copy_context()  # the caller's Prefect settings, in the thread too
    thread = threading.Thread(target=context.run, args=(ask,), name="prefect-health", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        raise OrchestratorError(orchestrator_message(TimeoutError(f"no answer within {timeout:.0f}s"), url))
    if answer[0] is not None:
        raise OrchestratorError(orchestrator_message(answer[0], url))


def orchestrator_message(exc: BaseException, url: str | None = None) -> str:
    where = f" at {url}" if url else ""
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return (f"the Prefect API{where} did not answer ({type(exc).__name__}: {detail}); nothing was run by Prefect. "
            "Start it (`prefect server start`) or fix PREFECT_API_URL, or unset PREFECT_API_URL to run "
            "without Prefect")


def is_orchestrator_error(exc: BaseException) -> bool:
    """An error of talking to the Prefect API (connection, timeout, HTTP status), not of newsmon's work."""
    if isinstance(exc, OrchestratorError):
        return True
    if "prefect" not in sys.modules:
        return False
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, (httpx.TransportError, PrefectHTTPStatusError)):
        return True
    return isinstance(exc, RuntimeError) and "Prefect API" in str(exc)
