"""Who states a claim: the actor of a cue or an amount, found on the dependency parse.

The actor is the subject of the verb that governs the cue, found by walking up the parse
from the cue (so "X said Y would not give up land" finds Y, and "the money would allow ...,
Biden said" finds Biden). People speak for their affiliation, metonyms and demonyms for
their state; pronouns take the last person or state named, first-person words the speaker of
the quote or of an interview answer. Subjects such as "analysts" are `NOT_AN_ACTOR`: the
sentence is speculation, and nobody's position.
"""
from __future__ import annotations

from spacy.tokens import Span, Token

from tasks.claims.discourse import SUBJECT_DEPS, Context
from tasks.claims.records import NOT_AN_ACTOR, Actor, Found, NotAnActor
from tasks.nlp import ent_role

__all__ = ["resolve_subject", "subject_of", "parenthetical_reporter", "proposer", "subject_and_owner", "find_actor", "is_condition", "content_clause",
           "reports", "quote_speaker", "co_actors"]


def resolve_subject(subj: Token, ctx: Context) -> Actor | NotAnActor | None:
    """The actor a subject token names; NOT_AN_ACTOR for a non-actor (analysts) that ends the search."""
    lex = ctx.lex
    low = subj.lower_
    if subj.pos_ == "PRON" or low in lex.first_person | lex.third_person | {"it", "they"}:
        if low in lex.first_person:
            return ctx.quote_speaker or ctx.speaker or ctx.last_person
        if low in lex.third_person:
            return ctx.last_person
        if low in ("it", "they"):
            if subj.dep_ == "expl" or subj.head.lemma_ == "be" and not _agentive(subj.head, ctx):
                return None   # "it was too early to decide": nobody; the one who says so may be the actor
            return ctx.last_group   # "it was ready to talk"
        if low in ("who", "which", "that") and subj.head.dep_ == "relcl":
            return resolve_subject(subj.head.head, ctx)
        return None
    if _out_of_office(subj, lex):
        return NOT_AN_ACTOR   # "former US envoy Kurt Volker", "the opposition leader": no government's voice
    if _anonymous(subj, lex):
        return NOT_AN_ACTOR   # "a European official, speaking on condition of anonymity": a view, not a position
    ent = ctx.ent_at(subj)
    if ent is not None and ent.label_ == "ORG" and lex.research_words.search(ent.text):
        return NOT_AN_ACTOR   # "the Kiel Institute calculates ...": research, no position
    if ent is not None and ent.label_ not in ("MONEY", "CARDINAL", "DATE", "PERCENT"):
        actor = ctx.actor_of_ent(ent)
        if actor:
            return actor
    for c in subj.children:   # "10:30 GMT — Volodymyr Zelenskyy, addressing the G7, asked ...": the appositive names it
        if c.dep_ == "appos" and (ent is None or ctx.actor_of_ent(ent) is None):
            other = ctx.ent_at(c)
            actor = ctx.actor_of_ent(other) if other is not None and other.label_ in ("PERSON", "ORG", "GPE", "NORP") else None
            if actor:
                return actor
    if low in lex.non_actors or _unnamed_group(subj, lex):
        return NOT_AN_ACTOR
    # "Hungarian officials", "Kyiv's delegation", "the Ukrainian president", "officials in Kyiv";
    # not "Russia's economy": only nouns that name people or bodies speak for a state
    if not (low in lex.group_nouns or subj.lemma_.lower() in lex.group_nouns or low in lex.document_nouns):
        return None
    if any(c.dep_ == "poss" and c.lower_ in ("my", "our") for c in subj.children):
        return ctx.quote_speaker or ctx.speaker   # "my government approved ..."
    if any(c.dep_ == "poss" and c.lower_ in ("his", "her") for c in subj.children):
        return ctx.quote_speaker or ctx.last_person   # "Fico said his government would ..."
    if any(c.dep_ == "poss" and c.lower_ in ("its", "their") for c in subj.children):
        return ctx.quote_speaker or ctx.last_group    # "The World Bank said its board had approved ..."
    bare = not any(c.dep_ in ("poss", "nmod", "prep") or c.ent_type_ for c in subj.children)
    if bare and ctx.speaker is not None:
        return ctx.speaker   # "Joly: The prime minister committed ...": the interviewee's government
    if subj.tag_ == "NNS" and not any(c.dep_ in ("compound", "amod", "poss", "nmod", "prep") for c in subj.children):
        return ctx.lead   # "Leaders also endorsed ...": the article's lead actor
    mods = [c for c in subj.children if c.dep_ in ("compound", "amod", "poss", "nmod", "appos")]
    mods += [g for c in subj.children if c.dep_ == "prep" and c.lower_ in ("in", "from", "of", "to")
             for g in c.children if g.dep_ == "pobj"]
    for m in mods:
        for t in m.subtree:
            ent = ctx.ent_at(t)
            if ent is None:
                continue
            info = ctx.resolver.resolve(ent)
            role = ent_role(ent)
            if info is None:
                continue
            if info.type == "place" and role and role[1] in ctx.resolver.catalog.acts_for:
                g = ctx.resolver.catalog.acts_for[role[1]]
                return Actor(g, g)
            group = ctx.resolver.group(info)
            if group and (info.type == "person" or info.type in ("country", "organization")
                          and any(x.text[:1].isupper() for x in ent)):   # a name, not "the foreign ministry"
                return Actor(info.name if info.type == "person" else group, group)
    return None


