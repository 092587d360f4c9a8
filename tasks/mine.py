"""Mining a batch of articles: spaCy over all texts at once (`nlp.pipe`), then the claim rules.

`Miner` holds the loaded pipeline, the domain files and the lexicon of one run. Its
`version` is honest: it joins a digest of the rules' code (`tasks.claims.rules_version`),
the spaCy model's name and version and a digest of every domain file the rules read, so
that an upgrade of newsmon, an edited rule, alias or cue makes the next run re-mine what was
mined under the old ones.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from newsmon.errors import ConfigError
from newsmon.settings import NlpSettings
from tasks.claims import (LEXICON_FILES, AidLexicon, Lexicon, MinedArticle, claim_id, load_aid_lexicon, load_lexicon,
                          mine_doc, rules_version)
from tasks.money import FxTable, load_fx_table, load_money_lexicon
from tasks.nlp import EntityCatalog, build_pipeline, load_catalog
from tasks.topics import TopicBook, load_topics

__all__ = ["Miner", "claim_rows", "read_passages", "passage_claims", "domain_files"]

MINED_LANGUAGES = ("en",)


def domain_files(s: NlpSettings) -> list:
    """Every data file the rules read: a change to any of them changes the miner's version."""
    return [s.entities, s.topics, s.aid, s.money, s.fx, *(s.lang / name for name in LEXICON_FILES)]


@dataclasses.dataclass
class Miner:
    catalog: EntityCatalog
    topics: TopicBook
    aid: AidLexicon
    fx: FxTable
    lexicon: Lexicon
    nlp: Any
    version: str
    batch_size: int = 64
    max_chars: int = 200_000

    @classmethod
    def from_settings(cls, s: NlpSettings) -> Miner:
        catalog = load_catalog(s.entities)
        money = load_money_lexicon(s.money)
        nlp = build_pipeline(catalog, money)
        return cls(catalog=catalog, topics=load_topics(s.topics), aid=load_aid_lexicon(s.aid), fx=load_fx_table(s.fx),
                   lexicon=load_lexicon(s.lang), nlp=nlp, batch_size=s.batch_size, max_chars=s.max_chars,
                   version=miner_version(s, f"{nlp.meta.get('name')}-{nlp.meta.get('version')}"))

    def mine(self, articles: list[dict[str, Any]]) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        """Rows for the claim tables and for mined_articles, for articles (url, published_at, language, text).

        A text longer than `max_chars` is mined up to the last paragraph break before the cap:
        spaCy's time and memory grow with the text (900 K characters took 408 s and 2.7 GB, and
        1 M raises E088 and stopped every later run). No news article is that long; the whole
        text stays stored in `articles`.
        """
        now = dt.datetime.now(dt.timezone.utc)
        todo = [a for a in articles if (a.get("language") or "en") in MINED_LANGUAGES]
        cut = {a["url"]: self.cut_point(a["text"] or "") for a in todo}
        texts = ((a["text"] or "")[:cut[a["url"]]] for a in todo)
        results: list[MinedArticle] = []
        for a, doc in zip(todo, self.nlp.pipe(texts, batch_size=self.batch_size)):
            results.append(mine_doc(doc, a["url"], a["published_at"], catalog=self.catalog, topics=self.topics,
                                    aid=self.aid, fx=self.fx, lexicon=self.lexicon))
        rows = claim_rows(results, self.version)
        by_url = {r.url: r.sentences for r in results}
        mined = [dict(url=a["url"], extractor_version=self.version, sentences=by_url.get(a["url"], 0), mined_at=now)
                 for a in articles]
        return rows, mined

    def cut_point(self, text: str) -> int:
        if len(text) <= self.max_chars:
            return len(text)
        para = text.rfind("\n", 0, self.max_chars)
        return para if para > self.max_chars // 2 else self.max_chars


def miner_version(s: NlpSettings, model: str) -> str:
    digest = hashlib.sha256()
    for path in domain_files(s):
        digest.update(path.read_bytes())
    return f"claims-{rules_version()}+{model}+{digest.hexdigest()[:10]}"


