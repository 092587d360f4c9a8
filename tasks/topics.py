"""Topics from `config/topics.yaml`, compiled for matching (the words of stance are in `config/lang/`).

A cue is a phrase (case-insensitive, `*` ends a stem) or `re:` + a regular
expression. `TopicBook.cues_in(text)` finds every cue of every topic in a sentence,
longest match first, so that overlapping cues of two topics resolve to the more
specific one.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path


from newsmon.errors import ConfigError
from newsmon.settings import read_yaml

__all__ = ["Topic", "Frame", "TopicBook", "CueMatch", "load_topics", "compile_phrases", "words", "resolve_overlaps"]

STANCES = ("support", "oppose", "conditional", "undecided")


def _phrase(p: str) -> str:
    p = str(p).strip()
    if p.startswith("re:"):
        return p[3:]
    words = []
    for w in p.split():
        stem = w.endswith("*")
        w = re.escape(w.rstrip("*"))
        words.append(w + (r"\w*" if stem else ""))
    return r"\s+".join(words)


def words(values, where: str) -> list[str]:
    bad = [v for v in values or [] if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"{where}: {bad[0]!r} is not a phrase; quote words YAML reads as other types "
                          "(no, yes, on, off, numbers)")
    return list(values or [])


def compile_phrases(phrases, where: str) -> re.Pattern | None:
    """One case-insensitive regex matching any of the phrases, on word boundaries."""
    phrases = words(phrases, where)
    parts = [_phrase(p) for p in phrases or [] if str(p).strip()]
    if not parts:
        return None
    try:
        return re.compile(r"(?<![\w-])(?:" + "|".join(f"(?:{p})" for p in parts) + r")(?![\w])", re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{where}: bad cue pattern: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Frame:
    """A predicate and its argument that together name the proposition, on the parse:
    "trade (its) land", "the surrender of territory", "troops (on Ukrainian) soil".

    `predicates` are lemmas; "give up" is the lemma `give` with the particle `up`.
    `arguments` are lemmas (or lower-case words) of a dependent of the predicate: a child,
    or the object of a preposition that is a child. `counter`: the frame names the opposite.
    `counter_agents`: words that, as the predicate's subject or a modifier of it, make the
    frame name the opposite ("Russian troops left the territory" is no Ukrainian withdrawal).
    """
    predicates: dict[str, frozenset[str]]   # lemma -> particles required (empty: none)
    arguments: frozenset[str]
    counter: bool = False
    counter_agents: frozenset[str] = frozenset()

    def agent_counters(self, t) -> bool:
        """Does the predicate t have a subject that the frame's counter_agents name?"""
        for c in t.children:
            if c.dep_ in ("nsubj", "nsubjpass"):
                if any(x.lower_ in self.counter_agents or x.lemma_.lower() in self.counter_agents
                       for x in (c, *(g for g in c.children if g.dep_ in ("amod", "compound", "poss", "nmod")))):
                    return True
        return False

    def matches(self, sent, lemmas: list | None = None) -> list[tuple[int, int]]:
        """(first, last) token indices of each predicate-argument pair in the sentence.

        `lemmas`: the sentence's (token, lower-case lemma) pairs, when the caller has them already."""
        out = []
        for t, lemma in (lemmas if lemmas is not None else ((t, t.lemma_.lower()) for t in sent)):
            particles = self.predicates.get(lemma)
            if particles is None:
                continue
            if particles and not any(c.dep_ in ("prt", "prep", "advmod") and c.lower_ in particles for c in t.children):
                continue
            for a in _dependents(t):
                if a.lemma_.lower() in self.arguments or a.lower_ in self.arguments:
                    out.append((min(t.i, a.i), max(t.i, a.i)))
                    break
        return out


def _dependents(t):
    for c in t.children:
        yield c
        if c.dep_ in ("prep", "agent", "prt", "dative"):
            yield from (g for g in c.children if g.dep_ in ("pobj", "pcomp"))
        elif c.dep_ in ("dobj", "nsubjpass", "attr", "pobj") and c.pos_ == "NOUN":
            yield from (g for g in c.children if g.dep_ in ("compound", "amod"))


@dataclasses.dataclass(frozen=True)
class Topic:
    id: str
    description: str
    cues: re.Pattern
    counter: re.Pattern | None
    implied_kinds: frozenset[str] = frozenset()
    implied_donors: frozenset[str] = frozenset()
    implied_when_cued: bool = False   # the pledge implies support only when its sentence names the topic
    object_cues: re.Pattern | None = None
    object_verbs: re.Pattern | None = None
    not_cues: re.Pattern | None = None
    frames: tuple[Frame, ...] = ()
    beneficiary: str | None = None   # the state the proposition is about: another state's cue is off-topic
    recipient: str | None = None     # the state things go to: a supply "to" another state is off-topic
    #: what the proposition presupposes ("a peace deal" for guarantees): a condition naming it is none
    premise: re.Pattern | None = None
    #: a cue that is a verb with a direct object names the proposition only with one of these objects
    #: ("negotiate a settlement", not "negotiate a new programme with the IMF"); empty: any object
    verb_objects: frozenset[str] = frozenset()
    #: a cue inside a condition that the actor sets states no stance on this topic: the condition
    #: dates or frames the actor's own offer ("would not stand in the way once the fighting stopped")
    silent_in_conditions: bool = False


@dataclasses.dataclass(frozen=True)
class CueMatch:
    topic: str
    start: int      # char offsets in the text searched
    end: int
    counter: bool   # the phrase names the opposite of the proposition
    needs_verb: re.Pattern | None = None   # an object cue: one of these verbs must govern it
    frame: bool = False   # a predicate-argument pair on the parse (its span may hold words of stance)


