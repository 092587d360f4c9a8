"""Stated positions: an actor's stance on one of the tracked topics, with the sentence.

A topic cue (`config/topics.yaml`) is found in the sentence; its actor is found on the parse
(`actors`); the path between them gives the stance (`stance`). An interview answer asserts
the interviewee's position unless it reports someone else's words. One stance per article,
group and topic is kept (`dedupe_positions`).
"""
from __future__ import annotations

from collections.abc import Iterable

from spacy.tokens import Span

from tasks.claims.actors import co_actors, find_actor, is_condition, parenthetical_reporter, proposer, reports
from tasks.claims.discourse import Context
from tasks.claims.records import Evidence, Found, Position
from tasks.claims.stance import mention_only, stance_of
from tasks.topics import CueMatch, TopicBook, resolve_overlaps

__all__ = ["positions_in", "dedupe_positions"]


def _proxy_cues(sent: Span, cues: list, ctx: Context) -> list:
    """Anaphoric objects ("after Orban dropped his veto", "Kyiv welcomed the decision") stand for the
    proposition of the one topic the sentence names."""
    topics = {c.topic for c in cues}
    if len(topics) != 1:
        return []
    if all(_in_circumstance(sent, c, ctx) for c in cues):
        return []   # "After nine hours of talks, ... promising a decision": the talks are only a setting
    (topic,) = topics
    taken = [(c.start, c.end) for c in cues]
    out = []
    for t in sent:
        start = t.idx - sent.start_char
        if t.lower_ in ctx.lex.proxy_nouns and t.dep_ in ("dobj", "pobj", "nsubjpass") and \
                not any(a <= start < b for a, b in taken):
            # a veto or an objection names the opposite of the proposition ("dropped its objections")
            out.append(CueMatch(topic, start, start + len(t.text), t.lower_ in ctx.lex.negative_proxy_nouns))
    return out


def _in_circumstance(sent: Span, cue, ctx: Context) -> bool:
    span = sent.doc.char_span(sent.start_char + cue.start, sent.start_char + cue.end, alignment_mode="expand")
    return span is not None and any(t.pos_ == "ADP" and t.lower_ in ctx.lex.circumstance_prepositions
                                    for t in span.root.ancestors)


def _superseded(path, ctx: Context) -> bool:
    """Is the actor's stance a superseded past ("Berlin had long resisted touching the assets")?
    The past perfect of a predicate on the way, with an adverb of former duration ("had long",
    "had previously"), places it before a change the article goes on to tell (GOLD_FORMAT,
    settled cases: time); a bare past perfect is often only reported speech ("said it had decided")."""
    for t in path[1:]:
        if t.pos_ in ("VERB", "AUX") and t.tag_ == "VBN" and t.lemma_.lower() not in ctx.lex.reporting_verbs \
                and any(c.dep_ == "aux" and c.lower_ == "had" for c in t.children) \
                and any(c.dep_ == "advmod" and c.lower_ in ctx.lex.superseded_adverbs for c in t.children):
            return True
    return False


def _said_of(path, ctx: Context):
    """The path through the quotation when the cue is what a quotation is said of ("'This is theft,'
    Zakharova said of the EU's plan"): [the quotation's head, the reporting verb]; else None."""
    for k, t in enumerate(path[1:], 1):
        if t.dep_ == "prep" and t.lower_ in ("of", "about") and t.head.lemma_.lower() in ctx.lex.reporting_verbs \
                and k + 1 < len(path) and path[k + 1].i == t.head.i:
            quote = next((c for c in t.head.children if c.dep_ == "ccomp"), None)
            return [quote, t.head] if quote is not None else None
    return None


def _another_state(token, state: str, ctx: Context, by_name: bool) -> bool:
    """Does the token name a catalog country other than `state` (with `by_name`, by its own name,
    not through a person who speaks for it)?"""
    ent = ctx.ent_at(token)
    actor = ctx.actor_of_ent(ent) if ent is not None else None
    info = ctx.resolver.catalog.get(actor.group) if actor else None
    return info is not None and info.type == "country" and actor.group != state and (actor.name == actor.group or not by_name)


def _owned_by_another(cspan, beneficiary: str | None, ctx: Context) -> bool:
    """Is the cue owned by a state other than the topic's beneficiary ("Georgia's place is in NATO",
    "Finland's accession to NATO")? Then it is about that state."""
    return bool(beneficiary) and any(c.dep_ == "poss" and _another_state(c, beneficiary, ctx, by_name=True)
                                     for t in cspan for c in t.children)


def _goes_to_another(path, recipient: str | None, ctx: Context) -> bool:
    """Does a verb on the way send the cue's things "to" a state other than the topic's recipient?"""
    return bool(recipient) and any(g.dep_ == "pobj" and _another_state(g, recipient, ctx, by_name=False)
                                   for t in path[1:] for c in t.children
                                   if c.dep_ in ("prep", "dative") and c.lower_ == "to" for g in c.children)


def _other_object(anchor, objects: frozenset[str]) -> bool:
    """Is the cue a verb whose direct object is not one the topic's verbs take?"""
    return bool(objects) and anchor.pos_ == "VERB" and any(
        c.dep_ == "dobj" and c.lemma_.lower() not in objects and c.lower_ not in objects for c in anchor.children)


