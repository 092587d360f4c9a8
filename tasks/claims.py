"""Mining stage: parsed articles -> mentions, aid pledges, stated positions, meetings.

Every claim keeps its evidence: the sentence, its character offsets in the
article text, and the extractor version. The rules are general linguistic ones
over spaCy's dependency parse, with the domain words in config:

- actor: the subject of the verb that governs the cue, found by walking up the
  parse from the cue (so "X said Y would not give up land" finds Y, and "the money
  would allow ..., Biden said" finds Biden); people speak for their affiliation,
  metonyms and demonyms for their state; pronouns take the last person named, and
  first-person words the speaker of the quote or of an interview answer;
- stance (positions): support, flipped by each negation or oppose word on the way
  from the cue to the actor's verb and by a counter-cue, overridden by conditional
  and undecided wording in the actor's clause;
- pledges: an amount that is the object of a pledge verb or the measure of an aid
  noun, whose donor is an actor, not negated, proposed or blocked, and not an amount
  of something else (reserves, losses, GDP ...).

Questions, hypotheticals ("If ...", "Whether ...") and interviewers' questions
yield nothing; neither do sentences whose only subjects are analysts or critics.
"""
from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from spacy.tokens import Doc, Span, Token

from newsmon.errors import ConfigError
from newsmon.settings import read_yaml
from tasks.money import FxTable, Money, to_eur
from tasks.nlp import EntityCatalog, MentionResolver, ent_role, ents_by_token, iter_mentions
from tasks.topics import CueMatch, TopicBook, compile_phrases

__all__ = ["EXTRACTOR_VERSION", "AidLexicon", "load_aid_lexicon", "Mention", "Pledge", "Position", "Meeting",
           "MinedArticle", "mine_doc"]

EXTRACTOR_VERSION = "claims-1"
SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj"}
NON_ACTORS = {"analyst", "analysts", "critic", "critics", "expert", "experts", "observer", "observers", "economist",
              "economists", "commentator", "commentators", "investor", "investors", "market", "markets", "poll", "polls",
              "survey", "report", "reports", "study", "researchers", "think", "some", "others", "many", "few"}
GROUP_NOUNS = {"official", "officials", "government", "governments", "leader", "leaders", "minister", "ministers",
               "ministry", "delegation", "negotiators", "negotiator", "diplomats", "president", "prime", "chancellor",
               "spokesman", "spokeswoman", "spokesperson", "envoy", "envoys", "representatives", "administration",
               "authorities", "cabinet", "parliament", "lawmakers", "premier", "office", "side",
               "aide", "aides", "adviser", "advisers", "state", "states", "members", "capitals", "board", "bank",
               "council", "commission", "senate", "congress", "committee", "coalition", "allies", "partners",
               "presidency", "team", "senators", "chief", "head", "commander"}
DOC_NOUNS = {"plan", "proposal", "paper", "statement", "declaration", "resolution", "communique", "communiqué", "formula",
             "decree", "initiative", "position", "proposals", "plans", "demands", "draft", "readout", "letter", "strategy"}
FIRST_PERSON = {"i", "we", "me", "us", "our", "my", "ours"}
THIRD_PERSON = {"he", "she", "him", "her", "his"}
HYPOTHETICAL_START = re.compile(r"^\W*(?:if|whether|what if|would|should|could|can|will|is|are|does|do|did|why|how)\b",
                                re.IGNORECASE)
MEETING_WORDS = re.compile(r"\b(?:talks|meeting|meetings|met|meet|negotiations|summit|round of talks|round of negotiations|"
                           r"sat down|session|sessions)\b", re.IGNORECASE)
SPEAKER_LABEL = re.compile(r"^\s*([A-Z][\w.'’ -]{1,40}?)\s*:\s+\S")


# -- aid lexicon -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AidLexicon:
    pledge_verbs: re.Pattern
    aid_nouns: re.Pattern
    not_aid_nouns: re.Pattern
    not_pledged: re.Pattern
    revision_verbs: re.Pattern
    kinds: dict[str, re.Pattern]
    default_recipient: str
    default_kind: dict[str, str]


def load_aid_lexicon(path: str | Path) -> AidLexicon:
    path = Path(path)
    data = read_yaml(path, "aid words")

    def need(key: str) -> re.Pattern:
        pat = compile_phrases(data.get(key), f"{path}: {key}")
        if pat is None:
            raise ConfigError(f"{path}: {key} is missing or empty")
        return pat

    kinds = {k: compile_phrases(v, f"{path}: kinds.{k}") for k, v in (data.get("kinds") or {}).items()}
    if not kinds:
        raise ConfigError(f"{path}: kinds is missing")
    return AidLexicon(pledge_verbs=need("pledge_verbs"), aid_nouns=need("aid_nouns"), not_aid_nouns=need("not_aid_nouns"),
                      not_pledged=need("not_pledged_verbs"), revision_verbs=need("revision_verbs"), kinds=kinds,
                      default_recipient=str(data.get("default_recipient") or "Ukraine"),
                      default_kind={str(k): str(v) for k, v in (data.get("default_kind_by_donor") or {}).items()})


