"""The stance a sentence states: support, oppose, conditional or undecided.

Stance starts as support (a cue names the proposition). Each negation and each oppose word
on the way from the cue to the actor's verb flips it, and so does a counter-cue (a phrase
naming the opposite proposition); conditional and undecided wording in the actor's clause
overrides it. A cue inside a condition the actor sets ("would stop if Kyiv renounced NATO")
states what the actor wants: the condition's own words decide.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from spacy.tokens import Token

from tasks.claims.actors import is_condition
from tasks.claims.discourse import Context

__all__ = ["Stance", "stance_of", "mention_only"]


class Stance(NamedTuple):
    stance: str   # support | oppose | conditional | undecided
    why: str      # the words that decided it


def stance_of(cue_tokens: set[int], path: list[Token], counter: bool, ctx: Context,
              premise: re.Pattern | None = None) -> Stance:
    """The stance the path from cue to actor expresses, and the words that decided it.

    Words counted: the tokens on the path and their negations, auxiliaries, particles and
    adverbs (not the cue itself). Conditional wording counts from the actor's clause,
    outside the cue's own branch.
    """
    lex = ctx.lex
    anchor = path[0]
    cond = next((k for k, t in enumerate(path) if is_condition(t, ctx)), None)
    # a demanded condition ("would stop if Kyiv renounced NATO"): its own words decide, not the actor's verb
    stance_path = path if cond is None else path[:cond + 1]
    # a coordinated clause with its own subject ("would never accept X and that he would not meet
    # Putin"): the verb it is coordinated with is another predicate, its negation is not this one's
    own = next((k for k, t in enumerate(stance_path[:-1]) if t.dep_ == "conj" and stance_path[k + 1].i == t.head.i
                and any(c.dep_ in ("nsubj", "nsubjpass", "csubj") for c in t.children)), None)
    if own is not None:
        stance_path = stance_path[:own + 1]
    on_path = {t.i for t in path}
    window: dict[int, Token] = {}
    for t in stance_path:
        window[t.i] = t
        for c in t.children:
            if c.dep_ in STANCE_CHILD_DEPS or (c.dep_ == "det" and c.lower_ in lex.negation):
                window[c.i] = c
            elif c.dep_ == "prep" and c.lower_ == "as" and c.i not in on_path:   # "treat any use of it as theft"
                window.update((g.i, g) for g in c.children if g.dep_ == "pobj")
            elif c.dep_ == "prep" and t.lemma_ == "be" and c.i not in on_path \
                    and not any(x.dep_ in ("attr", "acomp") for x in t.children) \
                    and not any(x.i in cue_tokens for x in c.subtree):
                # the phrase is the predicate ("is off the table", "is out of the question"),
                # not an adjunct beside one ("without anything behind it, could be dangerous")
                window.update((g.i, g) for g in c.subtree)
            if c.dep_ == "advmod" and c.i not in on_path:   # "no longer transferring", "not anymore"
                window.update((g.i, g) for g in c.children if g.lower_ in lex.negation)
            elif c.dep_ in ("oprd", "attr", "acomp", "dobj", "ccomp", "xcomp") and c.i not in on_path \
                    and not any(x.i in cue_tokens for x in c.subtree):
                window[c.i] = c   # 'called the plan "theft"', "saw no point in"
                if c.dep_ in ("attr", "oprd") and t.lemma_ == "be" or c.dep_ == "oprd":
                    # a predicate nominal evaluates the cue as a whole phrase: "would be nothing
                    # more than a breather", "is a recipe for disaster"
                    window.update((g.i, g) for g in c.subtree if g.pos_ in ("NOUN", "ADJ", "ADP"))
                window.update((g.i, g) for g in c.children if g.dep_ in ("det", "neg") and g.lower_ in lex.negation)
    for t in path:   # "Neither Kallas nor Michal sees any point in phoning Putin": a negated subject
        for c in t.children:
            if c.dep_ in ("nsubj", "nsubjpass"):
                window.update((g.i, g) for g in c.children if g.dep_ in ("preconj", "det") and g.lower_ in lex.negating_determiners)
    for c in anchor.children:   # "no ceasefire", "any settlement"
        if c.dep_ in ("det", "neg"):
            window[c.i] = c
    for i in cue_tokens:   # "not a single Hungarian bullet will go": a negated argument of the cue
        for c in anchor.doc[i].children:
            if c.dep_ in ("det", "neg", "preconj") and c.lower_ in lex.negation and c.i not in cue_tokens:
                window[c.i] = c
    # a negated verb of change ("has not changed", "has not moved") says the stance persists
    # (on the path or beside it: "Moscow's position had not changed: Kyiv must recognise Crimea")
    unchanged = {c.i for t in (*path, *list(window.values())) if t.lemma_.lower() in lex.change_verbs and t.pos_ in ("VERB", "AUX")
                 and any(c.dep_ == "neg" for c in t.children)
                 for c in (t, *t.children) if c is t or c.dep_ in ("neg", "advmod", "aux")}
    # a verb that sets a new level ("lifted its support frame to SEK 40 billion") states no opposition
    leveled = {t.i for t in path if t.pos_ == "VERB" and any(
        c.dep_ == "prep" and c.lower_ == "to" and any(g.ent_type_ in ("MONEY", "PERCENT") for g in c.subtree)
        for c in t.children)}
    words = [window[i] for i in sorted(window) if i not in cue_tokens and i not in unchanged and i not in leveled]
    text = " ".join(t.text for t in words)
    flips = sum(1 for t in words if t.lower_ in lex.negation
                and not lex.negation_idioms.match(t.doc.text, t.idx))   # "nothing more than" negates nothing
    opposers = [m.group(0) for m in lex.oppose.finditer(text)]
    flips += len(opposers) + (1 if counter else 0)
    if cond is not None and _threat(path[cond].head, lex):
        flips += 1   # "if Ukrainian forces did not leave, Russia would take it by force": wants them to leave
    stance = "support" if flips % 2 == 0 else "oppose"
    # conditions and indecision: the actor's clause, minus the branch that holds the cue
    demanded = cond is not None
    extra = []
    # (a demanded condition's own clause only: the actor's offer around it may carry its own
    # restrictions, "prepared to talk if it helped secure a ceasefire, but only in coordination")
    scope = list(stance_path) + [c for t in stance_path for c in t.children if c.dep_ == "conj" and c.i not in on_path]
    top = stance_path[-1]
    if top.dep_ == "ccomp" and top.head.lemma_.lower() in lex.reporting_verbs:
        scope.append(top.head)   # "Putin said [Russia would order a ceasefire] if Ukraine withdrew": his condition
    # the same with the reporting verb beside the clause ("Ukraine would accept X, Sybiha said, as long as ...")
    scope += [c for c in top.children if c.dep_ == "parataxis" and c.lemma_.lower() in lex.reporting_verbs]
    for t in scope:
        for c in t.children:
            if c.i in on_path or any(x.i in cue_tokens for x in c.subtree):
                continue
            if is_condition(c, ctx):
                if premise is not None and premise.search(" ".join(x.text for x in c.subtree)):
                    continue   # "troops on the ground if a peace deal is reached": what guarantees presuppose
                extra.append(" ".join(x.text for x in c.children if x.dep_ in ("mark", "advmod")) + " if")
            elif c.dep_ == "advcl" and any(x.dep_ == "mark" and x.lower_ == "until" for x in c.children) \
                    and any(x.dep_ == "neg" for x in t.children):
                extra.append("only after")   # "it cannot happen until the guns fall silent": not before = only after
            elif c.dep_ == "prep" and (c.lower_ in lex.condition_prepositions or any(
                    x.dep_ == "advmod" and x.lower_ == "only" for x in c.children)):   # "but only with a mandate"
                extra.append(" ".join(x.text for x in list(c.subtree)[:6]))
            elif c.dep_ in ("advmod", "acomp", "attr", "dobj", "xcomp", "ccomp", "amod", "nsubjpass"):
                # (a passive subject belongs to the clause: "no decision has been taken on ...")
                extra.append(" ".join(x.text for x in list(c.subtree)[:8]))
            elif c.dep_ == "conj":   # "..., but only if the Russian leader was prepared to ..."
                head_words = " ".join(x.text for x in list(c.subtree)[:5])
                if lex.restricting_conjuncts.search(head_words):
                    extra.append(head_words)
    marks = [x.text for t in path for x in t.children if x.dep_ == "mark"]
    clause_text = " ".join([text, *extra]) if not demanded else " ".join([text, *extra]).replace(" if", " ")
    if not demanded:
        clause_text += " " + " ".join(marks)
    m = lex.undecided.search(clause_text)
    if m:
        return Stance("undecided", m.group(0))
    constraint = _constraint(anchor, lex)
    if constraint:
        return Stance("conditional", constraint)
    clause_text = lex.idiomatic_ifs.sub(" ", clause_text)
    m = lex.conditional.search(clause_text)
    if m and not (demanded and m.group(0).lower() in lex.condition_marks):
        return Stance("conditional", m.group(0))
    return Stance(stance, " ".join(opposers))


def mention_only(cue_tokens: set[int], path: list[Token], ctx: Context) -> str | None:
    """Why the cue is only mentioned on its way to the actor (None when it may state a stance).

    - a circumstance: the cue hangs from a preposition of time or occasion ("said after
      talks in Jeddah", "at the start of his talks with Xi");
    - a question: the cue is inside a whether/if clause that someone asked or that is unclear;
    - an event or a state: the first predicate over the cue (or the cue's own verb) is one of
      events and states ("held talks", "holds €191bn of frozen assets", "Orban met Putin"),
      with no modal of possibility or obligation ("talks can begin only once ...") and no
      modal of an acting subject ("he would sit down with Putin", "will not take part"), or
      one that makes the cue a subject of conversation ("would not discuss weapons deliveries",
      "that topic was not raised"); unless a stance word stands higher up ("is ready to hold
      talks", "agreed to have their teams start negotiations").
    """
    lex = ctx.lex
    anchor = path[0]
    for t in (anchor, *anchor.ancestors):   # "officials doubt that Moscow is serious about negotiations"
        if t.lemma_.lower() in lex.non_assertive_verbs and t.pos_ == "VERB" and any(
                c.dep_ == "ccomp" and anchor in c.subtree for c in t.children):
            return f"not asserted: {t.text}"
        # "the theory is that Russia could use a truce ...", "fears that Kyiv would cede land"
        clause = t if t.dep_ in ("acl", "ccomp", "relcl") else None
        if clause is not None and (clause.head.lemma_.lower() in lex.non_assertive_nouns and clause.head.pos_ == "NOUN"
                                   or clause.head.lemma_ == "be" and any(
                    c.dep_ == "nsubj" and c.lemma_.lower() in lex.non_assertive_nouns for c in clause.head.children)):
            return f"not asserted: {clause.head.text}"
    for t in (*path, *path[-1].ancestors):   # "declined to comment on reports that ...", "would not say whether ..."
        if t.lemma_.lower() in lex.speech_predicates and (
                t.dep_ == "xcomp" and t.head.lemma_.lower() in lex.refusal_verbs
                or any(c.dep_ == "neg" for c in t.children)):
            return f"no comment: {t.text}"
    # the cue's own verb when it names an event or a conversation ("Putin and Trump had discussed ...")
    # (a finite one: "nothing to discuss with Putin" is a stance)
    for t in path[1:]:   # "There are €183 billion of Russian assets on our books": existence, no stance
        if t.lemma_ == "be" and any(c.dep_ == "expl" and c.lower_ == "there" for c in t.children) and not any(
                c.lower_ in lex.negation for x in (t, *t.children) for c in (x, *x.children)):
            return f"existence: {t.text}"
        if t.pos_ in ("VERB", "AUX"):
            break
    first = anchor if anchor.pos_ == "VERB" and (_is_event(anchor, lex) or anchor.lemma_.lower() in lex.topic_predicates
                                                 and anchor.tag_ in ("VBD", "VBN", "VBZ", "VBP")
                                                 and not any(c.lower_ == "to" and c.dep_ == "aux" for c in anchor.children)) \
        else None
    for t in path:
        # (the cue's own verb too: "asked whether Canada would send soldiers")
        if any(c.dep_ == "mark" and c.lower_ in ("whether", "if") for c in t.children) and (
                t.head.lemma_.lower() in lex.question_predicates
                or any(c.dep_ == "acomp" and c.lower_ in lex.question_predicates for c in t.head.children)):
            return f"question: {t.head.text}"   # "asked whether ...", "it was not clear whether ..."
        if t is not anchor and t.tag_ == "VBN" and t.lemma_.lower() in lex.question_predicates and \
                t.dep_ in ("advcl", "ccomp", "ROOT") and t.i == t.sent.start:
            return f"question: {t.text}"   # "Asked whether Washington would back ..., Kirby declined"
        if t is anchor:
            continue
        if t.i in cue_tokens or first is not None:
            continue
        if t.pos_ == "ADP" and (t.lower_ in lex.circumstance_prepositions or t.head.lower_ in lex.circumstance_prepositions):
            # "after talks", "ahead of talks", "on the sidelines of talks"
            return f"circumstance: {t.text}"
        if _predicate(t):
            first = t
    if first is None:
        return None
    word = first.lemma_.lower()
    # "have been in talks for weeks": a copula whose complement is "in" the cue is a state of events
    event = _is_event(first, lex) or word == "be" and anchor.dep_ == "pobj" and anchor.head.lower_ == "in" \
        and anchor.head.head.i == first.i and not any(c.dep_ in ("acomp", "attr") for c in first.children)
    passive = any(c.dep_ == "auxpass" for c in first.children)   # "was being prepared" is no "prepared to"
    if word in lex.stance_predicates or (first.lower_ in lex.stance_predicates and not passive) \
            or (not event and word not in lex.topic_predicates):   # "prepared to speak" is no "prepare"
        return None   # "open to talks": a word of stance first
    aux = {c.lower_ for c in first.children if c.dep_ in ("aux", "auxpass")}
    agentive = not any(c.dep_ in ("nsubj", "nsubjpass") and (c.i in cue_tokens or c.i == anchor.i)
                       for c in first.children)
    if event and (aux & lex.stance_modals or agentive and aux & lex.modal_words):
        return None   # "talks can begin only once ...", "he would sit down with Putin", "will not take part"
    if not event and aux & lex.stance_modals and anchor.head.i == first.i and anchor.dep_ in ("nsubjpass", "dobj"):
        return None   # "a truce could be discussed": a topic that may be discussed is a stance on it
    below = first
    for t in first.ancestors:
        if below.dep_ == "conj" and any(c.dep_ in ("nsubj", "nsubjpass") for c in below.children):
            break   # "would consider ..., and our delegation has held talks": a clause of its own
        below = t
        if t.lemma_.lower() in lex.event_reports:
            continue   # "denied that they had discussed ...": about the event, not the proposition
        if _predicate(t) and (t.lemma_.lower() in lex.stance_predicates or lex.oppose.fullmatch(t.text)):
            return None
    return f"event: {first.text}"


def _constraint(anchor: Token, lex) -> str | None:
    """A requirement set on the proposition: the cue is the subject of a predicate of constraint
    under a modal of obligation ("any use of the assets must respect international law", "any
    exchange of territory would have to be put to a referendum")."""
    # the cue's phrase or clause is the subject ("any use of the assets must ...", "whatever is
    # decided on the assets must respect international law")
    subj = anchor if anchor.dep_ in ("nsubj", "nsubjpass") else next(
        (x for x in anchor.ancestors if x.dep_ == "csubj"), None)
    if subj is None or any(x.pos_ in ("VERB", "AUX") and x.dep_ not in ("relcl", "csubj", "acl")
                           for x in (anchor, *anchor.ancestors) if x.i != subj.i and subj in x.ancestors):
        return None
    verb = subj.head
    obliged = any(c.dep_ == "aux" and c.lower_ in lex.deontic_modals for c in verb.children)
    if verb.lemma_ == "have":   # "would have to be put to ...": the obligation is the xcomp
        verb = next((c for c in verb.children if c.dep_ == "xcomp"), None)
        obliged = verb is not None
    if not obliged:
        return None
    words = [verb, *(c for c in verb.children if c.dep_ in ("acomp", "attr"))]
    hit = next((w for w in words if w.lemma_.lower() in lex.constraint_predicates), None)
    return f"{hit.text} (a requirement)" if hit is not None else None


def _threat(verb: Token, lex) -> bool:
    """Is the verb a consequence the actor threatens ("would retaliate", "will take it by force")?"""
    if verb.lemma_.lower() in lex.threat_predicates:
        return True
    return any(c.dep_ == "prep" and c.lower_ in ("by", "with") and any(
        " ".join(x.lower_ for x in g.subtree if x.dep_ != "det") in lex.threat_means for g in c.children if g.dep_ == "pobj")
        for c in verb.children)


def _is_event(t: Token, lex) -> bool:
    """Is t a predicate of events: a lemma of event_predicates, or a light verb with its noun
    ("take part", "take place": the entry "take part" needs the child "part")."""
    lemma = t.lemma_.lower()
    if lemma in lex.event_predicates:
        return True
    return any(c.lower_ in lex.event_phrases.get(lemma, ()) for c in t.children)


def _predicate(t: Token) -> bool:
    return t.pos_ in ("VERB", "AUX", "ADJ") or t.dep_ == "ROOT"


STANCE_CHILD_DEPS = {"neg", "advmod", "aux", "auxpass", "prt", "acomp", "npadvmod"}
