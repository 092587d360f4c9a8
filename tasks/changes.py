"""Changes in stated positions and aid pledges, derived from every claim in the warehouse.

The change stage runs after mining. It reads *all* position and pledge claims (rows
as the `positions` and `aid_pledges` views give them), walks them in publication
order (published_at, url, sentence_index) and reports (the warehouse streams them to
`compute_changes_ordered` in that order, a few thousand rows at a time):

- a **position change** when an actor group states, on a topic, a stance different
  from the last one seen for that (actor_group, topic);
- an **aid change** when a donor's amount for a recipient differs from the last amount
  seen for that (donor, recipient) by more than the threshold (default 10 %, relative to
  the old amount; in EUR when the two currencies differ), or when a claim states its own
  revision (`previous_amount`: "from €4bn to €8bn"), with the same threshold test.

Repeated statements are not changes, and neither are syndicated copies: of each
story only the earliest-published article's claims count.

Everything is recomputed on every run, so an article that arrives late (published
before articles already processed) simply reorders the sequence. `diff_changes`
compares the result with what the change log holds: new ids are inserted, ids no
longer produced are retracted (never deleted), retracted ids produced again are
restored. A change id is a hash of what the change says and where (kind, group,
subject, old and new value, old and new URL), so re-running yields the same ids.

Plain functions: no I/O. `flows/notify.py` wires them to the warehouse.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tasks.money import FxTable, to_eur

__all__ = [
    "AID_CHANGE_THRESHOLD", "Change", "ChangeDiff", "compute_changes", "compute_changes_ordered", "position_changes",
    "aid_changes", "first_copies", "diff_changes", "change_id", "format_amount", "relative_change",
]

#: An amount must move by more than this fraction of the old amount to count as a change.
AID_CHANGE_THRESHOLD = 0.10
#: How close the last amount must be to a claim's stated `previous_amount` for the last
#: claim to serve as the "before" evidence of that revision.
SAME_AMOUNT_TOLERANCE = 0.01
_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
_SCALES = ((1e12, "tn"), (1e9, "bn"), (1e6, "m"))
_EPOCH = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Change:
    """One detected change, with both claims it rests on (the columns of `change_log`)."""

    change_id: str
    kind: str                        # "position" | "aid"
    actor_group: str                 # for aid: the donor
    subject: str                     # topic id, or for aid the recipient
    old_value: str | None            # stance, or amount as text ("€4bn")
    new_value: str
    new_claim_id: str
    new_url: str
    old_amount: float | None = None  # aid only, in old_currency
    new_amount: float | None = None  # aid only, in currency
    currency: str | None = None      # the new amount's currency
    old_currency: str | None = None
    relative_change: float | None = None  # aid only: (new - old) / old, in EUR across currencies
    old_claim_id: str | None = None
    old_url: str | None = None
    old_published_at: dt.datetime | None = None
    new_published_at: dt.datetime | None = None
    old_evidence: str | None = None
    new_evidence: str | None = None
    old_title: str | None = None
    new_title: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Change":
        """A Change from a `change_log` row (extra columns such as detected_at are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def as_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def key(self) -> tuple[str, str, str, str | None, str]:
        """What the change says, without where: two changes with one key announce the same thing."""
        return (self.kind, self.actor_group, self.subject, self.old_value, self.new_value)


@dataclasses.dataclass(frozen=True)
class ChangeDiff:
    """What one run must do to the change log."""

    new: list[Change]          # ids not stored yet: insert
    restored: list[Change]     # stored but retracted, produced again: clear retracted_at
    retracted: list[str]       # stored and active, no longer produced: set retracted_at
    unchanged: int             # stored, active and produced again
    #: new change id -> retracted change id with the same key (a late article moved the
    #: evidence of an already detected change): the alert already sent covers it.
    supersedes: dict[str, str] = dataclasses.field(default_factory=dict)


# -- helpers -------------------------------------------------------------------------
def _order(row: Mapping[str, Any]) -> tuple:
    published = row.get("published_at")
    return (published is None, published or _EPOCH, row.get("url") or "",
            row.get("sentence_index") or 0, row.get("claim_id") or "")


def first_copies(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The URLs whose claims count: of each story, the earliest-published article.

    `story_id` links syndicated copies (NULL: the article is a story of its own). The
    earliest copy is chosen again here, not taken from story_id, because a copy that
    arrives late may have been published first.
    """
    best: dict[str, tuple] = {}
    for r in rows:
        url = r["url"]
        story = r.get("story_id") or url
        rank = (r.get("published_at") is None, r.get("published_at") or _EPOCH, url)
        if story not in best or rank < best[story]:
            best[story] = rank
    return {rank[2] for rank in best.values()}


def change_id(kind: str, actor_group: str, subject: str, old_value: str | None, new_value: str,
              old_url: str | None, new_url: str, occurrence: int = 0) -> str:
    """Deterministic id of a change: a hash of what it says and where.

    `occurrence` separates the (rare) identical changes within one pair of articles.
    """
    parts: list[Any] = [kind, actor_group, subject, old_value, new_value, old_url, new_url]
    if occurrence:
        parts.append(occurrence)
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def _amount_key(amount: float, currency: str) -> str:
    """The amount as it enters a change id: independent of how it is displayed."""
    return f"{amount:.10g} {currency.upper()}"


def format_amount(amount: float | None, currency: str | None) -> str:
    """An amount the way analysts (and mail readers) write it: €90bn, $800m, NOK 135bn, €250,000."""
    if amount is None:
        return "?"
    cur = (currency or "").upper()
    value = abs(amount)
    for size, suffix in _SCALES:
        if value >= size:
            digits = f"{value / size:.4f}".rstrip("0").rstrip(".")
            text = f"{digits}{suffix}"
            break
    else:
        text = f"{value:,.2f}".removesuffix(".00")
    sign = "-" if amount < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(cur)
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{cur} {text}".strip()


def relative_change(old: float, new: float) -> float | None:
    """(new - old) / old, or None when the old amount is zero or missing."""
    if not old or not math.isfinite(old) or new is None:
        return None
    return (new - old) / old


def _eur(row: Mapping[str, Any], amount: float, fx: FxTable | None) -> float | None:
    currency = (row.get("currency") or "").upper()
    if currency == "EUR":
        return amount
    if row.get("amount_eur") is not None and amount == row.get("amount"):
        return float(row["amount_eur"])
    if fx is not None and row.get("published_at") is not None:
        return to_eur(amount, currency, row["published_at"], fx)
    return None


def _close(a: float, b: float, tolerance: float = SAME_AMOUNT_TOLERANCE) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


class _Ids:
    """Hands out change ids, separating identical changes within one pair of articles."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, *parts: Any) -> str:
        base = change_id(*parts)
        n = self.seen.get(base, 0)
        self.seen[base] = n + 1
        return base if n == 0 else change_id(*parts, occurrence=n)


# -- the rules -------------------------------------------------------------------------
def position_changes(positions: Sequence[Mapping[str, Any]], *,
                     counted: set[str] | None = None) -> list[Change]:
    """Stance changes per (actor_group, topic), in publication order.

    `counted`: the URLs whose claims count (default: `first_copies(positions)`).
    """
    return [c for _, c in _position_changes(positions, first_copies(positions) if counted is None else counted)]


def _position_changes(positions: Iterable[Mapping[str, Any]], counted: set[str] | None,
                      ordered: bool = False) -> list[tuple[tuple, Change]]:
    ids = _Ids()
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    out: list[tuple[tuple, Change]] = []
    for row in (positions if ordered else sorted(positions, key=_order)):
        if counted is not None and row["url"] not in counted:
            continue
        key = (row["actor_group"], row["topic"])
        prev = last.get(key)
        if prev is not None and prev["stance"] != row["stance"]:
            out.append((_order(row), Change(
                change_id=ids("position", key[0], key[1], prev["stance"], row["stance"], prev["url"], row["url"]),
                kind="position", actor_group=key[0], subject=key[1],
                old_value=prev["stance"], new_value=row["stance"],
                **_claims(prev, row))))
        last[key] = row
    return out


def aid_changes(pledges: Sequence[Mapping[str, Any]], *, threshold: float = AID_CHANGE_THRESHOLD,
                fx: FxTable | None = None, counted: set[str] | None = None) -> list[Change]:
    """Amount changes per (donor, recipient), in publication order.

    Compared with the last amount seen for the pair (in EUR when the currencies differ:
    the claim's `amount_eur`, else `fx`), or with the claim's own `previous_amount`.
    """
    counted = first_copies(pledges) if counted is None else counted
    return [c for _, c in _aid_changes(pledges, threshold, fx, counted)]


def _aid_changes(pledges: Iterable[Mapping[str, Any]], threshold: float, fx: FxTable | None,
                 counted: set[str] | None, ordered: bool = False) -> list[tuple[tuple, Change]]:
    ids = _Ids()
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    out: list[tuple[tuple, Change]] = []
    for row in (pledges if ordered else sorted(pledges, key=_order)):
        if (counted is not None and row["url"] not in counted) or row.get("amount") is None:
            continue
        key = (row["donor"], row["recipient"])
        prev = last.get(key)
        amount, currency = float(row["amount"]), (row.get("currency") or "").upper()
        old_claim: Mapping[str, Any] | None = None
        if row.get("previous_amount"):
            # A self-stated revision: the old amount is the one the sentence gives, in its
            # currency. The last claim is the "before" evidence only if it says that amount.
            old_amount, old_currency = float(row["previous_amount"]), currency
            rel = relative_change(old_amount, amount)
            same = (prev is not None and (prev.get("currency") or "").upper() == currency
                    and _close(float(prev["amount"]), old_amount))
            old_claim = prev if same else row
        elif prev is not None:
            old_claim = prev
            old_amount, old_currency = float(prev["amount"]), (prev.get("currency") or "").upper()
            rel = None
            if old_currency != currency:
                old_eur, new_eur = _eur(prev, old_amount, fx), _eur(row, amount, fx)
                if old_eur is not None and new_eur is not None:
                    rel = relative_change(old_eur, new_eur)
            if rel is None:  # same currency, or no rate known: compare as stated
                rel = relative_change(old_amount, amount)
        last[key] = row
        if old_claim is None or rel is None or abs(rel) <= threshold:
            continue
        old_value, new_value = format_amount(old_amount, old_currency), format_amount(amount, currency)
        out.append((_order(row), Change(
            change_id=ids("aid", key[0], key[1], _amount_key(old_amount, old_currency),
                          _amount_key(amount, currency), old_claim["url"], row["url"]),
            kind="aid", actor_group=key[0], subject=key[1], old_value=old_value, new_value=new_value,
            old_amount=old_amount, new_amount=amount, currency=currency, old_currency=old_currency,
            relative_change=rel, **_claims(old_claim, row))))
    return out


def _claims(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    return dict(old_claim_id=old.get("claim_id"), old_url=old["url"], old_published_at=old.get("published_at"),
                old_evidence=old.get("evidence"), old_title=old.get("title"),
                new_claim_id=new["claim_id"], new_url=new["url"], new_published_at=new.get("published_at"),
                new_evidence=new.get("evidence"), new_title=new.get("title"))


def compute_changes(positions: Sequence[Mapping[str, Any]], pledges: Sequence[Mapping[str, Any]], *,
                    threshold: float = AID_CHANGE_THRESHOLD, fx: FxTable | None = None,
                    articles: Sequence[Mapping[str, Any]] | None = None) -> list[Change]:
    """Every change the claims show, position and aid together, in publication order.

    `articles` (url, story_id, published_at of every stored article) decides which copy
    of a syndicated story counts; without it, the articles that have claims decide.
    """
    counted = first_copies(articles if articles is not None else [*positions, *pledges])
    found = [*_position_changes(positions, counted), *_aid_changes(pledges, threshold, fx, counted)]
    found.sort(key=lambda pair: (pair[0], pair[1].kind))
    return [c for _, c in found]


def compute_changes_ordered(positions: Iterable[Mapping[str, Any]], pledges: Iterable[Mapping[str, Any]], *,
                            threshold: float = AID_CHANGE_THRESHOLD, fx: FxTable | None = None) -> list[Change]:
    """`compute_changes` over claims that are already only those of first copies, in publication
    order (`_order`: published_at, nulls last, url, sentence_index, claim_id), e.g. streamed from the
    warehouse (`warehouse.outbox.first_copy_claims`). Each iterable is read once, row by row, the
    positions before the pledges; only the last claim per (group, topic) or (donor, recipient) and
    the changes found are kept, so memory follows the number of changes, not of claims. The same
    changes as `compute_changes(all claims, articles=all articles)`."""
    found = [*_position_changes(positions, None, ordered=True), *_aid_changes(pledges, threshold, fx, None, ordered=True)]
    found.sort(key=lambda pair: (pair[0], pair[1].kind))
    return [c for _, c in found]


def diff_changes(computed: Sequence[Change], stored: Iterable[Mapping[str, Any]]) -> ChangeDiff:
    """Compare this run's changes with the change log.

    `stored`: change_log rows (change_id, kind, actor_group, subject, old_value, new_value,
    retracted_at). A new change whose key (kind, group, subject, old, new) equals that of
    a change retracted by this diff supersedes it: the same change, dated by a late article.
    """
    by_id = {r["change_id"]: r for r in stored}
    new = [c for c in computed if c.change_id not in by_id]
    restored = [c for c in computed if c.change_id in by_id and by_id[c.change_id].get("retracted_at") is not None]
    produced = {c.change_id for c in computed}
    gone = [r for cid, r in sorted(by_id.items()) if r.get("retracted_at") is None and cid not in produced]
    unchanged = len(produced) - len(new) - len(restored)
    pool: dict[tuple, list[str]] = {}
    for r in gone:
        key = (r["kind"], r["actor_group"], r["subject"], r.get("old_value"), r["new_value"])
        pool.setdefault(key, []).append(r["change_id"])
    supersedes = {}
    for c in new:
        waiting = pool.get(c.key)
        if waiting:
            supersedes[c.change_id] = waiting.pop(0)
    return ChangeDiff(new=new, restored=restored, retracted=[r["change_id"] for r in gone],
                      unchanged=unchanged, supersedes=supersedes)
