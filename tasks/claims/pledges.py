"""Aid pledges: an amount that a donor pledged, approved, announced or disbursed for a recipient.

An amount counts when it is the object of a pledge verb or the measure of an aid noun
(`config/aid.yaml`), its donor is an actor, it is not negated, proposed or blocked, and it is
not an amount of something else (reserves, losses, GDP ...) nor money a donor spends at home
(its own forces, loans to EU member states). A revision stated in the sentence ("from €4bn to
€8bn", "up from €977m") is one pledge with its previous amount; a running total ("bringing the
total to", "since 2022") and a conversion in parentheses ("$713m (£559m)") are no pledge.

The donor, first found first taken: the label of a verbless roundup item ("• Finland: €120m ..."),
the owner of the money's own noun ("the G7's $50bn loan"), the giver in a by/from phrase ("approved
by EU leaders", "a loan from the IMF"), the actor of the clause, a clause on the money's noun, the
owner of a relative clause's antecedent, and last the speaker of the words when the money's clause
names no other giver ("This A$245m package includes ...," Marles said). An institution's money is
its organisation's. The recipient is the state named with to/for, else the followed state.
Why an amount was not taken is logged at debug level.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from spacy.tokens import Span, Token

from newsmon.errors import ConfigError
from newsmon.settings import read_yaml
from tasks.claims.actors import find_actor, resolve_subject, subject_and_owner
from tasks.claims.discourse import SUBJECT_DEPS, Context
from tasks.claims.records import Actor, Evidence, Pledge
from tasks.money import FxTable, Money, to_eur
from tasks.nlp import ent_role
from tasks.topics import compile_phrases

__all__ = ["AidLexicon", "load_aid_lexicon", "pledges_in", "dedupe_pledges"]

log = logging.getLogger(__name__)


def _in_purpose_after(t: Token, span: Span) -> bool:
    """Is t inside an infinitive of purpose that follows the amount ("... kroner to buy gas")?"""
    for x in (t, *t.ancestors):
        if x.i < span.end:
            return False
        if x.i != t.i and x.pos_ == "VERB" and x.dep_ in ("advcl", "xcomp", "acl", "relcl") \
                and any(c.dep_ == "aux" and c.lower_ == "to" for c in x.children):
            return True
    return False


def _skip(span: Span, why: str, *detail) -> None:
    """Why an amount is not a pledge (debug log: `newsmon mine` with debug logging shows it)."""
    log.debug("not a pledge: %s: %s %s", span.text, why, " ".join(map(str, detail)))


@dataclasses.dataclass(frozen=True)
class AidLexicon:
    pledge_verbs: re.Pattern
    aid_nouns: re.Pattern
    not_aid_nouns: re.Pattern
    domestic_money: re.Pattern
    cumulative: re.Pattern
    receiving_verbs: re.Pattern
    not_pledged: re.Pattern
    revision_verbs: re.Pattern
    kinds: dict[str, re.Pattern]
    default_recipient: str
    default_kind: dict[str, str]
    currency_states: dict[str, str] = dataclasses.field(default_factory=dict)   # national currency -> its state


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
                      domestic_money=need("domestic_money"), cumulative=need("cumulative"),
                      receiving_verbs=need("receiving_verbs"),
                      not_pledged=need("not_pledged_verbs"), revision_verbs=need("revision_verbs"), kinds=kinds,
                      default_recipient=str(data.get("default_recipient") or "Ukraine"),
                      default_kind={str(k): str(v) for k, v in (data.get("default_kind_by_donor") or {}).items()},
                      currency_states={str(k).upper(): str(v) for k, v in (data.get("currency_states") or {}).items()})


def _kind(text: str, lex: AidLexicon) -> str:
    kinds = _kinds_named(text, lex)
    return kinds[0] if len(kinds) == 1 else "unspecified"


def _kinds_named(text: str, lex: AidLexicon) -> tuple[str, ...]:
    return tuple(k for k, pat in lex.kinds.items() if pat and pat.search(text))


def _word_before(span: Span) -> str:
    doc = span.doc
    i = span.start - 1
    while i >= 0 and doc[i].lower_ in ("about", "around", "nearly", "some", "roughly", "almost", "over", "up", "just",
                                       "the"):
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
    ends = {s.end for s, _ in inside}
    for span, m in inside:
        if span.start >= 1 and doc[span.start - 1].text == "(" and span.start - 1 in ends:
            _skip(span, "a conversion of the amount before it")   # "$713m (£559m)", "€40bn (US$43.6bn)"
            continue
        # a revision stated in the sentence: "from €4bn to €8bn", "to $20bn from $30bn"
        previous = None
        before = _word_before(span)
        # "up from €977m last year", "rise to £4.5bn from the £3bn planned": a "from" amount beside a
        # new one of the same currency is the old figure, whatever the verb
        if len(inside) > 1 and (revision or any(_word_before(other) == "from" and om.currency == m.currency
                                                for other, om in inside)):
            if before == "from":
                continue   # the old amount of a revision is not a claim of its own
            olds = [om for other, om in inside if other is not span and _word_before(other) == "from"
                    and om.currency == m.currency]
            if olds and before in ("to", "by") or olds and len(inside) == 2:
                previous = olds[0].amount
        tight = doc[max(sent.start, span.start - 3): min(sent.end, span.end + 4)].text
        # names are not nouns: "Defence Minister Bill Blair" states no bill
        around = [t for t in doc[max(sent.start, span.start - 10): min(sent.end, span.end + 10)]
                  if t.ent_type_ != "PERSON"]
        wide = " ".join(t.text for t in around)
        # what the money is to buy or pay for, after it ("2.5 billion kroner to buy gas", "to pay
        # pensions"), is its purpose, not what the amount measures
        measured = " ".join(t.text for t in around if not _in_purpose_after(t, span))
        if lex.not_aid_nouns.search(measured) and not lex.aid_nouns.search(tight):
            _skip(span, "not-aid noun")
            continue
        if lex.domestic_money.search(wide):
            _skip(span, "domestic money")
            continue
        root = span.root
        found = find_actor(root, ctx, set(range(span.start, span.end)), first_subject=True)
        path = found.path if found else [root] + list(root.ancestors)
        path_text = " ".join(t.text for t in path)
        giver = _giver_by_preposition(span, path, ctx, lex)
        has_verb = giver is not None or any(_is_verb(t) and _says(lex.pledge_verbs, t) for t in path)
        has_noun = bool(lex.aid_nouns.search(tight)) or any(lex.aid_nouns.fullmatch(t.text) for t in _money_nouns(span) + _money_of(span))
        # a verbless item: "• Finland: €120m for air defence", a quotation going on "Ninety billion euros
        # for Ukraine." -- the item's label or the speaker gives, and the item itself states the pledge
        verbless = not any(_is_verb(t) for t in path if not span.start <= t.i < span.end)
        label = _item_label(span, ctx) if verbless else None
        verbless_giver = label or (_speaker_donor(span, ctx) if verbless else None)
        if not (has_verb or has_noun or verbless_giver):
            _skip(span, "no verb/noun", path_text)
            continue
        negated = any(c.dep_ == "neg" for t in path for c in t.children)
        if negated or any(_says(lex.not_pledged, t) for t in path[1:]) or lex.not_pledged.search(
                doc[max(sent.start, span.start - 3): span.start].text):
            _skip(span, "negated/not pledged", path_text)
            continue
        if _cumulative(path, lex):
            _skip(span, "cumulative total", path_text)
            continue
        # the owner of the money's own noun is more specific than the clause's subject:
        # "the US will contribute $20bn to the G7's $50bn loan" (the $50bn is the G7's)
        donor = label or _owner(span, ctx, lex) or giver
        if donor is None:
            donor = found.actor.group if found and found.actor.group else None   # not a person of no known government
        if donor is None:
            donor = _clause_donor(span, ctx, lex)
        if donor is None:
            donor = _antecedent_owner(span, ctx)
        if donor is None:
            donor = _speaker_donor(span, ctx, lex.currency_states.get(m.currency))
        if donor is None:
            _skip(span, "no donor", path_text)
            continue
        donor = _paying_body(donor, ctx)
        recipient = _recipient(sent, ctx, donor, lex)
        if recipient is None or recipient == donor:
            _skip(span, "recipient", recipient, donor)
            continue
        kind_text = doc[max(sent.start, span.start - 8): min(sent.end, span.end + 10)].text + " " + " ".join(
            " ".join(x.text for x in list(c.subtree)[:6]) for t in path[1:] for c in t.children
            if c.dep_ == "dobj" and not (span.start <= c.i < span.end)) + " " + " ".join(
            # the purpose of the pledge: "NOK 15 billion to help Ukraine ... strengthen its air defences"
            " ".join(x.text for x in list(c.subtree)[:20]) for t in path[1:] for c in t.children
            if c.dep_ in ("advcl", "xcomp") and any(x.dep_ in ("aux", "mark") and x.lower_ in ("to", "so") for x in c.children))
        # the word that modifies the money's own aid noun decides first: "€4bn in military aid" in a
        # sentence about a budget is military
        own = " ".join(c.text for n in _money_nouns(span) + _money_of(span) if lex.aid_nouns.fullmatch(n.text)
                       for c in n.children if c.dep_ in ("amod", "compound"))
        kind = _kind(own, lex) if own else "unspecified"
        if kind == "unspecified":
            kind = _kind(kind_text, lex)
        # a mixed package ("to restore its power grid and strengthen its air defences") is of no one
        # kind, but it still names each of its kinds
        named = (kind,) if kind != "unspecified" else _kinds_named(kind_text, lex)
        if kind == "unspecified" and not named:
            kind = lex.default_kind.get(donor, "unspecified")
        out.append(Pledge(
            evidence=Evidence(sent_index, sent.start_char, sent.end_char, sent.text),
            donor=donor, recipient=recipient, amount=m.amount, currency=m.currency,
            amount_eur=to_eur(m.amount, m.currency, published, fx) if published else None,
            kind=kind, previous_amount=previous, low_amount=m.low, qualifier=m.qualifier,
            money_text=m.text, kinds_named=named))
    return out


def _is_verb(t: Token) -> bool:
    return t.pos_ in ("VERB", "AUX") or t.tag_.startswith("VB")


def _says(words: re.Pattern, t: Token) -> bool:
    """Does the word, as written or as its lemma, with its particle, preposition or complementiser ("top up",
    "call for"),
    match one of the phrases? Word forms come for free: "spend" covers "spent" and "spending"."""
    forms = [t.text, t.lemma_]
    # "topped up", "calls for"; and "called for the assets to be used": the "for" opens the verb's clause
    links = [c for c in t.children if c.dep_ in ("prt", "prep")]
    links += [m for c in t.children if c.dep_ in ("advcl", "ccomp", "xcomp") for m in c.children if m.dep_ == "mark"]
    forms += [f"{f} {c.text}" for c in links for f in (t.text, t.lemma_)]
    return any(words.fullmatch(f) for f in forms)


def _cumulative(path: list[Token], lex: AidLexicon) -> bool:
    """A running total is not a pledge: "bringing the total committed ... to €1.5bn", "total aid rose to
    €X", "has provided €40bn since 2022". A verb on the path that is not a pledge verb and whose subject
    or object is a total word, or any verb that a "since" phrase dates from a starting point."""
    for below, t in zip(path, path[1:]):
        # "Australia's latest package, worth A$95m, brings the total to ...": the subject's amount is new
        if not _is_verb(t) or below.dep_ in SUBJECT_DEPS:
            continue
        for c in t.children:
            # "increase the total of its support to $2bn" revises a pledge; "bringing the total to" sums up
            if c.dep_ in ("dobj", "nsubj", "nsubjpass") and not _says(lex.pledge_verbs, t) and (
                    lex.cumulative.fullmatch(c.lemma_) or any(lex.cumulative.fullmatch(g.lemma_)
                                                               for g in c.children if g.dep_ == "amod")):
                return True
            if c.dep_ == "prep" and lex.cumulative.fullmatch(c.lower_):
                return True
    return False


def _giver_by_preposition(span: Span, path: list[Token], ctx: Context, lex: AidLexicon) -> str | None:
    """The giver named by a preposition, not by the subject: the agent of a passive pledge verb ("was
    approved by all 27 EU leaders"), or "from" after a verb of receiving ("Ukraine secured a $8.1bn loan
    from the IMF", "we received €1.5bn from the European Union"), whose subject is the recipient."""
    for t in path:
        if not _is_verb(t):
            continue
        givers = [g for c in t.children if c.dep_ == "agent" for g in c.children if g.dep_ == "pobj"]
        if _says(lex.receiving_verbs, t):
            givers += [g for x in [t, *_money_nouns(span), *_money_of(span)] for c in x.children
                       if c.dep_ == "prep" and c.lower_ == "from" for g in c.children if g.dep_ == "pobj"]
        for g in givers:
            actor = resolve_subject(g, ctx)
            if actor:
                return actor.group
    return None


def _money_nouns(span: Span) -> list[Token]:
    """The nouns an amount measures, up its noun phrase: "€198m" in "Finland's defence package, worth
    €198m", "$2.2bn" in "a disbursement of $2.2bn", "€50bn" in "the Ukraine Facility, worth €50bn"."""
    nouns, t = [span.root], span.root
    for _ in range(3):
        head = t.head
        if head.i == t.i or head.pos_ in ("VERB", "AUX"):
            break
        if head.pos_ in ("NOUN", "PROPN", "NUM") and head.i not in range(span.start, span.end):
            nouns.append(head)
        elif not (head.lower_ in ("worth", "of", "in", "at") or t.dep_ in ("appos", "npadvmod")):
            break
        t = head
    return nouns


def _money_of(span: Span) -> list[Token]:
    """What an amount is an amount of: "the first €3bn of our €35bn loan", "€500m in military assistance"."""
    return [g for c in span.root.children if c.dep_ == "prep" and c.lower_ in ("of", "in")
            for g in c.children if g.dep_ == "pobj"]


def _owner(span: Span, ctx: Context, lex: AidLexicon) -> str | None:
    """The state or organisation that owns the amount's noun: "Germany's €2.7bn package", "EU aid of
    €18bn", "British military support ... rose to £4.5bn", "the G7's $50bn loan". Not the followed
    state: "Ukraine's $8bn loan" names the one who receives it."""
    for noun in _money_nouns(span):
        for t in noun.children:
            if t.dep_ not in ("poss", "compound", "nmod", "amod") or span.start <= t.i < span.end:
                continue
            ent = ctx.ent_at(t)
            if ent is None or ent.label_ in ("MONEY", "DATE", "CARDINAL", "ORDINAL", "PERCENT"):
                continue
            a = ctx.actor_of_ent(ent)
            if a and a.group != lex.default_recipient:
                return a.group
    return None


ITEM_LABEL = re.compile(r"^[\s•·*▪‣◦\-–—]*(?P<label>[^:–—\n]{2,40}?)\s*(?::|\s[-–—]\s)\s*")


def _item_label(span: Span, ctx: Context) -> str | None:
    """The donor a roundup item is labelled with: "• Finland: €120m for air defence", "Norway - NOK 2bn
    in ammunition". The label is a state or organisation alone before a colon or dash, and the amount
    follows it."""
    sent = span.sent
    m = ITEM_LABEL.match(sent.text)
    if m is None or sent.start_char + m.end() > span.start_char:
        return None
    start, end = sent.start_char + m.start("label"), sent.start_char + m.end("label")
    ents = [e for e in sent.ents if e.start_char >= start and e.end_char <= end]
    if len(ents) != 1 or sent.doc.text[start:end].strip() != ents[0].text.strip():
        return None
    actor = ctx.actor_of_ent(ents[0])
    return actor.group if actor and ctx.resolver.catalog.get(actor.group) is not None else None


def _antecedent_owner(span: Span, ctx: Context) -> str | None:
    """The owner of the noun a relative clause hangs on: "his government's draft budget, which earmarks
    €4bn in military aid", "Norway's fund, which will provide ...": the budget or fund is its owner's."""
    subj = _first_subject(span)
    if subj is None or subj.lower_ not in ("which", "that") or subj.head.dep_ != "relcl":
        return None
    noun = subj.head.head
    for c in [noun, *(c for c in noun.children if c.dep_ in ("poss", "compound", "amod"))]:
        actor = resolve_subject(c, ctx) if c.i != noun.i or c.lemma_.lower() in ctx.lex.group_nouns else None
        if actor:
            return actor.group
    return None


def _paying_body(donor: str, ctx: Context) -> str:
    """An institution pays for the organisation it belongs to: the Commission's (or von der Leyen's)
    money is the European Union's, as the annotation's "who speaks for the EU" rule has it."""
    info = ctx.resolver.catalog.get(donor)
    if info is not None and info.type == "organization" and info.group and ctx.resolver.catalog.get(info.group):
        return info.group
    return donor


QUOTES = "\"“”‘’'«»"


def _first_subject(span: Span) -> Token | None:
    """The subject of the nearest clause above the amount, or None in a verbless sentence."""
    t = span.root
    while True:
        subjects = [c for c in t.children if c.dep_ in SUBJECT_DEPS and not (span.start <= c.i < span.end)]
        if subjects and t.i not in range(span.start, span.end):
            return subjects[0]
        if t.head.i == t.i:
            return None
        t = t.head


def _speaker_donor(span: Span, ctx: Context, issuer: str | None = None) -> str | None:
    """Money in a speaker's own words that names no other giver is the speaker's government's: "This
    A$245m package includes 49 Abrams tanks," Marles said; "This is our fifteenth package: SEK 7.1bn";
    an interview answer "The €3.5bn will be paid out next week"; a quotation going on after the
    sentence that named its speaker ("Ninety billion euros for Ukraine."). The clause must have no
    subject, or the money's own noun phrase, a demonstrative or a first-person word as its subject:
    any other subject ("SAFE will provide ...", "volunteers will receive ...") is someone else."""
    speaker = ctx.quote_speaker or ctx.speaker
    if speaker is None and span.sent.text.lstrip()[:1] in QUOTES:
        speaker = ctx.last_person
    if speaker is None and issuer and _unknown_person_speaks(span.sent, ctx):
        speaker = Actor("", "")
    if speaker is None:
        return None
    # a speaker whose government the catalog does not know, pledging in a national currency: the
    # currency's issuer ("This is our fifteenth package: SEK 7.1 billion," Defence Minister Pal Jonson said)
    group = speaker.group or issuer
    if not group:
        return None
    subj = _first_subject(span)
    if subj is None or subj.lower_ in ctx.lex.first_person or subj.lower_ in ("this", "that", "these", "it") \
            or any(span.start <= t.i < span.end for t in subj.subtree):
        return group
    # "The cabinet is reserving EUR 2bn," the ministry said; "Allies have agreed on 40 billion euros,"
    # Stoltenberg said: a body named by a bare group noun is the speaker's own
    if subj.lemma_.lower() in ctx.lex.group_nouns and not any(
            ctx.ent_at(c) is not None for c in subj.children if c.dep_ in ("compound", "amod", "poss", "nmod", "prep")):
        return group
    return None


def _unknown_person_speaks(sent: Span, ctx: Context) -> bool:
    """Is the sentence quoted from a person the catalog has no government for ('"...," Defence
    Minister Pal Jonson told reporters')?"""
    for t in sent:
        if t.lemma_.lower() in ctx.lex.quote_verbs and t.pos_ in ("VERB", "AUX"):
            subj = next((c for c in t.children if c.dep_ in ("nsubj", "nsubjpass")), None)
            ent = ctx.ent_at(subj) if subj is not None else None
            if ent is not None and ent.label_ == "PERSON" and ctx.actor_of_ent(ent) is None:
                return True
    return False


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
                actor = resolve_subject(subj, ctx)
                if actor:
                    return actor.group
    return None


def _recipient(sent: Span, ctx: Context, donor: str, lex: AidLexicon) -> str | None:
    """The state the money goes to: the followed conflict's state when the sentence names it, else "to/for X",
    else the followed state (`default_recipient`): in a feed about one war, "Estonia will give €100m in
    military aid next year" is aid to the state at war, whether or not the passage names it."""
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
    # none named in the sentence: the followed state
    return lex.default_recipient


def dedupe_pledges(pledges: Sequence[Pledge]) -> list[Pledge]:
    seen, out = set(), []
    for p in pledges:
        key = (p.donor, p.recipient, round(p.amount, 2), p.currency)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