def _unnamed_group(subj: Token, lex) -> bool:
    """Is the subject a group left unnamed by a quantifier ("several northern states", "some
    capitals", "a few governments")? It states nothing (GOLD_FORMAT, settled cases: who speaks);
    "the two leaders" names whom it counts."""
    if subj.tag_ != "NNS" or not (subj.lower_ in lex.group_nouns or subj.lemma_.lower() in lex.group_nouns):
        return False
    mods = [c for c in subj.children if c.dep_ in ("det", "amod", "nummod", "quantmod", "predet")]
    if any(c.lower_ == "the" for c in mods):
        return False
    return any(c.lower_ in lex.vague_quantifiers for c in mods)


def _agentive(be: Token, ctx: Context) -> bool:
    """Does the copula predicate an agent's readiness or will ("is ready to accept", "was
    unwilling to talk")? Its subject then acts; other copular clauses describe or evaluate,
    and so does readiness for a state ("Ukraine was not ready for NATO membership")."""
    return any(c.dep_ == "acomp" and c.lower_ in ctx.lex.agentive_adjectives
               and any(x.dep_ == "xcomp" for x in c.children) for c in be.children)


def _deontic(verb: Token, ctx: Context) -> bool:
    """Does a modal of obligation govern the verb ("Ukraine should not join NATO")? Reported, it
    states the reporter's view of what the subject should do."""
    return any(c.dep_ == "aux" and c.lower_ in ctx.lex.deontic_modals for c in verb.children)


def _anonymous(subj: Token, lex) -> bool:
    """Does the subject speak anonymously ("A European official, speaking on condition of
    anonymity, said ...", "an EU diplomat, speaking privately")? Such a speaker gives a view,
    not the government's stated position (GOLD_FORMAT, settled cases: who speaks)."""
    if subj.ent_type_ == "PERSON":
        return False
    for c in (*subj.children, *subj.head.children):
        if c.dep_ in ("acl", "advcl") and c.lemma_ == "speak":
            words = {x.lower_ for x in c.subtree}
            if words & lex.anonymity_words:
                return True
    return False


def _out_of_office(subj: Token, lex) -> bool:
    """Is the subject described as out of office or in opposition, by a modifier of its own
    ("former President ...", "opposition leader ...") or of its apposition ("Kurt Volker, a
    former US special envoy, said")?"""
    heads = [subj, *(c for c in subj.children if c.dep_ in ("appos", "compound"))]   # "Former [Polish President] Walesa"
    return any(c.dep_ in ("amod", "compound", "nmod") and c.lower_ in lex.non_actor_modifiers
               for h in heads for c in h.children)


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
    if verb.dep_ == "acl" and verb.tag_ == "VBG" and verb.head.dep_ == "pobj" and verb.head.head.lower_ == "with":
        return verb.head, verb   # "with several northern states resisting ...": the noun does it
    if verb.dep_ == "acl" and verb.tag_ in ("VBG", "VBN"):   # "..., saying a pause would ...": the head's subject
        head = verb.head
        while head.dep_ != "ROOT" and head.pos_ not in ("VERB", "AUX"):
            head = head.head
        return subject_and_owner(head) if head.i != verb.i else None
    if verb.dep_ == "advcl" and verb.tag_ == "VBG":            # "..., insisting that ..."
        return subject_and_owner(verb.head)
    return None