# -- results -----------------------------------------------------------------------
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


# -- actors ------------------------------------------------------------------------
@dataclasses.dataclass
class Actor:
    name: str
    group: str


class Context:
    """What the sentences of one article know of each other: last person, paragraph speaker."""

    def __init__(self, doc: Doc, resolver: MentionResolver):
        self.doc = doc
        self.resolver = resolver
        self.by_token = ents_by_token(doc)
        self.last_person: Actor | None = None
        self.last_group: Actor | None = None
        self.speaker: Actor | None = None      # the interviewee answering in this paragraph
        self.skip_paragraph = False            # an interviewer's question
        self.quote_speaker: Actor | None = None
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
        group = self.resolver.group(info)
        if info is None or not group:
            return None
        if info.type != "person" and self.resolver.catalog.get(group) is None:
            return None
        return Actor(info.name, group)

    def ent_at(self, token: Token) -> Span | None:
        return self.by_token.get(token.i)

    def resolve_subject(self, subj: Token) -> Actor | None | bool:
        """The actor a subject token names; False when it is a non-actor (analysts) that ends the search."""
        low = subj.lower_
        if subj.pos_ == "PRON" or low in FIRST_PERSON | THIRD_PERSON | {"it", "they"}:
            if low in FIRST_PERSON:
                return self.quote_speaker or self.speaker or self.last_person
            if low in THIRD_PERSON:
                return self.last_person
            if low in ("it", "they"):
                if subj.dep_ == "expl" or subj.head.lemma_ == "be":   # "It was not clear ..."
                    return False
                return self.last_group
            if low in ("who", "which", "that") and subj.head.dep_ == "relcl":
                return self.resolve_subject(subj.head.head)
            return None
        ent = self.ent_at(subj)
        if ent is not None and ent.label_ not in ("MONEY", "CARDINAL", "DATE", "PERCENT"):
            actor = self.actor_of_ent(ent)
            if actor:
                return actor
        if low in NON_ACTORS:
            return False
        # "Hungarian officials", "Kyiv's delegation", "the Ukrainian president", "officials in Kyiv";
        # not "Russia's economy": only nouns that name people or bodies speak for a state
        if not (subj.lower_ in GROUP_NOUNS or subj.lemma_.lower() in GROUP_NOUNS or subj.lower_ in DOC_NOUNS):
            return None
        if any(c.dep_ == "poss" and c.lower_ in ("my", "our") for c in subj.children):
            return self.quote_speaker or self.speaker   # "my government approved ..."
        if any(c.dep_ == "poss" and c.lower_ in ("his", "her") for c in subj.children):
            return self.quote_speaker or self.last_person   # "Fico said his government would ..."
        if any(c.dep_ == "poss" and c.lower_ in ("its", "their") for c in subj.children):
            return self.quote_speaker or self.last_group    # "The World Bank said its board had approved ..."
        bare = not any(c.dep_ in ("poss", "nmod", "prep") or c.ent_type_ for c in subj.children)
        if bare and self.speaker is not None:
            return self.speaker   # "Joly: The prime minister committed ...": the interviewee's government
        if subj.tag_ == "NNS" and not any(c.dep_ in ("compound", "amod", "poss", "nmod", "prep") for c in subj.children):
            return self.lead   # "Leaders also endorsed ...": the article's lead actor
        mods = [c for c in subj.children if c.dep_ in ("compound", "amod", "poss", "nmod", "appos")]
        mods += [g for c in subj.children if c.dep_ == "prep" and c.lower_ in ("in", "from", "of", "to")
                 for g in c.children if g.dep_ == "pobj"]
        for m in mods:
            for t in m.subtree:
                ent = self.ent_at(t)
                if ent is None:
                    continue
                info = self.resolver.resolve(ent)
                role = ent_role(ent)
                if info is None:
                    continue
                if info.type == "place" and role and role[1] in self.resolver.catalog.acts_for:
                    g = self.resolver.catalog.acts_for[role[1]]
                    return Actor(g, g)
                group = self.resolver.group(info)
                if group and info.type in ("country", "organization", "person"):
                    return Actor(info.name if info.type == "person" else group, group)
        return None

    def remember(self, sent: Span) -> None:
        """After a sentence: the last person and the last state/organisation acting in it."""
        for ent in sent.ents:
            info = self.resolver.resolve(ent)
            if info is None:
                continue
            group = self.resolver.group(info)
            if info.type == "person" and ent.root.dep_ in SUBJECT_DEPS | {"poss"}:
                self.last_person = Actor(info.name, group or "")
            elif info.type in ("country", "organization") and ent.root.dep_ in SUBJECT_DEPS | {"compound", "amod"} \
                    and group and self.resolver.catalog.get(group) is not None:
                self.last_group = Actor(info.name, group)
                if self.lead is None:
                    self.lead = self.last_group


