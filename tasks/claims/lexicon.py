"""The words the claim rules consult, read from one folder per language (`config/lang/en/`).

Python names the roles (reporting verbs, negations, condition marks ...); the words are
data. `load_lexicon(folder)` reads `discourse.yaml`, `stance.yaml` and `events.yaml` into
one frozen `Lexicon`, so a refusal idiom, a hedge or a language is an edit there.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from newsmon.errors import ConfigError
from newsmon.settings import read_yaml
from tasks.topics import compile_phrases, words

__all__ = ["Lexicon", "load_lexicon", "LEXICON_FILES"]

LEXICON_FILES = ("discourse.yaml", "stance.yaml", "events.yaml")


@dataclasses.dataclass(frozen=True)
class Lexicon:
    # discourse: who speaks, who acts
    reporting_verbs: frozenset[str]
    quote_verbs: frozenset[str]
    non_actors: frozenset[str]
    research_words: re.Pattern
    non_actor_modifiers: frozenset[str]
    vague_quantifiers: frozenset[str]
    stative_predicates: frozenset[str]
    agentive_adjectives: frozenset[str]
    superseded_adverbs: frozenset[str]
    anonymity_words: frozenset[str]
    portfolio_titles: frozenset[str]
    group_nouns: frozenset[str]
    document_nouns: frozenset[str]
    content_nouns: frozenset[str]
    coercion_verbs: frozenset[str]
    desire_verbs: frozenset[str]
    proxy_nouns: frozenset[str]
    negative_proxy_nouns: frozenset[str]
    first_person: frozenset[str]
    third_person: frozenset[str]
    group_pronouns: frozenset[str]
    person_nouns: frozenset[str]
    hypothetical_start: re.Pattern
    # stance
    oppose: re.Pattern
    negation: frozenset[str]
    change_verbs: frozenset[str]
    negating_determiners: frozenset[str]
    negation_idioms: re.Pattern
    conditional: re.Pattern
    undecided: re.Pattern
    condition_marks: frozenset[str]
    condition_openers: re.Pattern
    idiomatic_ifs: re.Pattern
    restricting_conjuncts: re.Pattern
    condition_prepositions: frozenset[str]
    event_predicates: frozenset[str]
    event_phrases: dict[str, frozenset[str]]   # light verb lemma -> nouns that make it an event
    topic_predicates: frozenset[str]
    stance_predicates: frozenset[str]
    stance_modals: frozenset[str]
    circumstance_prepositions: frozenset[str]
    question_predicates: frozenset[str]
    event_reports: frozenset[str]
    non_assertive_verbs: frozenset[str]
    non_assertive_nouns: frozenset[str]
    goal_verbs: frozenset[str]
    time_marks: frozenset[str]
    exchange_verbs: frozenset[str]
    threat_predicates: frozenset[str]
    threat_means: frozenset[str]
    proposal_verbs: frozenset[str]
    proposal_nouns: frozenset[str]
    speech_predicates: frozenset[str]
    refusal_verbs: frozenset[str]
    deontic_modals: frozenset[str]
    constraint_predicates: frozenset[str]
    # events
    meeting_words: frozenset[str]
    talks_words: re.Pattern
    event_verbs: frozenset[str]
    modal_words: frozenset[str]

    @property
    def pronouns(self) -> frozenset[str]:
        return self.first_person | self.third_person | self.group_pronouns


def _light_verbs(phrases) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for p in phrases:
        verb, noun = p.split(None, 1)
        out.setdefault(verb, set()).add(noun)
    return {k: frozenset(v) for k, v in out.items()}


def load_lexicon(folder: str | Path) -> Lexicon:
    """Read a language folder. Raises ConfigError naming the file and key that is missing or bad."""
    folder = Path(folder)
    data: dict[str, tuple[Path, dict]] = {}
    for name in LEXICON_FILES:
        path = folder / name
        doc = read_yaml(path, "lexicon")
        for key, value in doc.items():
            data[key] = (path, value)

    def raw(key: str):
        if key not in data or data[key][1] in (None, [], {}):
            raise ConfigError(f"{folder}: lexicon key {key!r} is missing or empty (in one of {', '.join(LEXICON_FILES)})")
        return data[key]

    def wordset(key: str) -> frozenset[str]:
        path, value = raw(key)
        return frozenset(w.lower() for w in words(value, f"{path}: {key}"))

    def phrases(key: str) -> re.Pattern:
        path, value = raw(key)
        return compile_phrases(value, f"{path}: {key}")

    path, pron = raw("pronouns")
    if not isinstance(pron, dict):
        raise ConfigError(f"{path}: pronouns must map first_person, third_person and group to word lists")

    def pronoun_set(role: str) -> frozenset[str]:
        if not pron.get(role):
            raise ConfigError(f"{path}: pronouns.{role} is missing or empty")
        return frozenset(w.lower() for w in words(pron[role], f"{path}: pronouns.{role}"))

    path, openers = raw("hypothetical_openers")
    openers_re = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words(openers, f"{path}: hypothetical_openers"))
    return Lexicon(
        reporting_verbs=wordset("reporting_verbs"), quote_verbs=wordset("quote_verbs"),
        non_actors=wordset("non_actors"), research_words=phrases("research_words"), non_actor_modifiers=wordset("non_actor_modifiers"), vague_quantifiers=wordset("vague_quantifiers"), stative_predicates=wordset("stative_predicates"),
        agentive_adjectives=wordset("agentive_adjectives"), superseded_adverbs=wordset("superseded_adverbs"), anonymity_words=wordset("anonymity_words"), portfolio_titles=wordset("portfolio_titles"), group_nouns=wordset("group_nouns"), document_nouns=wordset("document_nouns"),
        content_nouns=wordset("content_nouns"), coercion_verbs=wordset("coercion_verbs"), desire_verbs=wordset("desire_verbs"), proxy_nouns=wordset("proxy_nouns"),
        negative_proxy_nouns=wordset("negative_proxy_nouns"),
        first_person=pronoun_set("first_person"), third_person=pronoun_set("third_person"),
        group_pronouns=pronoun_set("group"), person_nouns=wordset("person_nouns"),
        hypothetical_start=re.compile(rf"^\W*(?:{openers_re})\b", re.IGNORECASE),
        oppose=phrases("oppose"), negation=wordset("negation"), change_verbs=wordset("change_verbs"), negating_determiners=wordset("negating_determiners"), negation_idioms=phrases("negation_idioms"), conditional=phrases("conditional"),
        undecided=phrases("undecided"), condition_marks=wordset("condition_marks"), condition_openers=phrases("condition_openers"),
        idiomatic_ifs=phrases("idiomatic_ifs"), restricting_conjuncts=phrases("restricting_conjuncts"),
        condition_prepositions=wordset("condition_prepositions"),
        event_predicates=frozenset(w for w in wordset("event_predicates") if " " not in w),
        event_phrases=_light_verbs(w for w in wordset("event_predicates") if " " in w), topic_predicates=wordset("topic_predicates"), stance_predicates=wordset("stance_predicates"),
        stance_modals=wordset("stance_modals"),
        circumstance_prepositions=wordset("circumstance_prepositions"),
        question_predicates=wordset("question_predicates"),
        event_reports=wordset("event_reports"), non_assertive_verbs=wordset("non_assertive_verbs"), non_assertive_nouns=wordset("non_assertive_nouns"), goal_verbs=wordset("goal_verbs"), time_marks=wordset("time_marks"), exchange_verbs=wordset("exchange_verbs"), threat_predicates=wordset("threat_predicates"), threat_means=wordset("threat_means"), proposal_verbs=wordset("proposal_verbs"), proposal_nouns=wordset("proposal_nouns"), speech_predicates=wordset("speech_predicates"),
        refusal_verbs=wordset("refusal_verbs"), deontic_modals=wordset("deontic_modals"), constraint_predicates=wordset("constraint_predicates"),
        meeting_words=wordset("meeting_words"), talks_words=phrases("talks_words"), event_verbs=wordset("event_verbs"),
        modal_words=wordset("modal_words"),
    )
