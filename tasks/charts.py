"""Small PNG charts for the alert email: the stance timeline or pledge history behind a change.

Plain functions over plain data (no warehouse): `stance_timeline_png` and
`pledge_history_png` take dated points and return PNG bytes, drawn with
matplotlib's Agg backend (no display, no GUI toolkit), the same bytes for the same
points (no timestamps in the file). The change's own two points are drawn larger
and labelled, so the chart shows where the change sits in its history.
"""
from __future__ import annotations

import collections
import datetime as dt
import functools
import io
import threading
import warnings
from collections.abc import Callable, Sequence

__all__ = ["stance_timeline_png", "pledge_history_png", "STANCE_ORDER", "WIDTH_PX", "HEIGHT_PX"]

#: Bottom to top on the stance chart.
STANCE_ORDER = ("oppose", "undecided", "conditional", "support")
WIDTH_PX, HEIGHT_PX, DPI = 560, 200, 100
_INK, _MUTED, _ACCENT, _OLD = "#1f2937", "#9ca3af", "#b45309", "#6b7280"


#: Charts drawn lately, by their inputs: a change's chart goes to every recipient and into every
#: resend and correction, and drawing one takes ~0.2 s of CPU (the bytes depend on the inputs only).
_DRAWN: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
_DRAWN_MAX = 64
_DRAWN_LOCK = threading.Lock()


def _remembered(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """`draw`, drawing each distinct set of inputs once (the last _DRAWN_MAX of them are kept)."""
    @functools.wraps(draw)
    def wrapper(points, **kwargs) -> bytes:
        try:
            key = (draw.__name__, tuple(tuple(p) for p in points), tuple(sorted(kwargs.items())))
            hash(key)
        except TypeError:   # unhashable inputs: draw, keep nothing
            return draw(points, **kwargs)
        with _DRAWN_LOCK:
            if key in _DRAWN:
                _DRAWN.move_to_end(key)
                return _DRAWN[key]
        png = draw(points, **kwargs)
        with _DRAWN_LOCK:
            _DRAWN[key] = png
            while len(_DRAWN) > _DRAWN_MAX:
                _DRAWN.popitem(last=False)
        return png
    return wrapper


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure  # a Figure of its own: no pyplot state shared between threads

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(_MUTED)
    ax.tick_params(colors=_INK, labelsize=8)
    return fig, ax


def _png(fig, dates: Sequence[dt.datetime]) -> bytes:
    import matplotlib.dates as mdates

    for ax in fig.axes:
        if dates and max(dates) - min(dates) < dt.timedelta(days=2):  # one day: give the axis a width
            middle = min(dates) + (max(dates) - min(dates)) / 2
            ax.set_xlim(middle - dt.timedelta(days=3), middle + dt.timedelta(days=3))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a locator's complaint about odd ranges
        fig.tight_layout(pad=0.6)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _naive(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when


@_remembered
def stance_timeline_png(points: Sequence[tuple[dt.datetime, str]], *, old: tuple[dt.datetime, str] | None,
                        new: tuple[dt.datetime, str], title: str) -> bytes:
    """Every stated stance of one actor group on one topic (date, stance), as a step line."""
    fig, ax = _figure()
    level = {s: i for i, s in enumerate(STANCE_ORDER)}
    pts = sorted((_naive(d), s) for d, s in points if d is not None and s in level)
    if pts:
        ax.step([d for d, _ in pts], [level[s] for _, s in pts], where="post", color=_MUTED, linewidth=1.2)
        ax.scatter([d for d, _ in pts], [level[s] for _, s in pts], s=14, color=_MUTED, zorder=2)
    for point, colour in ((old, _OLD), (new, _ACCENT)):
        if point is not None and point[0] is not None and point[1] in level:
            ax.scatter([_naive(point[0])], [level[point[1]]], s=60, color=colour, zorder=3)
    ax.set_yticks(range(len(STANCE_ORDER)), list(STANCE_ORDER))
    ax.margins(x=0.08)
    ax.set_ylim(-0.5, len(STANCE_ORDER) - 0.5)
    ax.set_title(title, fontsize=9, color=_INK, loc="left")
    return _png(fig, [d for d, _ in pts] + [_naive(p[0]) for p in (old, new) if p is not None and p[0] is not None])


@_remembered
def pledge_history_png(points: Sequence[tuple[dt.datetime, float]], *, old: tuple[dt.datetime, float] | None,
                       new: tuple[dt.datetime, float], title: str, unit: str) -> bytes:
    """Every stated amount of one donor to one recipient (date, amount in `unit`), as a step line."""
    from tasks.changes import format_amount

    fig, ax = _figure()
    pts = sorted((_naive(d), float(a)) for d, a in points if d is not None and a is not None)
    if pts:
        ax.step([d for d, _ in pts], [a for _, a in pts], where="post", color=_MUTED, linewidth=1.2)
        ax.scatter([d for d, _ in pts], [a for _, a in pts], s=14, color=_MUTED, zorder=2)
    def short(value: float) -> str:  # three significant digits: a chart label, not the record
        return format_amount(float(f"{value:.3g}"), unit)

    for point, colour, side in ((old, _OLD, 1), (new, _ACCENT, -1)):
        if point is not None and point[0] is not None and point[1] is not None:
            ax.scatter([_naive(point[0])], [point[1]], s=60, color=colour, zorder=3)
            ax.annotate(short(point[1]), (_naive(point[0]), point[1]), textcoords="offset points",
                        xytext=(7 * side, 5), ha="left" if side > 0 else "right", fontsize=8, color=colour)
    ax.yaxis.set_major_formatter(lambda value, _pos: short(value))
    top = max([a for _, a in pts] + [p[1] for p in (old, new) if p is not None and p[1] is not None] + [0.0])
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.margins(x=0.08)
    ax.set_title(title, fontsize=9, color=_INK, loc="left")
    return _png(fig, [d for d, _ in pts] + [_naive(p[0]) for p in (old, new) if p is not None and p[0] is not None])