def subject_of(verb: Token) -> Token | None:
    found = subject_and_owner(verb)
    return found[0] if found else None


def subject_and_owner(verb: Token, cue: set[int] | frozenset = frozenset()) -> tuple[Token, Token] | None:
    """The subject of a verb and the verb that carries it (an xcomp or conj verb borrows its head's).

    With two subject candidates ("Recap: Pete Hegseth told ...") the one nearest the verb wins,
    unless one of them is the cue itself ("arms shipments for Kyiv to cross"): then that one.
    """
    subjects = [c for c in verb.children if c.dep_ in SUBJECT_DEPS]
    if subjects:
        in_cue = [c for c in subjects if c.i in cue]
        return (in_cue or [min(subjects, key=lambda c: abs(verb.i - c.i))])[0], verb
    for c in verb.children:   # passive: "was approved by the Senate"
        if c.dep_ == "agent":
            for g in c.children:
                if g.dep_ == "pobj":
                    return g, verb
    if verb.dep_ in ("conj", "xcomp") and verb.head.i != verb.i:
        return subject_and_owner(verb.head)
    if verb.dep_ == "relcl":
        return verb.head, verb
    if verb.dep_ == "acl" and verb.tag_ in ("VBG", "VBN"):   # "..., saying a pause would ...": the head's subject
        head = verb.head
        while head.dep_ != "ROOT" and head.pos_ not in ("VERB", "AUX"):
            head = head.head
        return subject_and_owner(head) if head.i != verb.i else None
    if verb.dep_ == "advcl" and verb.tag_ == "VBG":            # "..., insisting that ..."
        return subject_and_owner(verb.head)
    return None


def find_actor(anchor: Token, ctx: Context, cue_tokens: set[int] = frozenset(),
               first_subject: bool = False) -> tuple[Actor, list[Token]] | None:
    found = _find_actor(anchor, ctx, cue_tokens, first_subject)
    if found and _reported_by_non_actor(found[1][-1], ctx):
        return None   # "Analysts say the Commission could fall back on ...": speculation, not a position
    return found


def _reported_by_non_actor(t: Token, ctx: Context) -> bool:
    for x in t.ancestors:
        if x.lemma_.lower() in REPORTING:
            subj = subject_of(x)
            return subj is not None and ctx.resolve_subject(subj) is False
    return False


def _find_actor(anchor: Token, ctx: Context, cue_tokens: set[int] = frozenset(),
                first_subject: bool = False) -> tuple[Actor, list[Token]] | None:
    """Walk up from the cue to the first verb whose subject is an actor; return it and the path.

    A pronoun subject ("Britain, which ..., said that it would ...") takes the actor of a
    verb higher in the same sentence when there is one, else the discourse's last one.
    """
    path = [anchor]
    t = anchor
    seen = set()
    pending: tuple[Actor, list[Token]] | None = None
    pronoun = ""
    while t.i not in seen:
        seen.add(t.i)
        if _is_condition(t):
            pass   # "stop if Kyiv renounced NATO": the actor is who sets the condition, not its subject
        elif t.pos_ in ("VERB", "AUX") or t.dep_ == "ROOT" or t.tag_ in ("VBG", "VBN"):
            found = subject_and_owner(t, cue_tokens)
            subj = found[0] if found else None
            if found and found[1].i != t.i:
                # the subject belongs to a verb higher up ("refused to back"): its words are on the way
                owner, x = found[1], t
                while x.i != owner.i and x.head.i != x.i and x.head.i not in seen:
                    link = x.dep_
                    x = x.head
                    seen.add(x.i)
                    if link != "conj":   # "would not send arms ... and called for a ceasefire": the
                        path.append(x)   # first verb's negation is not the second's
                t = x
            owner_verb = found[1] if found else t
            if subj is not None and (_is_condition(owner_verb) or _content_clause(owner_verb)):
                subj = None   # "if it helped ...", "a call for Germany to supply", "Russia's demand that
                #               Ukraine withdraw", "must include Ukraine abandoning its bid": not the actor
            if subj is not None and subj.i != anchor.i and subj.i not in cue_tokens:
                actor = ctx.resolve_subject(subj)
                if actor is False or (first_subject and not actor and pending is None
                                       and subj.lower_ not in PRONOUNS):
                    return pending
                if actor:
                    if subj.lower_ in PRONOUNS:
                        if pending is None:
                            pending = (actor, list(path))
                            pronoun = subj.lower_
                    elif pending is None:
                        if t.lemma_ == "be" and t.dep_ in ("ccomp", "conj"):
                            reporter = _reporter_above(t, ctx)
                            if reporter and reporter[0].group != actor.group:
                                return reporter[0], path + reporter[1]
                        return actor, path
                    elif _antecedent_fits(pronoun, subj, ctx):
                        return actor, pending[1]
                    else:
                        return pending
            # "according to Peskov"
            for c in t.children:
                if c.lower_ == "according":
                    for p in c.subtree:
                        ent = ctx.ent_at(p)
                        if ent is not None:
                            actor = ctx.actor_of_ent(ent)
                            if actor:
                                return actor, path
        if t.head.i == t.i:
            break
        t = t.head
        path.append(t)
    return pending


