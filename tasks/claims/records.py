"""What the miner finds: mentions, aid pledges, positions and meetings, each with its evidence.

Also the small values the rules pass around: an `Actor` (who speaks and for which state or
organisation), `NOT_AN_ACTOR` (a subject such as "analysts" that ends the search for one),
and `Found` (an actor and the parse path from the cue up to the actor's verb).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
from typing import NamedTuple

from spacy.tokens import Token

__all__ = ["Mention", "Evidence", "Pledge", "Position", "Meeting", "MinedArticle", "Actor", "NotAnActor",
           "NOT_AN_ACTOR", "Found", "claim_id"]


@dataclasses.dataclass(frozen=True)
class Mention:
    sentence_index: int
    start_char: int
    end_char: int
    surface: str
    entity: str
    entity_type: str
    wikidata_id: str | None
    actor_group: str | None


@dataclasses.dataclass(frozen=True)
class Evidence:
    sentence_index: int
    start_char: int
    end_char: int
    text: str


@dataclasses.dataclass(frozen=True)
class Pledge:
    evidence: Evidence
    donor: str
    recipient: str
    amount: float
    currency: str
    amount_eur: float | None
    kind: str
    previous_amount: float | None
    low_amount: float | None
    qualifier: str | None
    money_text: str
    #: every kind the pledge's words name (a mixed package names several; its `kind` is then unspecified)
    kinds_named: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Position:
    evidence: Evidence
    actor: str
    actor_group: str
    topic: str
    stance: str
    cue: str


@dataclasses.dataclass(frozen=True)
class Meeting:
    evidence: Evidence
    event_type: str
    participants: tuple[str, ...]
    people: tuple[str, ...]
    location: str | None
    event_date: dt.date | None


@dataclasses.dataclass(frozen=True)
class MinedArticle:
    url: str
    sentences: int
    mentions: tuple[Mention, ...]
    pledges: tuple[Pledge, ...]
    positions: tuple[Position, ...]
    meetings: tuple[Meeting, ...]


def claim_id(url: str, *parts) -> str:
    return hashlib.sha256("\x1f".join([url, *map(str, parts)]).encode()).hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class Actor:
    name: str    # the speaker or acting entity (canonical)
    group: str   # the state or organisation it speaks for


class NotAnActor(enum.Enum):
    """A subject that is nobody's voice ("analysts", "polls", an expletive "it"): the search stops there."""
    NOT_AN_ACTOR = "not an actor"

    def __bool__(self) -> bool:
        return False


NOT_AN_ACTOR = NotAnActor.NOT_AN_ACTOR


class Found(NamedTuple):
    actor: Actor
    path: list[Token]   # from the cue (or amount) up to the verb whose subject is the actor
