"""Meetings and rounds of talks that happened (the `events` view): who met, where, when.

A meeting word (`config/lang/en/events.yaml`) counts only when the meeting happened or is
happening: not wished for, negated or modal. It needs two participants, or one and a place.
"""
from __future__ import annotations

import datetime as dt

from spacy.tokens import Span, Token

from tasks.claims.discourse import Context
from tasks.claims.records import Evidence, Meeting
from tasks.nlp import ent_role

__all__ = ["meetings_in"]


def _is_event(word: Token, ctx: Context) -> bool:
    """Did this meeting or round of talks happen (or is it happening), rather than being wished for?"""
    if word.pos_ == "VERB":   # "met", "are meeting"; not "to meet" (a wish)
        if word.tag_ not in ("VBD", "VBZ", "VBP", "VBG", "VBN"):
            return False
        verb = word
    else:
        if any(c.dep_ == "prep" and c.lower_ in ("in", "at") for c in word.children) or \
                any(c.dep_ == "compound" and c.ent_type_ in ("GPE", "LOC", "FAC") for c in word.children):
            verb = word.head   # "talks in Miami", "the Florida talks"
            if not any(c.lower_ in ctx.lex.modal_words or c.dep_ == "neg" for c in verb.children):
                return True
        verb = word.head
        while verb.pos_ not in ("VERB", "AUX") and verb.head.i != verb.i:
            verb = verb.head
        if verb.lemma_.lower() not in ctx.lex.event_verbs or verb.tag_ == "VB":
            return False
    return not any(c.lower_ in ctx.lex.modal_words or c.dep_ == "neg" for c in verb.children)


def meetings_in(sent: Span, sent_index: int, ctx: Context, published: dt.date | None) -> list[Meeting]:
    words = [t for t in sent if t.lower_ in ctx.lex.meeting_words]
    if not words or not any(_is_event(w, ctx) for w in words):
        return []
    participants, people, location = [], [], None
    for ent in sent.ents:
        info = ctx.resolver.resolve(ent)
        if info is None:
            continue
        role = ent_role(ent)
        # a place of the meeting, not of the telling ("told reporters in Moscow that talks ...")
        where = ent.root.head.lower_ in ("in", "at") and \
            ent.root.head.head.lemma_.lower() not in ctx.lex.reporting_verbs or \
            ent.root.dep_ == "compound" and ent.root.head.lower_ in ctx.lex.meeting_words
        if where and (info.type in ("place", "country") or (role and role[1] in ctx.resolver.catalog.acts_for)):
            location = location or (role[1] if role and role[0] in ("name", "metonym") and info.type != "place"
                                    and role[1] not in ctx.resolver.catalog.entities else info.name)
            if role and role[0] == "name" and ctx.resolver.catalog.get(role[1]) and \
                    ctx.resolver.catalog.get(role[1]).type == "place":
                location = role[1]
            continue
        group = ctx.resolver.group(info)
        if info.type == "person":
            people.append(info.name)
        if group and group not in participants and info.type in ("country", "organization", "person") \
                and ctx.resolver.catalog.get(group) is not None:
            participants.append(group)
    if len(participants) < 2 and not (participants and location):
        return []
    kind = "talks" if ctx.lex.talks_words.search(sent.text) else "meeting"
    return [Meeting(evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text), event_type=kind,
                    participants=tuple(participants), people=tuple(dict.fromkeys(people)), location=location,
                    event_date=published)]