PRONOUNS = FIRST_PERSON | THIRD_PERSON | {"it", "they", "them", "its", "their"}
REPORTING = {"say", "tell", "declare", "insist", "add", "state", "claim", "argue", "warn", "write", "announce", "stress",
             "note", "suggest", "believe", "think"}


def _reporter_above(t: Token, ctx: Context) -> tuple[Actor, list[Token]] | None:
    """The actor of a reporting verb above t ("Biden said [Ukraine was not ready]")."""
    extra = []
    x = t
    while x.head.i != x.i:
        x = x.head
        extra.append(x)
        if x.lemma_.lower() in REPORTING:
            subj = subject_of(x)
            if subj is not None:
                actor = ctx.resolve_subject(subj)
                if actor:
                    return actor, extra
            return None
    return None


CONTENT_NOUNS = {"demand", "call", "request", "proposal", "plan", "idea", "insistence", "condition", "requirement",
                 "suggestion", "offer", "ultimatum", "expectation", "hope", "wish", "position"}


def _content_clause(verb: Token) -> bool:
    """Is this clause the content of a noun or an object ("the demand that Ukraine withdraw",
    "a call for Germany to supply", "include Ukraine abandoning its bid")? Its subject is not the
    one whose position the sentence states."""
    if any(c.dep_ == "mark" and c.lower_ == "for" for c in verb.children):
        return True
    if verb.dep_ in ("acl", "ccomp", "relcl") and verb.head.lemma_.lower() in CONTENT_NOUNS:
        return True   # "Russia's demand that Ukraine withdraw" (spaCy may parse it as a relative clause)
    return verb.tag_ == "VBG" and verb.dep_ in ("dobj", "pobj", "pcomp", "ccomp") \
        and verb.head.lemma_.lower() not in REPORTING


def _antecedent_fits(pronoun: str, subj: Token, ctx: Context) -> bool:
    ent = ctx.ent_at(subj)
    info = ctx.resolver.resolve(ent) if ent is not None else None
    is_person = info is not None and info.type == "person" or subj.lower_ in ("president", "minister", "chancellor")
    if pronoun in THIRD_PERSON:
        return is_person
    if pronoun in ("it", "its"):
        return not is_person
    return True


# -- stance ------------------------------------------------------------------------
STANCE_CHILD_DEPS = {"neg", "advmod", "aux", "auxpass", "prt", "acomp", "npadvmod"}
CONDITION_MARKS = {"if", "unless", "once", "provided", "providing", "when"}
IDIOMATIC_IFS = re.compile(r"\bif\s+(?:necessary|needed|need\s+be|required|so|not|any)\b", re.IGNORECASE)


def _is_condition(clause: Token) -> bool:
    return clause.dep_ == "advcl" and any(c.dep_ == "mark" and c.lower_ in CONDITION_MARKS for c in clause.children)


