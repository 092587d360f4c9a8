"""Mining a batch of articles: spaCy over all texts at once (`nlp.pipe`), then the claim rules.

`Miner` holds the loaded pipeline and domain files of one run; its `version` joins the
extractor version with a digest of the domain files, so that editing an alias or a cue
makes the next run re-mine what was mined under the old files.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from newsmon.settings import NlpSettings
from tasks.claims import EXTRACTOR_VERSION, AidLexicon, MinedArticle, claim_id, load_aid_lexicon, mine_doc
from tasks.money import FxTable, load_fx_table, load_money_lexicon
from tasks.nlp import NLP_VERSION, EntityCatalog, build_pipeline, load_catalog
from tasks.topics import TopicBook, load_topics

__all__ = ["Miner", "claim_rows"]

MINED_LANGUAGES = ("en",)


@dataclasses.dataclass
class Miner:
    catalog: EntityCatalog
    topics: TopicBook
    aid: AidLexicon
    fx: FxTable
    nlp: Any
    version: str
    batch_size: int = 64

    @classmethod
    def from_settings(cls, s: NlpSettings) -> Miner:
        digest = hashlib.sha256()
        for path in (s.entities, s.topics, s.aid, s.money, s.fx):
            digest.update(path.read_bytes())
        catalog = load_catalog(s.entities)
        lexicon = load_money_lexicon(s.money)
        return cls(catalog=catalog, topics=load_topics(s.topics), aid=load_aid_lexicon(s.aid), fx=load_fx_table(s.fx),
                   nlp=build_pipeline(catalog, lexicon), batch_size=s.batch_size,
                   version=f"{EXTRACTOR_VERSION}+{NLP_VERSION}+{digest.hexdigest()[:10]}")

    def mine(self, articles: list[dict[str, Any]]) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        """Rows for the claim tables and for mined_articles, for articles (url, published_at, language, text)."""
        now = dt.datetime.now(dt.timezone.utc)
        todo = [a for a in articles if (a.get("language") or "en") in MINED_LANGUAGES]
        results: list[MinedArticle] = []
        for a, doc in zip(todo, self.nlp.pipe((a["text"] for a in todo), batch_size=self.batch_size)):
            results.append(mine_doc(doc, a["url"], a["published_at"], catalog=self.catalog, topics=self.topics,
                                    aid=self.aid, fx=self.fx))
        rows = claim_rows(results, self.version)
        by_url = {r.url: r.sentences for r in results}
        mined = [dict(url=a["url"], extractor_version=self.version, sentences=by_url.get(a["url"], 0), mined_at=now)
                 for a in articles]
        return rows, mined


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


def read_passages(lines) -> list[dict[str, Any]]:
    import json
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        rec = json.loads(line)
        pub = rec.get("published_at")
        out.append(dict(url=str(rec["id"]), text=rec["text"], language="en",
                        published_at=dt.datetime.fromisoformat(pub.replace("Z", "+00:00")) if pub else None))
    return out


def passage_claims(miner: Miner, passages):
    rows, _ = miner.mine(passages)
    for r in rows["position_claims"]:
        yield dict(id=r["url"], type="position", actor=r["actor"], actor_group=r["actor_group"], topic=r["topic"],
                   stance=r["stance"], evidence=r["evidence"], start_char=r["start_char"], end_char=r["end_char"])
    for r in rows["pledge_claims"]:
        yield dict(id=r["url"], type="aid", donor=r["donor"], recipient=r["recipient"], amount=r["amount"],
                   currency=r["currency"], kind=r["kind"], previous_amount=r["previous_amount"],
                   evidence=r["evidence"], start_char=r["start_char"], end_char=r["end_char"])
