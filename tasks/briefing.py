"""What the alert email says about a change beyond its change_log row.

`briefing_for` turns the facts the warehouse holds about a change (its claims, the
outlets that listed its articles, the series behind it: `warehouse.outbox.briefing_facts`),
the topic descriptions of config/topics.yaml and the EUR rates into a
`tasks.alerts.Briefing`, with a chart of the history (`tasks.charts`). Plain functions,
no I/O.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from tasks import charts
from tasks.alerts import Briefing
from tasks.changes import Change, format_amount
from tasks.money import FxTable, to_eur

__all__ = ["briefing_for", "outlet_name"]


def _to_eur(amount: float | None, currency: str | None, when: dt.datetime | None, fx: FxTable | None) -> float | None:
    if amount is None or not currency:
        return None
    if currency.upper() == "EUR":
        return float(amount)
    if fx is None or when is None:
        return None
    return to_eur(float(amount), currency, when.date() if isinstance(when, dt.datetime) else when, fx)


def briefing_for(c: Change, f: dict[str, Any], topics: dict[str, str], fx: FxTable | None, *,
                 chart: bool = True) -> Briefing:
    """The briefing of change `c` from its facts `f` (see `warehouse.outbox.briefing_facts`);
    `topics`: topic id -> description; `chart`: draw the history (else leave it out)."""
    old_claim, new_claim = f.get("old_claim") or {}, f.get("new_claim") or {}
    history = f.get("history") or []
    common = dict(old_outlet=outlet_name(f.get("old_outlet")), new_outlet=outlet_name(f.get("new_outlet")))
    if c.kind == "position":
        png = charts.stance_timeline_png(
            [(h["published_at"], h["value"]) for h in history], old=(c.old_published_at, c.old_value),
            new=(c.new_published_at, c.new_value),
            title=f"{c.actor_group}: stated stances on {c.subject.replace('_', ' ')}") if chart else None
        return Briefing(topic=topics.get(c.subject), old_actor=old_claim.get("actor"), new_actor=new_claim.get("actor"),
                        old_keys=tuple(k for k in [old_claim.get("cue")] if k),
                        new_keys=tuple(k for k in [new_claim.get("cue")] if k),
                        history=tuple((h["published_at"], h["value"]) for h in history), chart=png, **common)
    old_eur = _claim_eur(old_claim, c.old_amount) or _to_eur(c.old_amount, c.old_currency or c.currency,
                                                              c.old_published_at, fx)
    new_eur = _claim_eur(new_claim, c.new_amount) or _to_eur(c.new_amount, c.currency, c.new_published_at, fx)
    in_eur = [(h["published_at"], h["amount_eur"] if h.get("amount_eur") is not None
               else _to_eur(h["value"], h["currency"], h["published_at"], fx)) for h in history]
    if all(v is not None for _, v in in_eur) and old_eur is not None and new_eur is not None:
        points, unit, old_pt, new_pt = in_eur, "EUR", old_eur, new_eur
    else:  # no rate known: the amounts as stated, in the change's currency
        points = [(h["published_at"], h["value"]) for h in history if (h["currency"] or "") == c.currency]
        unit, old_pt, new_pt = c.currency or "", c.old_amount, c.new_amount
    png = charts.pledge_history_png(
        points, old=(c.old_published_at, old_pt), new=(c.new_published_at, new_pt), unit=unit,
        title=f"{c.actor_group} to {c.subject}: stated amounts ({unit})") if chart else None
    return Briefing(old_actor=old_claim.get("donor"), new_actor=new_claim.get("donor"),
                    old_keys=tuple(k for k in [old_claim.get("money_text")] if k),
                    new_keys=tuple(k for k in [new_claim.get("money_text")] if k),
                    aid_kind=new_claim.get("kind"), old_eur=old_eur, new_eur=new_eur,
                    history=tuple((h["published_at"], format_amount(h["value"], h["currency"])) for h in history),
                    chart=png, **common)


def _claim_eur(claim: dict[str, Any], amount: float | None) -> float | None:
    """The claim's own EUR amount (as the aid_pledges view gives it), if the claim states `amount`."""
    if claim.get("amount_eur") is None or amount is None or claim.get("amount") is None:
        return None
    return float(claim["amount_eur"]) if abs(float(claim["amount"]) - amount) <= 1e-9 * max(amount, 1) else None


def outlet_name(feed: str | None) -> str | None:
    """A feed's configured name as an outlet: 'kyiv-ledger' -> 'Kyiv Ledger'."""
    if not feed:
        return None
    return " ".join(w[:1].upper() + w[1:] for w in feed.replace("_", " ").replace("-", " ").split())