def stance_of(cue_tokens: set[int], path: list[Token], counter: bool, book: TopicBook) -> tuple[str, str]:
    """The stance the path from cue to actor expresses, and the words that decided it.

    Words counted: the tokens on the path and their negations, auxiliaries, particles and
    adverbs (not the cue itself). A cue inside a condition the actor sets ("would stop if
    Kyiv renounced NATO") states what the actor wants: the condition's own words decide.
    Conditional wording counts from the actor's clause, outside the cue's own branch.
    """
    anchor = path[0]
    cond = next((k for k, t in enumerate(path) if _is_condition(t)), None)
    # a demanded condition ("would stop if Kyiv renounced NATO"): its own words decide, not the actor's verb
    stance_path = path if cond is None else path[:cond + 1]
    on_path = {t.i for t in path}
    window: dict[int, Token] = {}
    for t in stance_path:
        window[t.i] = t
        for c in t.children:
            if c.dep_ in STANCE_CHILD_DEPS or (c.dep_ == "det" and c.lower_ in book.negation):
                window[c.i] = c
            elif c.dep_ == "prep" and c.lower_ == "as" and c.i not in on_path:   # "treat any use of it as theft"
                window.update((g.i, g) for g in c.children if g.dep_ == "pobj")
            elif c.dep_ in ("oprd", "attr", "acomp", "dobj", "ccomp", "xcomp") and c.i not in on_path \
                    and not any(x.i in cue_tokens for x in c.subtree):
                window[c.i] = c   # 'called the plan "theft"', "saw no point in"
                window.update((g.i, g) for g in c.children if g.dep_ in ("det", "neg") and g.lower_ in book.negation)
    for c in anchor.children:   # "no ceasefire", "any settlement"
        if c.dep_ in ("det", "neg"):
            window[c.i] = c
    words = [window[i] for i in sorted(window) if i not in cue_tokens]
    text = " ".join(t.text for t in words)
    flips = sum(1 for t in words if t.lower_ in book.negation)
    opposers = [m.group(0) for m in book.oppose.finditer(text)]
    flips += len(opposers) + (1 if counter else 0)
    stance = "support" if flips % 2 == 0 else "oppose"
    # conditions and indecision: the actor's clause, minus the branch that holds the cue
    demanded = cond is not None
    extra = []
    scope = list(path) + [c for t in path for c in t.children if c.dep_ == "conj" and c.i not in on_path]
    top = path[-1]
    if top.dep_ == "ccomp" and top.head.lemma_.lower() in REPORTING:
        scope.append(top.head)   # "Putin said [Russia would order a ceasefire] if Ukraine withdrew": his condition
    for t in scope:
        for c in t.children:
            if c.i in on_path or any(x.i in cue_tokens for x in c.subtree):
                continue
            if _is_condition(c):
                extra.append(" ".join(x.text for x in c.children if x.dep_ in ("mark", "advmod")) + " if")
            elif c.dep_ == "prep" and c.lower_ in ("under", "on", "at", "in"):
                extra.append(" ".join(x.text for x in list(c.subtree)[:6]))
            elif c.dep_ in ("advmod", "acomp", "attr", "dobj", "xcomp", "ccomp", "amod"):
                extra.append(" ".join(x.text for x in list(c.subtree)[:8]))
            elif c.dep_ == "conj":   # "..., but only if the Russian leader was prepared to ..."
                head_words = " ".join(x.text for x in list(c.subtree)[:5])
                if re.search(r"\b(?:only\s+(?:if|once|when|after)|provided|as\s+long\s+as|on\s+condition)\b", head_words):
                    extra.append(head_words)
    marks = [x.text for t in path for x in t.children if x.dep_ == "mark"]
    clause_text = " ".join([text, *extra]) if not demanded else " ".join([text, *extra]).replace(" if", " ")
    if not demanded:
        clause_text += " " + " ".join(marks)
    m = book.undecided.search(clause_text)
    if m:
        return "undecided", m.group(0)
    clause_text = IDIOMATIC_IFS.sub(" ", clause_text)
    m = book.conditional.search(clause_text)
    if m and not (demanded and m.group(0).lower() in CONDITION_MARKS):
        return "conditional", m.group(0)
    return stance, " ".join(opposers)


# -- money -------------------------------------------------------------------------
def _kind(text: str, lex: AidLexicon) -> str:
    kinds = [k for k, pat in lex.kinds.items() if pat and pat.search(text)]
    return kinds[0] if len(kinds) == 1 else "unspecified"


def _word_before(span: Span) -> str:
    doc = span.doc
    i = span.start - 1
    while i >= 0 and doc[i].lower_ in ("about", "around", "nearly", "some", "roughly", "almost", "over", "up", "just"):
        i -= 1
    return doc[i].lower_ if i >= 0 else ""