def is_condition(clause: Token, ctx: Context) -> bool:
    """Is the clause a condition? An adverbial clause (or one the parser made a conjunct: "..., but
    only if the Russian leader first accepted ...") whose subordinator is a condition mark, or, for
    wh-words, the parser's advmod ("only when we have guarantees"); or one that opens with a
    multi-word condition ("as long as Russia does the same", "on condition that ...")."""
    if clause.dep_ in ("ccomp", "pcomp") and clause.head.lower_ in ("provided", "providing") \
            and clause.head.dep_ in ("advcl", "prep"):
        return True   # "..., provided Moscow agreed to a durable ceasefire" (parsed as the verb "provide")
    if clause.dep_ not in ("advcl", "conj"):
        return False
    if ctx.lex.idiomatic_ifs.fullmatch(" ".join(t.lower_ for t in clause.subtree)):
        return False   # "would block them if necessary": a universal circumstance, no condition
    marks = [c for c in clause.children if c.dep_ in ("mark", "advmod") and c.lower_ in ctx.lex.condition_marks
             and (clause.dep_ == "advcl" or c.dep_ == "mark")]
    if marks:
        # a temporal mark on a realized past is a sequence of events, not a condition ("had agreed to the
        # package once its supplies were protected", "sent tanks when Russia attacked")
        head = clause.head
        realized = clause.dep_ == "advcl" and all(m.lower_ in ctx.lex.time_marks for m in marks) \
            and head.tag_ in ("VBD", "VBN") and not any(c.dep_ == "aux" and c.lower_ in ctx.lex.modal_words
                                                          for c in head.children)
        return not realized
    if clause.dep_ != "advcl":
        return False
    opening = " ".join(t.lower_ for t in list(clause.subtree)[:4])
    return ctx.lex.condition_openers.match(opening) is not None


def content_clause(verb: Token, ctx: Context) -> bool:
    """Is this clause the content of a noun or an object ("the demand that Ukraine withdraw",
    "a call for Germany to supply", "include Ukraine abandoning its bid")? Its subject is not the
    one whose position the sentence states."""
    if any(c.dep_ == "mark" and c.lower_ == "for" for c in verb.children):
        return True
    if verb.dep_ in ("acl", "ccomp", "relcl") and verb.head.lemma_.lower() in ctx.lex.content_nouns:
        return True   # "Russia's demand that Ukraine withdraw" (spaCy may parse it as a relative clause)
    if verb.dep_ == "relcl" and any(c.dep_ == "prep" and any(g.lower_ in ("which", "whom") for g in c.children)
                                    for c in verb.children):
        return True   # "a dictated peace in which Ukraine has to surrender territory": what the noun holds
    if any(c.dep_ == "mark" and c.lower_ == "whether" for c in verb.children):
        return True   # "no common position on whether Kyiv should negotiate": an open question, no claim of Kyiv's
    if verb.tag_ == "VBN" and verb.lemma_.lower() in ctx.lex.coercion_verbs and \
            any(c.dep_ == "auxpass" for c in verb.children):
        return True   # "Kyiv should be pressed into territorial concessions": the pressed one does not hold it
    if verb.dep_ in ("ccomp", "xcomp") and verb.head.lemma_.lower() in ctx.lex.desire_verbs \
            and any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children) \
            and any(c.dep_ == "nsubj" for c in verb.children):
        return True   # "Moscow wants Kyiv to pull its troops out": Moscow's want, Kyiv only the one to act
    if verb.dep_ == "pcomp" and verb.head.lower_ == "with":
        return False   # "with Hungary resisting joint borrowing": an absolute clause, its subject acts
    return verb.tag_ == "VBG" and verb.dep_ in ("dobj", "pobj", "pcomp", "ccomp") \
        and verb.head.lemma_.lower() not in ctx.lex.reporting_verbs


def find_actor(anchor: Token, ctx: Context, cue_tokens: set[int] = frozenset(),
               first_subject: bool = False) -> Found | None:
    found = _find_actor(anchor, ctx, cue_tokens, first_subject)
    if found and _reported_by_non_actor(found.path[-1], ctx):
        return None   # "Analysts say the Commission could fall back on ...": speculation, not a position
    return found


def _reported_by_non_actor(t: Token, ctx: Context) -> bool:
    for x in t.ancestors:
        if x.lemma_.lower() in ctx.lex.reporting_verbs:
            subj = subject_of(x)
            return subj is not None and resolve_subject(subj, ctx) is NOT_AN_ACTOR
    return False


