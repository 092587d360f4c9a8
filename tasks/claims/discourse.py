"""What the sentences of one article know of each other: the last person and state named,
the speaker of an interview answer, the speaker of a quote, the article's lead actor.

`Context` is built once per article and updated after every sentence (`remember`);
`speaker_labels` reads interview transcripts ("Joly: We already are ...").
"""
from __future__ import annotations

import re

from spacy.tokens import Doc, Span, Token

from tasks.claims.lexicon import Lexicon
from tasks.claims.records import NOT_AN_ACTOR, Actor, NotAnActor
from tasks.nlp import MentionResolver, ent_role, ents_by_token

__all__ = ["Context", "SUBJECT_DEPS", "speaker_labels", "paragraph_starts", "in_quotation"]

SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj"}
SPEAKER_LABEL = re.compile(r"^\s*([A-Z][\w.'’ -]{1,40}?)\s*:\s+\S")


class Context:
    """The discourse state of one article while its sentences are mined in order."""

    def __init__(self, doc: Doc, resolver: MentionResolver, lex: Lexicon):
        self.doc = doc
        self.resolver = resolver
        self.lex = lex
        self.by_token = ents_by_token(doc)
        self.last_person: Actor | None = None
        self.last_group: Actor | None = None
        self.speaker: Actor | None = None      # the interviewee answering in this paragraph
        self.skip_paragraph = False            # an interviewer's question
        self.quote_speaker: Actor | None = None   # who speaks the quotation of this sentence
        self.in_quote = False                     # the sentence is (part of) a quotation
        self.lead: Actor | None = None         # the first state/organisation acting in the article
        self._counts: dict[str, int] | None = None   # mentions per canonical name, counted on first use

    def mentions_of(self, name: str) -> int:
        if self._counts is None:
            counts: dict[str, int] = {}
            for ent in self.doc.ents:
                info = self.resolver.resolve(ent)
                role = ent_role(ent)
                names = {info.name} if info else set()
                if role:
                    names.add(role[1])
                    names.add(self.resolver.catalog.acts_for.get(role[1], role[1]))
                for n in names:
                    counts[n] = counts.get(n, 0) + 1
            self._counts = counts
        return self._counts.get(name, 0)

    def actor_of_ent(self, ent: Span) -> Actor | None:
        """Only known states and organisations act (and people who speak for one): "16:45 GMT" does not."""
        info = self.resolver.resolve(ent)
        group = self.resolver.mention_group(ent, info)
        if info is None or not group:
            return None
        if info.type != "person" and self.resolver.catalog.get(group) is None:
            return None
        return Actor(info.name, group)

    def ent_at(self, token: Token) -> Span | None:
        return self.by_token.get(token.i)

    def remember(self, sent: Span) -> None:
        """After a sentence: the last person and the last state/organisation acting in it."""
        for ent in sent.ents:
            info = self.resolver.resolve(ent)
            if info is None:
                continue
            group = self.resolver.mention_group(ent, info)
            dep = ent.root.dep_
            if dep == "appos" and ent.root.head.dep_ in SUBJECT_DEPS:
                dep = ent.root.head.dep_   # "10:30 GMT — Volodymyr Zelenskyy, ..., asked": the subject's other name
            if info.type == "person" and dep in SUBJECT_DEPS | {"poss"}:
                self.last_person = Actor(info.name, group or "")
            elif info.type in ("country", "organization") and dep in SUBJECT_DEPS | {"compound", "amod"} \
                    and group and self.resolver.catalog.get(group) is not None:
                self.last_group = Actor(info.name, group)
                if self.lead is None:
                    self.lead = self.last_group


def paragraph_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer(r"\n+", text):
        starts.append(m.end())
    return starts


def speaker_labels(doc: Doc, pstarts: list[int], resolver: MentionResolver) -> dict[int, Actor | NotAnActor]:
    """Interview paragraphs ("Joly: We already are ..."): the answering speaker, or NOT_AN_ACTOR
    for a question (an interviewer's or an outlet's label)."""

    labels: dict[int, Actor | NotAnActor] = {}
    text = doc.text
    found_any = {}
    for k, start in enumerate(pstarts):
        m = SPEAKER_LABEL.match(text[start:start + 60])
        if m:
            found_any[k] = (start + m.start(1), start + m.end(1), m.group(1).strip())
    if len(found_any) < 2:
        return labels
    for k, (s, e, name) in found_any.items():
        span = doc.char_span(s, e, alignment_mode="expand")
        actor = None
        if span is not None:
            for ent in span.ents:
                info = resolver.resolve(ent)
                group = resolver.group(info)
                if info is not None and group and (info.type == "person" or resolver.catalog.get(group)):
                    actor = Actor(info.name, group)   # an outlet's name ("Continental Post:") asks
        labels[k] = actor if actor else NOT_AN_ACTOR
    return labels


OPEN_QUOTES = "“\"«„"
QUOTES = OPEN_QUOTES + "”»"


def in_quotation(text: str, para_start: int, start: int, end: int) -> bool:
    """Is the sentence text[start:end] quoted speech: it opens with a quotation mark, or a
    quotation opened earlier in the paragraph is still open where it starts?"""
    head = text[start:end].lstrip()
    if head[:1] in OPEN_QUOTES:
        return True
    before = text[para_start:start]
    opened = sum(before.count(q) for q in "“«„")
    closed = sum(before.count(q) for q in "”»")
    if opened or closed:
        return opened > closed
    return before.count('"') % 2 == 1
