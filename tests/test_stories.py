"""Syndicated copies: story sketches in the warehouse find the stored copy without reading every stored text."""
from __future__ import annotations

import datetime as dt
import random

from flows.stages import sketch_stored_articles
from tasks.stories import SKETCH_ALL, SKETCH_EVERY, assign_stories, shingles, sketch
from warehouse import queries as q

NOW = dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)


def text(seed: int, words: int = 400) -> str:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    return " ".join(rng.choice(vocab) for _ in range(words))


def article(url: str, body: str) -> dict:
    return dict(url=f"https://news.example/{url}", text=body, text_sha256=url, extractor_version="extract-1",
                extracted_at=NOW, published_at=NOW)


def store(wh, rows: list[dict], sketched: bool = True) -> None:
    with wh.transaction() as con:
        q.save_articles(con, rows)
        if sketched:
            q.save_story_sketches(con, [dict(url=r["url"], hashes=sketch(shingles(r["text"]))) for r in rows])


def find_story(wh, new: dict) -> str:
    sh = shingles(new["text"])
    with wh.connect(read_only=True) as con:
        others = q.story_candidates(con, [(0, h) for h in sh], [new["url"]], 20)
    rows = [dict(new)]
    assign_stories(rows, others, 0.8)
    return rows[0]["story_id"]


def test_stories_sketch_keeps_a_quarter_of_a_long_text_and_all_of_a_short_one():
    long_sh, short_sh = shingles(text(1)), shingles("Germany pledged more air defence to Ukraine on Monday.")
    assert len(short_sh) < SKETCH_ALL and sketch(short_sh) == sorted(short_sh)
    kept = sketch(long_sh)
    assert all(h % SKETCH_EVERY == 0 for h in kept) and set(kept) <= long_sh
    assert 0.15 < len(kept) / len(long_sh) < 0.35


def test_stories_trimmed_copy_joins_the_stored_original_among_many(warehouse):
    original = article("orig", text(7))
    store(warehouse, [article(f"other{i}", text(100 + i)) for i in range(40)] + [original])
    words = original["text"].split()
    copy = article("copy", " ".join(words[20:-30]))   # a syndicated copy, trimmed at both ends
    assert find_story(warehouse, copy) == original["url"]
    assert find_story(warehouse, article("fresh", text(999))) == "https://news.example/fresh"


def test_stories_candidates_are_bounded_per_new_article(warehouse):
    common = text(5, 60)   # every stored text shares a passage: all of them share sketched shingles
    store(warehouse, [article(f"a{i}", common + " " + text(200 + i)) for i in range(60)])
    sh = shingles(common + " " + text(9999))
    with warehouse.connect(read_only=True) as con:
        others = q.story_candidates(con, [(0, h) for h in sh], [], 20)
    assert len(others) == 20


def test_stories_articles_stored_before_sketches_are_sketched_then_found(warehouse):
    original = article("orig", text(11))
    store(warehouse, [original, article("other", text(12))], sketched=False)
    assert sketch_stored_articles(warehouse) == 2
    assert sketch_stored_articles(warehouse) == 0
    copy = article("copy", " ".join(original["text"].split()[:-40]))
    assert find_story(warehouse, copy) == original["url"]


def _assign_stories_by_every_shingle(new: list[dict], stored: list[dict], threshold: float) -> None:
    """The rule as first written: every stored text's whole shingle set in the index (the reference)."""
    from collections import Counter, defaultdict

    index, pool = defaultdict(list), []

    def add(story_id, sh):
        pool.append((story_id, sh))
        for h in sh:
            index[h].append(len(pool) - 1)

    for row in stored:
        add(row.get("story_id") or row["url"], shingles(row["text"] or ""))
    for row in new:
        sh = shingles(row["text"])
        hits = Counter(i for h in sh for i in index.get(h, ()))
        best, best_score = None, 0.0
        for i, shared in hits.most_common(20):
            score = shared / max(1, min(len(sh), len(pool[i][1])))
            if score > best_score:
                best, best_score = i, score
        row["story_id"] = pool[best][0] if best is not None and best_score >= threshold else row["url"]
        add(row["story_id"], sh)


def test_stories_indexing_only_the_new_articles_shingles_assigns_the_same_stories():
    """Stored candidates are indexed only on the shingles the new batch has (with their set's size):
    the same story for every article as indexing every shingle, on batches with stored originals,
    trimmed and extended copies, copies of each other inside the batch, and near misses."""
    rng = random.Random(7)
    joined = apart = 0
    for trial in range(30):
        bodies = [text(1000 * trial + k, rng.choice([40, 120, 400])) for k in range(6)]
        stored = [dict(url=f"s{k}", text=b, story_id=f"story{k % 4}") for k, b in enumerate(bodies)]
        stored.append(dict(url="empty", text="", story_id=None))
        new = []
        for k in range(12):
            words = rng.choice(bodies + [text(5000 + 100 * trial + k, 200)]).split()
            cut = rng.randint(0, len(words) // 3)
            kind = rng.random()
            if kind < 0.3:
                words = words[cut:]                               # trimmed copy
            elif kind < 0.5:
                words = words + text(9000 + k, 60).split()        # extended copy
            elif kind < 0.7:
                words = words[: len(words) // 2] + text(7000 + k, len(words) // 2).split()   # near miss
            new.append(dict(url=f"n{k}", text=" ".join(words)))
        new.append(dict(url="n-copy", text=new[0]["text"]))      # a copy of the batch's first article
        reference, ours = [dict(r) for r in new], [dict(r) for r in new]
        _assign_stories_by_every_shingle(reference, stored, 0.8)
        assign_stories(ours, stored, 0.8)
        assert [r["story_id"] for r in ours] == [r["story_id"] for r in reference]
        assert ours[-1]["story_id"] == ours[0]["story_id"]
        joined += sum(r["story_id"].startswith("story") for r in ours)
        apart += sum(r["story_id"] == r["url"] for r in ours)
    assert joined > 100 and apart > 50   # both outcomes, many times
