"""Mining stage: parsed articles -> mentions, aid pledges, stated positions, meetings.

Every claim keeps its evidence: the sentence, its character offsets in the article text,
and the extractor version. The rules are general linguistic ones over spaCy's dependency
parse; the words they consult are data (`config/lang/en/`, `config/topics.yaml`,
`config/aid.yaml`). The modules, in the one direction they import each other:

- `records`: what is found (Mention, Pledge, Position, Meeting) and the values passed around;
- `lexicon`: the words of one language, loaded once into a frozen `Lexicon`;
- `discourse`: what sentences know of each other (last person, interview speaker, quotes);
- `actors`: who states a claim, on the parse;
- `stance`: what the path from cue to actor says (support, oppose, conditional, undecided);
- `positions`, `pledges`, `meetings`: the three kinds of claims.

Questions, hypotheticals ("If ...", "Whether ...") and interviewers' questions yield
nothing; neither do sentences whose only subjects are analysts or critics.

`rules_version()` is a digest of this package's code and of the code it calls, so that a
changed rule changes the stored extractor version and the next run re-mines.
"""
from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

from spacy.tokens import Doc

from tasks.claims.actors import quote_speaker
from tasks.claims.discourse import Context, in_quotation, paragraph_starts, speaker_labels
from tasks.claims.lexicon import LEXICON_FILES, Lexicon, load_lexicon
from tasks.claims.meetings import meetings_in
from tasks.claims.pledges import AidLexicon, dedupe_pledges, load_aid_lexicon, pledges_in
from tasks.claims.positions import dedupe_positions, positions_in
from tasks.claims.records import (NOT_AN_ACTOR, Actor, Evidence, Meeting, Mention, MinedArticle, Pledge, Position,
                                  claim_id)
from tasks.money import FxTable
from tasks.nlp import EntityCatalog, MentionResolver, iter_mentions
from tasks.topics import TopicBook

__all__ = ["AidLexicon", "load_aid_lexicon", "Lexicon", "load_lexicon", "LEXICON_FILES", "Mention", "Evidence",
           "Pledge", "Position", "Meeting", "MinedArticle", "claim_id", "mine_doc", "rules_version", "RULE_MODULES"]

_TASKS = Path(__file__).resolve().parents[1]
#: The code whose behaviour decides what is mined: every module of this package, the
#: pipeline (entity ruler, money component), the money parser and the topic matcher.
RULE_MODULES = (*sorted(Path(__file__).resolve().parent.glob("*.py")), _TASKS / "nlp.py", _TASKS / "money.py",
                _TASKS / "topics.py", _TASKS / "mine.py")


def rules_version(modules=RULE_MODULES) -> str:
    """A digest of the rules' code: any edit to it changes the extractor version."""
    digest = hashlib.sha256()
    for path in modules:
        digest.update(Path(path).name.encode() + b"\0")
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def _upcoming_speaker(sents, i: int, pstarts: list[int], para: int, ctx: Context) -> Actor | None:
    """The speaker named later in the same quotation: the sentences after sents[i] that are still
    inside it (same paragraph, the quotation still open where they start)."""
    text = sents[i].doc.text
    end = pstarts[para + 1] if para + 1 < len(pstarts) else len(text)
    for nxt in sents[i + 1:]:
        if nxt.start_char >= end or not in_quotation(text, pstarts[para], nxt.start_char, nxt.end_char):
            return None
        speaker = quote_speaker(nxt, ctx)
        if speaker is not None:
            return speaker
    return None


def mine_doc(doc: Doc, url: str, published: dt.datetime | None, *, catalog: EntityCatalog, topics: TopicBook,
             aid: AidLexicon, fx: FxTable, lexicon: Lexicon) -> MinedArticle:
    """Everything newsmon finds in one parsed article."""
    resolver = MentionResolver(catalog, doc, lexicon.portfolio_titles)
    ctx = Context(doc, resolver, lexicon)
    day = published.date() if published else None
    money = doc._.money or []
    mentions = [Mention(sentence_index=-1, start_char=ent.start_char, end_char=ent.end_char, surface=ent.text,
                        entity=info.name, entity_type=info.type, wikidata_id=info.wikidata,
                        actor_group=resolver.group(info)) for ent, info in iter_mentions(doc, resolver)]
    pstarts = paragraph_starts(doc.text)
    sents = list(doc.sents)
    pledges, positions, meetings = [], [], []
    labels = speaker_labels(doc, pstarts, resolver)
    para = -1
    for i, sent in enumerate(sents):
        # a new paragraph: interview labels set the speaker or mark a question
        p = bisect.bisect_right(pstarts, sent.start_char) - 1
        if p != para:
            para = p
            label = labels.get(p)
            ctx.speaker = label if isinstance(label, Actor) else None
            ctx.skip_paragraph = label is NOT_AN_ACTOR
            ctx.quote_speaker = None
        # a quotation that runs on past the sentence naming its speaker is still theirs
        ctx.in_quote = in_quotation(doc.text, pstarts[p], sent.start_char, sent.end_char)
        ctx.quote_speaker = quote_speaker(sent, ctx) or (ctx.quote_speaker if ctx.in_quote else None)
        if ctx.in_quote and ctx.quote_speaker is None:
            # a quotation that opens the paragraph is attributed after it ('"A ceasefire that freezes the
            # front line is not peace. ... we will not agree to it," Kuleba said.'): its speaker
            ctx.quote_speaker = _upcoming_speaker(sents, i, pstarts, p, ctx)
        stripped = sent.text.strip()
        question = stripped.endswith("?") or lexicon.hypothetical_start.match(stripped) is not None
        if not ctx.skip_paragraph and not question:
            pledges.extend(pledges_in(sent, i, ctx, aid, fx, day, money))
            positions.extend(positions_in(sent, i, ctx, topics))
            meetings.extend(meetings_in(sent, i, ctx, day))
        ctx.remember(sent)
    # positions implied by pledges (a military pledge states support for military aid)
    for pl in pledges:
        for topic in topics.topics.values():
            if topic.implied_when_cued and not any(
                    c.topic == topic.id and not c.counter for c in topics.cues_in(pl.evidence.text)):
                continue   # "a loan repaid from the profits on immobilised Russian assets"
            kinds = {pl.kind, *pl.kinds_named}   # a mixed package with arms in it is a military pledge too
            if kinds & set(topic.implied_kinds) and (not topic.implied_donors or pl.donor in topic.implied_donors):
                positions.append(Position(evidence=pl.evidence, actor=pl.donor, actor_group=pl.donor, topic=topic.id,
                                          stance="support", cue=pl.money_text))
    starts = [s.start_char for s in sents]
    mentions = [dataclasses.replace(m, sentence_index=max(0, bisect.bisect_right(starts, m.start_char) - 1))
                for m in mentions]
    return MinedArticle(url=url, sentences=len(sents), mentions=tuple(mentions), pledges=tuple(dedupe_pledges(pledges)),
                        positions=tuple(dedupe_positions(positions)), meetings=tuple(meetings))