@dataclasses.dataclass(frozen=True)
class TopicBook:
    topics: dict[str, Topic]

    def cues_in(self, text: str) -> list[CueMatch]:
        found = []
        blocked = []
        for topic in self.topics.values():
            if topic.not_cues is not None:
                blocked.extend((m.start(), m.end()) for m in topic.not_cues.finditer(text))
        for topic in self.topics.values():
            for pat, counter, verbs in ((topic.cues, False, None), (topic.counter, True, None),
                                        (topic.object_cues, False, topic.object_verbs)):
                if pat is None:
                    continue
                found.extend(CueMatch(topic.id, m.start(), m.end(), counter, verbs) for m in pat.finditer(text))
        found = [c for c in found if not any(c.start < e and b < c.end for b, e in blocked)]
        return resolve_overlaps(found)

    def frames_in(self, sent) -> list[CueMatch]:
        """Cues that are predicate-argument pairs on the parse of a sentence (a spaCy Span)."""
        found = []
        # the sentence's lemmas once, not once per frame (18 frames: most of the rules' time went here);
        # a frame none of whose predicates is among them matches nothing
        lemmas = [(t, t.lemma_.lower()) for t in sent]
        present = {lemma for _, lemma in lemmas}
        for topic in self.topics.values():
            for frame in topic.frames:
                if present.isdisjoint(frame.predicates):
                    continue
                for first, last in frame.matches(sent, lemmas):
                    start = sent.doc[first].idx - sent.start_char
                    end = sent.doc[last].idx + len(sent.doc[last].text) - sent.start_char
                    pred = next(t for t in (sent.doc[first], sent.doc[last]) if t.lemma_.lower() in frame.predicates)
                    found.append(CueMatch(topic.id, start, end, frame.counter != frame.agent_counters(pred), frame=True))
        return found


def resolve_overlaps(found: list[CueMatch]) -> list[CueMatch]:
    """Where cues overlap, the longest wins ("talks with Putin" over "talks")."""
    found = sorted(found, key=lambda c: (-(c.end - c.start), c.start))
    kept: list[CueMatch] = []
    for c in found:
        if not any(c.start < k.end and k.start < c.end for k in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.start)


def _frame(rec, where: str) -> Frame:
    if not isinstance(rec, dict) or not rec.get("predicates") or not rec.get("arguments"):
        raise ConfigError(f"{where}: a frame needs predicates and arguments (lists of words)")
    unknown = set(rec) - {"predicates", "arguments", "counter", "counter_agents"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (a frame has predicates, arguments, counter, "
                          "counter_agents)")
    predicates: dict[str, frozenset[str]] = {}
    plain: set[str] = set()
    for p in words(rec["predicates"], where + ".predicates"):
        head, *particles = p.lower().split()
        if not particles:
            plain.add(head)   # "hand" beside "hand over": the verb alone counts, with or without "over"
        predicates[head] = predicates.get(head, frozenset()) | frozenset(particles)
    predicates.update({head: frozenset() for head in plain})
    return Frame(predicates=predicates, arguments=frozenset(w.lower() for w in words(rec["arguments"], where + ".arguments")),
                 counter=bool(rec.get("counter", False)),
                 counter_agents=frozenset(w.lower() for w in words(rec.get("counter_agents") or [], where + ".counter_agents")))


def _flag(rec: dict, key: str, where: str) -> bool:
    value = rec.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: {value!r} is not true or false")
    return value


def load_topics(path: str | Path) -> TopicBook:
    path = Path(path)
    data = read_yaml(path, "topics")
    topics = {}
    for tid, rec in (data.get("topics") or {}).items():
        where = f"{path}: topics.{tid}"
        if not isinstance(rec, dict) or not rec.get("cues"):
            raise ConfigError(f"{where}: a topic needs a list of cues")
        implied = rec.get("implied_by_pledge") or {}
        frames = tuple(_frame(f, f"{where}.frames[{k}]") for k, f in enumerate(rec.get("frames") or []))
        topics[tid] = Topic(id=tid, description=str(rec.get("description", "")),
                            cues=compile_phrases(rec["cues"], where + ".cues"),
                            counter=compile_phrases(rec.get("counter_cues"), where + ".counter_cues"),
                            implied_kinds=frozenset(implied.get("kinds") or []),
                            implied_donors=frozenset(implied.get("donors") or []),
                            implied_when_cued=bool(implied.get("when_cued", False)),
                            object_cues=compile_phrases(rec.get("object_cues"), where + ".object_cues"),
                            object_verbs=compile_phrases(rec.get("object_verbs"), where + ".object_verbs"),
                            not_cues=compile_phrases(rec.get("not_cues"), where + ".not_cues"), frames=frames,
                            beneficiary=str(rec["beneficiary"]) if rec.get("beneficiary") else None,
                            recipient=str(rec["recipient"]) if rec.get("recipient") else None,
                            premise=compile_phrases(rec.get("premise"), where + ".premise"),
                            verb_objects=frozenset(str(w).lower() for w in words(rec.get("verb_objects"), where + ".verb_objects") or []),
                            silent_in_conditions=_flag(rec, "silent_in_conditions", where))
        if (topics[tid].object_cues is None) != (topics[tid].object_verbs is None):
            raise ConfigError(f"{where}: object_cues and object_verbs go together")
    if not topics:
        raise ConfigError(f"{path}: topics is missing or empty")
    if "stance_words" in data:
        raise ConfigError(f"{path}: stance_words moved to config/lang/en/stance.yaml; remove them here")
    return TopicBook(topics=topics)