def claim_rows(results: list[MinedArticle], version: str) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {"mentions": [], "pledge_claims": [], "position_claims": [],
                                             "meeting_claims": []}
    for r in results:
        for m in r.mentions:
            rows["mentions"].append(dict(url=r.url, sentence_index=m.sentence_index, start_char=m.start_char,
                                         end_char=m.end_char, surface=m.surface, entity=m.entity,
                                         entity_type=m.entity_type, wikidata_id=m.wikidata_id,
                                         actor_group=m.actor_group, extractor_version=version))
        for p in r.pledges:
            e = p.evidence
            rows["pledge_claims"].append(dict(
                claim_id=claim_id(r.url, "pledge", e.sentence_index, p.donor, p.recipient, p.amount, p.currency),
                url=r.url, sentence_index=e.sentence_index, start_char=e.start_char, end_char=e.end_char,
                evidence=e.text, donor=p.donor, recipient=p.recipient, amount=p.amount, currency=p.currency,
                amount_eur=p.amount_eur, low_amount=p.low_amount, qualifier=p.qualifier, kind=p.kind,
                previous_amount=p.previous_amount, money_text=p.money_text, extractor_version=version))
        for p in r.positions:
            e = p.evidence
            rows["position_claims"].append(dict(
                claim_id=claim_id(r.url, "position", e.sentence_index, p.actor_group, p.topic, p.stance),
                url=r.url, sentence_index=e.sentence_index, start_char=e.start_char, end_char=e.end_char,
                evidence=e.text, actor=p.actor, actor_group=p.actor_group, topic=p.topic, stance=p.stance,
                cue=p.cue, extractor_version=version))
        for m in r.meetings:
            e = m.evidence
            rows["meeting_claims"].append(dict(
                claim_id=claim_id(r.url, "meeting", e.sentence_index, m.event_type, *m.participants),
                url=r.url, sentence_index=e.sentence_index, start_char=e.start_char, end_char=e.end_char,
                evidence=e.text, event_type=m.event_type, participants=list(m.participants), people=list(m.people),
                location=m.location, event_date=m.event_date, extractor_version=version))
    return rows


# -- passages (`newsmon mine`) -------------------------------------------------------
CLAIM_FIELDS = ("id", "type", "actor", "actor_group", "topic", "stance", "donor", "recipient", "amount", "currency",
                "kind", "previous_amount", "evidence", "start_char", "end_char")


def read_passages(lines: Iterable[str], source: str = "<stdin>") -> Iterator[dict[str, Any]]:
    """Passages from JSON lines {"id", "text", "published_at"?}. A bad line is a ConfigError naming it."""
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{n}: not a JSON object ({exc.msg}); write one "
                              '{"id": ..., "text": ...} per line') from None
        if not isinstance(rec, dict) or "text" not in rec or not isinstance(rec["text"], str):
            raise ConfigError(f'{source}:{n}: a passage needs "text" (a string) and an "id"')
        pub = rec.get("published_at")
        when = None
        if pub:
            try:
                when = dt.datetime.fromisoformat(str(pub).replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"{source}:{n}: published_at {pub!r} is not an ISO date or time") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
        yield dict(url=str(rec.get("id", n)), text=rec["text"], language="en", published_at=when)


def passage_claims(miner: Miner, passages: Iterable[dict[str, Any]], batch: int = 256) -> Iterator[dict[str, Any]]:
    """The claims of each passage as CONTRACT.md's `newsmon mine` records, in input order, batch by batch."""
    chunk: list[dict[str, Any]] = []
    for p in passages:
        chunk.append(p)
        if len(chunk) >= batch:
            yield from _claims_of(miner, chunk)
            chunk = []
    if chunk:
        yield from _claims_of(miner, chunk)


def _claims_of(miner: Miner, passages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    rows, _ = miner.mine(passages)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows["position_claims"]:
        out.setdefault(r["url"], []).append(dict(type="position", actor=r["actor"], actor_group=r["actor_group"],
                                                 topic=r["topic"], stance=r["stance"], **_evidence(r)))
    for r in rows["pledge_claims"]:
        out.setdefault(r["url"], []).append(dict(type="aid", donor=r["donor"], recipient=r["recipient"],
                                                 amount=r["amount"], currency=r["currency"], kind=r["kind"],
                                                 previous_amount=r["previous_amount"], **_evidence(r)))
    for r in rows["meeting_claims"]:
        out.setdefault(r["url"], []).append(dict(type="meeting", actor=None, actor_group=", ".join(r["participants"]),
                                                 **_evidence(r)))
    for p in passages:
        for claim in out.get(p["url"], []):
            yield {f: (p["url"] if f == "id" else claim.get(f)) for f in CLAIM_FIELDS}


def _evidence(r: dict[str, Any]) -> dict[str, Any]:
    return dict(evidence=r["evidence"].strip(), start_char=r["start_char"], end_char=r["end_char"])