def pledges_in(sent: Span, sent_index: int, ctx: Context, lex: AidLexicon, fx: FxTable,
               published: dt.date | None, money: list[tuple[Span, Money]]) -> list[Pledge]:
    inside = [(s, m) for s, m in money if s.start >= sent.start and s.end <= sent.end]
    if not inside:
        return []
    doc = sent.doc
    revision = lex.revision_verbs.search(sent.text)
    out = []
    for span, m in inside:
        # a revision stated in the sentence: "from €4bn to €8bn", "to $20bn from $30bn"
        previous = None
        before = _word_before(span)
        if revision and len(inside) > 1:
            if before == "from":
                continue   # the old amount of a revision is not a claim of its own
            olds = [om for other, om in inside if other is not span and _word_before(other) == "from"
                    and om.currency == m.currency]
            if olds and before in ("to", "by") or olds and len(inside) == 2:
                previous = olds[0].amount
        tight = doc[max(sent.start, span.start - 3): min(sent.end, span.end + 4)].text
        wide = doc[max(sent.start, span.start - 10): min(sent.end, span.end + 10)].text
        if lex.not_aid_nouns.search(wide) and not lex.aid_nouns.search(tight):
            continue
        root = span.root
        found = find_actor(root, ctx, set(range(span.start, span.end)), first_subject=True)
        path = found[1] if found else [root] + list(root.ancestors)
        path_text = " ".join(t.text for t in path)
        has_verb = bool(lex.pledge_verbs.search(path_text))
        has_noun = bool(lex.aid_nouns.search(tight))
        if not (has_verb or has_noun):
            continue
        negated = any(c.dep_ == "neg" for t in path for c in t.children)
        if negated or lex.not_pledged.search(" ".join(t.text for t in path[1:])) or lex.not_pledged.search(
                doc[max(sent.start, span.start - 3): span.start].text):
            continue
        donor = found[0].group if found else None
        if donor is None:
            donor = _clause_donor(span, ctx, lex)
        if donor is None:
            # "Germany's €2.7bn package", "EU aid of €18bn"
            for t in list(root.head.children) + list(root.children):
                ent = ctx.ent_at(t)
                if ent is not None and not (span.start <= ent.start < span.end) and t.dep_ in ("poss", "compound", "nmod"):
                    a = ctx.actor_of_ent(ent)
                    if a:
                        donor = a.group
                        break
        if donor is None:
            continue
        recipient = _recipient(sent, ctx, donor, lex)
        if recipient is None or recipient == donor:
            continue
        kind_text = doc[max(sent.start, span.start - 8): min(sent.end, span.end + 10)].text + " " + " ".join(
            " ".join(x.text for x in list(c.subtree)[:6]) for t in path[1:] for c in t.children
            if c.dep_ == "dobj" and not (span.start <= c.i < span.end))
        kind = _kind(kind_text, lex)
        if kind == "unspecified" and not any(p.search(kind_text) for p in lex.kinds.values() if p):
            kind = lex.default_kind.get(donor, "unspecified")
        out.append(Pledge(
            evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text),
            donor=donor, recipient=recipient, amount=m.amount, currency=m.currency,
            amount_eur=to_eur(m.amount, m.currency, published, fx) if published else None,
            kind=kind, previous_amount=previous, low_amount=m.low, qualifier=m.qualifier,
            money_text=m.text))
    return out


def _clause_donor(span: Span, ctx: Context, lex: AidLexicon) -> str | None:
    """The donor in a clause on the amount's noun: "the $725m package the US announced", "$60.8bn approved by Congress"."""
    root = span.root
    nouns = [root, root.head] if root.head.i != root.i else [root]
    for noun in nouns:
        for c in noun.children:
            if c.dep_ in ("relcl", "acl") and lex.pledge_verbs.search(c.text):
                found = subject_and_owner(c)
                subj = found[0] if found and found[0].i != noun.i else None
                if subj is None or subj.lower_ in ("which", "that"):
                    continue
                actor = ctx.resolve_subject(subj)
                if actor:
                    return actor.group
    return None


def _recipient(sent: Span, ctx: Context, donor: str, lex: AidLexicon) -> str | None:
    """The state the money goes to: the followed conflict's state when the sentence names it, else "to/for X"."""
    named = []
    for ent in sent.ents:
        if ent.label_ == "MONEY":
            continue
        info = ctx.resolver.resolve(ent)
        role = ent_role(ent)
        group = None
        if info is not None and info.type == "country":
            group = info.name
        elif role and role[1] in ctx.resolver.catalog.acts_for:
            group = ctx.resolver.catalog.acts_for[role[1]]
        if group and group != donor:
            named.append((group, ent.root.head.lower_ in ("to", "for") or ent.root.dep_ == "dative"))
    if any(g == lex.default_recipient for g, _ in named):
        return lex.default_recipient
    for g, to_for in named:
        if to_for:
            return g
    # none named in the sentence: the followed state, when the article is about it
    return lex.default_recipient if ctx.mentions_of(lex.default_recipient) >= 2 else None


# -- positions ---------------------------------------------------------------------
def _reports(found: tuple[Actor, list[Token]], ctx: Context) -> bool:
    """Is the found actor the subject of a reporting verb on or above its path ("Seoul told us it would ...")?"""
    actor, path = found
    for t in [*path, *path[-1].ancestors]:
        if t.lemma_.lower() in REPORTING:
            subj = subject_of(t)
            if subj is not None:
                who = ctx.resolve_subject(subj)
                if who and who.group == actor.group:
                    return True
    return False


PROXY_NOUNS = {"veto", "objection", "objections", "opposition", "block", "blockade", "decision", "deal", "agreement",
               "move", "plan", "proposal"}