def _find_actor(anchor: Token, ctx: Context, cue_tokens: set[int] = frozenset(),
                first_subject: bool = False) -> Found | None:
    """Walk up from the cue to the first verb whose subject is an actor; return it and the path.

    A pronoun subject ("Britain, which ..., said that it would ...") takes the actor of a
    verb higher in the same sentence when there is one, else the discourse's last one.
    """
    pronouns = ctx.lex.pronouns
    path = [anchor]
    t = anchor
    seen = set()
    pending: Found | None = None
    pronoun = ""
    while t.i not in seen:
        seen.add(t.i)
        if is_condition(t, ctx):
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
                    if link != "conj" or not any(c.dep_ in ("dobj", "ccomp", "xcomp", "prep") for c in x.children):
                        # "would not send arms ... and called for a ceasefire": the first verb's negation
                        # is not the second's; unless the two share the object ("are pausing and
                        # reviewing our military assistance": the first verb has none of its own)
                        path.append(x)
                t = x
            owner_verb = found[1] if found else t
            if subj is not None and (is_condition(owner_verb, ctx) or content_clause(owner_verb, ctx)):
                subj = None   # "if it helped ...", "a call for Germany to supply", "Russia's demand that
                #               Ukraine withdraw", "must include Ukraine abandoning its bid": not the actor
            if subj is not None and subj.i != anchor.i and subj.i not in cue_tokens:
                actor = resolve_subject(subj, ctx)
                if actor is NOT_AN_ACTOR or (first_subject and not actor and pending is None
                                             and subj.lower_ not in pronouns):
                    return pending
                if actor:
                    if subj.lower_ in pronouns:
                        if pending is None:
                            pending = Found(actor, list(path))
                            pronoun = subj.lower_
                    elif pending is None:
                        if t.dep_ in ("ccomp", "conj", "ROOT") and (t.lemma_.lower() in ctx.lex.stative_predicates
                                                                    and not _agentive(t, ctx) or _deontic(t, ctx)):
                            reporter = _reporter_above(t, ctx) if t.dep_ != "ROOT" else _reporter_beside(t, ctx)
                            if reporter and reporter.actor.group != actor.group:
                                return Found(reporter.actor, path + reporter.path)
                        return Found(actor, path)
                    elif _antecedent_fits(pronoun, subj, ctx):
                        return Found(actor, pending.path)
                    # else: a subject that cannot be the pronoun's antecedent ("Zelenskyy said Ukraine
                    # would ... and that he would not meet Putin"): one higher up may be

            # "according to Peskov"
            for c in t.children:
                if c.lower_ == "according":
                    for p in c.subtree:
                        ent = ctx.ent_at(p)
                        if ent is not None:
                            actor = ctx.actor_of_ent(ent)
                            if actor:
                                return Found(actor, path)
        if t.head.i == t.i:
            break
        t = t.head
        path.append(t)
    return pending


def parenthetical_reporter(anchor: Token, ctx: Context) -> Found | None:
    """The speaker of a parenthetical report on the cue's clause ("A truce could be discussed,
    Peskov said, provided ..."): a reporting verb the parser hangs beside the clause (parataxis)
    rather than above it. The reported clause is the speaker's words."""
    path = [anchor, *anchor.ancestors]
    found = _reporter_beside(path[-1], ctx, ("parataxis",), after_only=False)
    return Found(found.actor, [*path, *found.path]) if found else None


def proposer(anchor: Token, ctx: Context) -> Actor | None:
    """Who proposes or offers the proposition the cue names ("the ceasefire proposed by Washington",
    "the truce declared unilaterally by Putin", "Moscow's offer of a truce", "Putin's offer of a
    telephone call"): the proposer supports it, whoever the sentence's actor is."""
    lex = ctx.lex
    for c in anchor.children:   # "the ceasefire proposed by Washington"
        if c.dep_ == "acl" and c.tag_ == "VBN" and c.lemma_.lower() in lex.proposal_verbs:
            for a in c.children:
                if a.dep_ == "agent":
                    for g in a.children:
                        ent = ctx.ent_at(g) if g.dep_ == "pobj" else None
                        actor = ctx.actor_of_ent(ent) if ent is not None else None
                        if actor:
                            return actor
    noun = None
    if anchor.dep_ == "pobj" and anchor.head.lower_ in ("of", "for") and anchor.head.head.lemma_.lower() in lex.proposal_nouns:
        noun = anchor.head.head   # "Moscow's offer of a three-day truce"
    elif anchor.dep_ == "compound" and anchor.head.lemma_.lower() in lex.proposal_nouns:
        noun = anchor.head        # "Washington's ceasefire plan"
    if noun is None:
        return None
    for c in noun.children:
        if c.dep_ in ("poss", "compound") and c.i != anchor.i:
            ent = ctx.ent_at(c)
            actor = ctx.actor_of_ent(ent) if ent is not None else None
            if actor:
                return actor
    return None