def _third_party(anchor, ctx: Context) -> bool:
    """Does a clause on the way up from the cue have a third-person pronoun for its subject ("They
    wanted to tear our economy to shreds with sanctions")? Its proposition is someone else's, whom
    the quotation's speaker does not name."""
    return any(c.dep_ in ("nsubj", "nsubjpass") and c.pos_ == "PRON" and c.lower_ in ctx.lex.pronouns
               and c.lower_ not in ctx.lex.first_person
               for t in (anchor, *anchor.ancestors) for c in t.children)


def _dated_by(clause, ctx: Context) -> bool:
    """Is the clause one of time ("only after a ceasefire is in place", "but only once a ceasefire was in place")?"""
    return clause.dep_ in ("advcl", "conj") and any(
        c.dep_ in ("mark", "advmod") and c.lower_ in ctx.lex.time_marks for c in clause.children)


def _named_as_condition(path, ctx: Context) -> bool:
    """Is the cue inside a condition the actor sets (or a clause of time), and not as the goal its act is to serve
    ("once the fighting stopped", "if the Kremlin agreed to a truce"; not "if it helped secure a ceasefire")?"""
    cond = next((k for k, t in enumerate(path[:-1]) if is_condition(t, ctx) or _dated_by(t, ctx)), None)
    if cond is None:
        return False
    return not any(t.lemma_.lower() in ctx.lex.goal_verbs and not any(c.dep_ == "auxpass" for c in t.children)
                   for t in path[1:cond + 1])


def _refused_price_buys(anchor, ctx: Context) -> bool:
    """Is the cue what a refused exchange would buy ("would never trade its land for a pause in the
    fighting", "will not trade land for peace")? The refusal is of the price, not of the cue."""
    if not (anchor.dep_ == "pobj" and anchor.head.lower_ == "for"):
        return False
    verb = anchor.head.head
    if verb.dep_ == "dobj":   # "trade land for peace": the parser may hang "for" from the object
        verb = verb.head
    return verb.lemma_.lower() in ctx.lex.exchange_verbs and any(
        c.dep_ == "neg" or c.lower_ in ctx.lex.negation for c in verb.children)


def positions_in(sent: Span, sent_index: int, ctx: Context, book: TopicBook) -> list[Position]:
    out = []
    text = sent.text
    cues = resolve_overlaps(book.cues_in(text) + book.frames_in(sent))
    proxies = _proxy_cues(sent, cues, ctx)
    for cue in cues + proxies:
        cspan = sent.doc.char_span(sent.start_char + cue.start, sent.start_char + cue.end, alignment_mode="expand")
        if cspan is None:
            continue
        cue_tokens = set(range(cspan.start, cspan.end))
        anchor = cspan.root
        if _owned_by_another(cspan, book.topics[cue.topic].beneficiary, ctx):
            continue
        if _refused_price_buys(anchor, ctx):
            continue
        if _other_object(anchor, book.topics[cue.topic].verb_objects):
            continue   # "officials are negotiating a new programme with the IMF": not this proposition
        who_proposes = proposer(anchor, ctx) if not cue.counter else None
        if who_proposes is not None:
            out.append(Position(evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text),
                                actor=who_proposes.name, actor_group=who_proposes.group, topic=cue.topic,
                                stance="support", cue=cspan.text))
        found = find_actor(anchor, ctx, cue_tokens)
        if ctx.speaker is not None and (not found or (
                found.actor.group != ctx.speaker.group and not reports(found, ctx))):
            # an interview answer: what it asserts is the interviewee's position, unless it
            # reports someone else's words ("Putin said ...")
            found = Found(ctx.speaker, found.path if found else [anchor, *anchor.ancestors])
        if not found and not _third_party(anchor, ctx):
            found = parenthetical_reporter(anchor, ctx)
        if not found and ctx.in_quote and ctx.quote_speaker is not None and not _third_party(anchor, ctx):
            # a quotation asserts what its speaker holds ("This is not the moment for talks.")
            found = Found(ctx.quote_speaker, [anchor, *anchor.ancestors])
        if not found:
            continue
        actor, path = found
        if not actor.group:
            continue
        if book.topics[cue.topic].silent_in_conditions and _named_as_condition(path, ctx):
            continue   # "would speak to Putin only if he first accepted a ceasefire": a ceasefire as a condition
        if _goes_to_another(path, book.topics[cue.topic].recipient, ctx):
            continue   # "North Korea has shipped millions of artillery shells to Russia"
        if cue.needs_verb is not None and not any(cue.needs_verb.fullmatch(t.text) for t in path[1:]):
            continue
        if mention_only(cue_tokens, path, ctx) or _superseded(path, ctx):
            continue
        if cue in proxies and not cue.counter:
            cue_tokens = set()   # "no decision has been taken": the proxy's own words count
        said_of = _said_of(path, ctx)
        if said_of is not None:
            # "'This is theft,' Zakharova said of the EU's plan": the quotation judges what it is said of
            cue_tokens, path = set(), said_of
        if cue.frame:   # the predicate's own negation, inside the pair's span, counts ("sanctions would not be eased")
            cue_tokens = cue_tokens - {c.i for c in anchor.children if c.dep_ == "neg"}
        stance = stance_of(cue_tokens, path, cue.counter, ctx, book.topics[cue.topic].premise).stance
        for who in (actor, *co_actors(found, ctx)):
            out.append(Position(evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text),
                                actor=who.name, actor_group=who.group, topic=cue.topic, stance=stance,
                                cue=cspan.text))
    return out


STANCE_PRIORITY = {"undecided": 0, "conditional": 1, "oppose": 2, "support": 3}


def dedupe_positions(positions: Iterable[Position]) -> list[Position]:
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