NEGATIVE_PROXIES = {"veto", "objection", "objections", "opposition", "block", "blockade"}


def _proxy_cues(sent: Span, cues: list) -> list:
    """Anaphoric objects ("after Orban dropped his veto", "Kyiv welcomed the decision") stand for the
    proposition of the one topic the sentence names."""
    topics = {c.topic for c in cues}
    if len(topics) != 1:
        return []
    (topic,) = topics
    taken = [(c.start, c.end) for c in cues]
    out = []
    for t in sent:
        start = t.idx - sent.start_char
        if t.lower_ in PROXY_NOUNS and t.dep_ in ("dobj", "pobj", "nsubjpass") and \
                not any(a <= start < b for a, b in taken):
            # a veto or an objection names the opposite of the proposition ("dropped its objections")
            out.append(CueMatch(topic, start, start + len(t.text), t.lower_ in NEGATIVE_PROXIES))
    return out


def positions_in(sent: Span, sent_index: int, ctx: Context, book: TopicBook) -> list[Position]:
    out = []
    text = sent.text
    cues = book.cues_in(text)
    for cue in cues + _proxy_cues(sent, cues):
        cspan = sent.doc.char_span(sent.start_char + cue.start, sent.start_char + cue.end, alignment_mode="expand")
        if cspan is None:
            continue
        cue_tokens = set(range(cspan.start, cspan.end))
        anchor = cspan.root
        found = find_actor(anchor, ctx, cue_tokens)
        if ctx.speaker is not None and (not found or (
                found[0].group != ctx.speaker.group and not _reports(found, ctx))):
            # an interview answer: what it asserts is the interviewee's position, unless it
            # reports someone else's words ("Putin said ...")
            found = ctx.speaker, (found[1] if found else [anchor, *anchor.ancestors])
        if not found:
            continue
        actor, path = found
        if not actor.group:
            continue
        if cue.needs_verb is not None and not any(cue.needs_verb.fullmatch(t.text) for t in path[1:]):
            continue
        stance, _why = stance_of(cue_tokens, path, cue.counter, book)
        out.append(Position(evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text),
                            actor=actor.name, actor_group=actor.group, topic=cue.topic, stance=stance,
                            cue=cspan.text))
    return out


# -- meetings ----------------------------------------------------------------------
EVENT_VERBS = {"hold", "sit", "begin", "open", "start", "continue", "resume", "host", "attend", "conclude", "end", "wrap",
               "take", "go", "proceed", "characterize", "characterise", "describe", "produce", "yield", "span", "bring",
               "meet", "join", "lead", "arrive", "finish", "close", "chair", "convene", "gather"}
MODAL_WORDS = {"could", "would", "may", "might", "should", "will", "can", "must", "shall", "'ll", "wo"}


def _is_event(word: Token) -> bool:
    """Did this meeting or round of talks happen (or is it happening), rather than being wished for?"""
    if word.pos_ == "VERB":   # "met", "are meeting"; not "to meet" (a wish)
        if word.tag_ not in ("VBD", "VBZ", "VBP", "VBG", "VBN"):
            return False
        verb = word
    else:
        if any(c.dep_ == "prep" and c.lower_ in ("in", "at") for c in word.children) or \
                any(c.dep_ == "compound" and c.ent_type_ in ("GPE", "LOC", "FAC") for c in word.children):
            verb = word.head   # "talks in Miami", "the Florida talks"
            if not any(c.lower_ in MODAL_WORDS or c.dep_ == "neg" for c in verb.children):
                return True
        verb = word.head
        while verb.pos_ not in ("VERB", "AUX") and verb.head.i != verb.i:
            verb = verb.head
        if verb.lemma_.lower() not in EVENT_VERBS or verb.tag_ == "VB":
            return False
    return not any(c.lower_ in MODAL_WORDS or c.dep_ == "neg" for c in verb.children)


def meetings_in(sent: Span, sent_index: int, ctx: Context, published: dt.date | None) -> list[Meeting]:
    words = [t for t in sent if MEETING_WORDS.fullmatch(t.text)]
    if not words or not any(_is_event(w) for w in words):
        return []
    participants, people, location = [], [], None
    for ent in sent.ents:
        info = ctx.resolver.resolve(ent)
        if info is None:
            continue
        role = ent_role(ent)
        where = ent.root.head.lower_ in ("in", "at") or ent.root.dep_ == "compound" and \
            MEETING_WORDS.fullmatch(ent.root.head.text or "")
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
    kind = "talks" if re.search(r"\b(?:talks|negotiations|round)\b", sent.text, re.IGNORECASE) else "meeting"
    return [Meeting(evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text), event_type=kind,
                    participants=tuple(participants), people=tuple(dict.fromkeys(people)), location=location,
                    event_date=published)]