def _reporter_beside(root: Token, ctx: Context, deps: tuple[str, ...] = ("parataxis", "conj"),
                     after_only: bool = True) -> Found | None:
    """The actor of the first reporting verb the parser hung beside the reported clause ("Ukraine
    belongs in NATO ..., the ministers said" parsed with "said" as a conjunct or parataxis of the
    root), with the path [that verb]."""
    for c in root.children:
        if c.dep_ in deps and (c.i > root.i or not after_only) and c.lemma_.lower() in ctx.lex.reporting_verbs:
            subj = subject_of(c)
            actor = resolve_subject(subj, ctx) if subj is not None else None
            return Found(actor, [c]) if actor else None
    return None


def _reporter_above(t: Token, ctx: Context) -> Found | None:
    """The actor of a reporting verb above t ("Biden said [Ukraine was not ready]"), with the path up to it."""
    extra = []
    x = t
    while x.head.i != x.i:
        x = x.head
        extra.append(x)
        if x.lemma_.lower() in ctx.lex.reporting_verbs:
            subj = subject_of(x)
            if subj is not None:
                actor = resolve_subject(subj, ctx)
                if actor:
                    return Found(actor, extra)
            return None
    return None


def _antecedent_fits(pronoun: str, subj: Token, ctx: Context) -> bool:
    ent = ctx.ent_at(subj)
    info = ctx.resolver.resolve(ent) if ent is not None else None
    is_person = info is not None and info.type == "person" or subj.lower_ in ctx.lex.person_nouns
    if pronoun in ctx.lex.third_person:
        return is_person
    if pronoun in ("it", "its"):
        return not is_person
    return True


def reports(found: Found, ctx: Context) -> bool:
    """Is the found actor the subject of a reporting verb on or above its path ("Seoul told us it would ...")?"""
    actor, path = found
    for t in [*path, *path[-1].ancestors]:
        if t.lemma_.lower() in ctx.lex.reporting_verbs:
            subj = subject_of(t)
            if subj is not None:
                who = resolve_subject(subj, ctx)
                if who and who.group == actor.group:
                    return True
    return False


def quote_speaker(sent: Span, ctx: Context) -> Actor | None:
    """The actor of a quoting verb in the sentence ('..., he said'), who "I" and "we" refer to."""
    for t in sent:
        if t.lemma_.lower() in ctx.lex.quote_verbs and t.pos_ in ("VERB", "AUX"):
            subj = subject_of(t)
            if subj is not None and subj.lower_ not in ctx.lex.first_person:
                actor = resolve_subject(subj, ctx)
                if actor:
                    return actor
    return None


def co_actors(found: Found, ctx: Context) -> list[Actor]:
    """The other actors coordinated with the found one as the subject of its verb: "imposed by the
    G7, the European Union and Australia", "the foreign ministers of Poland, Lithuania and Estonia
    said", "Hungary, Slovakia and the Czech Republic will not contribute"."""
    verb = found.path[-1]
    subj = subject_of(verb)
    if subj is None:
        return []
    heads = [subj]
    if ctx.ent_at(subj) is None:   # "the foreign ministers of Poland, ...": the entities the noun belongs to
        heads += [g for c in subj.children if c.dep_ == "prep" and c.lower_ in ("of", "from")
                  for g in c.children if g.dep_ == "pobj"]
    # "Emmanuel Macron, Friedrich Merz, Keir Starmer and Donald Tusk demanded ...": the parser may
    # make the second name an appositive of the first and the rest its conjuncts; an appositive
    # that heads a coordination is the rest of a list, not another name for the subject
    heads += [a for h in list(heads) for a in h.children if a.dep_ == "appos" and a.conjuncts]
    named: list[Actor] = []
    for head in heads:
        for t in (head, *head.conjuncts):
            ent = ctx.ent_at(t)
            actor = ctx.actor_of_ent(ent) if ent is not None else None
            if actor and actor not in named:
                named.append(actor)
    # only the found actor's own co-subjects: an interviewee answering about "Ukraine needs ..."
    # does not make Ukraine a co-author of the answer
    if not any(a.group == found.actor.group for a in named):
        return []
    return [a for a in named if a.group != found.actor.group]