# -- the article -------------------------------------------------------------------
def _paragraph_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer(r"\n+", text):
        starts.append(m.end())
    return starts


def mine_doc(doc: Doc, url: str, published: dt.datetime | None, *, catalog: EntityCatalog, topics: TopicBook,
             aid: AidLexicon, fx: FxTable) -> MinedArticle:
    """Everything newsmon finds in one parsed article."""
    resolver = MentionResolver(catalog, doc)
    ctx = Context(doc, resolver)
    day = published.date() if published else None
    money = doc._.money or []
    mentions = [Mention(sentence_index=-1, start_char=ent.start_char, end_char=ent.end_char, surface=ent.text,
                        entity=info.name, entity_type=info.type, wikidata_id=info.wikidata,
                        actor_group=resolver.group(info)) for ent, info in iter_mentions(doc, resolver)]
    pstarts = _paragraph_starts(doc.text)
    sents = list(doc.sents)
    sent_of_char = {}
    pledges, positions, meetings = [], [], []
    labels = _speaker_labels(doc, pstarts, resolver)
    para = -1
    for i, sent in enumerate(sents):
        sent_of_char[sent.start_char] = i
        # a new paragraph: interview labels set the speaker or mark a question
        p = max(k for k, s in enumerate(pstarts) if s <= sent.start_char)
        if p != para:
            para = p
            label = labels.get(p)
            ctx.speaker = label if isinstance(label, Actor) else None
            ctx.skip_paragraph = label is False
        ctx.quote_speaker = _quote_speaker(sent, ctx)
        stripped = sent.text.strip()
        question = stripped.endswith("?") or HYPOTHETICAL_START.match(stripped) is not None
        if not ctx.skip_paragraph and not question:
            pledges.extend(pledges_in(sent, i, ctx, aid, fx, day, money))
            positions.extend(positions_in(sent, i, ctx, topics))
            meetings.extend(meetings_in(sent, i, ctx, day))
        ctx.remember(sent)
    # positions implied by pledges (a military pledge states support for military aid)
    for pl in pledges:
        for topic in topics.topics.values():
            if pl.kind in topic.implied_kinds and (not topic.implied_donors or pl.donor in topic.implied_donors):
                positions.append(Position(evidence=pl.evidence, actor=pl.donor, actor_group=pl.donor, topic=topic.id,
                                          stance="support", cue=pl.money_text))
    starts = [s.start_char for s in sents]
    mentions = [dataclasses.replace(m, sentence_index=max(0, bisect.bisect_right(starts, m.start_char) - 1))
                for m in mentions]
    return MinedArticle(url=url, sentences=len(sents), mentions=tuple(mentions), pledges=tuple(_dedupe_pledges(pledges)),
                        positions=tuple(_dedupe_positions(positions)), meetings=tuple(meetings))


def _speaker_labels(doc: Doc, pstarts: list[int], resolver: MentionResolver) -> dict[int, Actor | bool]:
    """Interview paragraphs ("Joly: We already are ..."): the answering speaker, or False for a question."""
    labels: dict[int, Actor | bool] = {}
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
        labels[k] = actor if actor else False
    return labels


def _quote_speaker(sent: Span, ctx: Context) -> Actor | None:
    """The actor of a reporting verb in the sentence ('..., he said'), who "I" and "we" refer to."""
    for t in sent:
        if t.lemma_.lower() in ("say", "tell", "add", "insist", "write", "declare", "state") and t.pos_ in ("VERB", "AUX"):
            subj = subject_of(t)
            if subj is not None and subj.lower_ not in FIRST_PERSON:
                actor = ctx.resolve_subject(subj)
                if actor:
                    return actor
    return None


def _dedupe_pledges(pledges: Sequence[Pledge]) -> list[Pledge]:
    seen, out = set(), []
    for p in pledges:
        key = (p.donor, p.recipient, round(p.amount, 2), p.currency)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


STANCE_PRIORITY = {"undecided": 0, "conditional": 1, "oppose": 2, "support": 3}


def _dedupe_positions(positions: Iterable[Position]) -> list[Position]:
    """One stance per (group, topic) in an article.

    When sentences disagree, the marked stance wins over plain support (support is what
    a cue yields when no word of stance is found, the least informed reading), and among
    equals the first sentence wins.
    """
    best: dict[tuple[str, str], Position] = {}
    for p in positions:
        key = (p.actor_group, p.topic)
        cur = best.get(key)
        if cur is None or STANCE_PRIORITY[p.stance] < STANCE_PRIORITY[cur.stance]:
            best[key] = p
    return sorted(best.values(), key=lambda p: (p.evidence.start_char, p.topic))
