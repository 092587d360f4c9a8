"""Syndicated copies: near-identical texts at different URLs are one story.

Each article's text becomes a set of hashed word 5-gram shingles; a new article
joins the story of the stored article it overlaps most, when the overlap
(containment: shared shingles over the smaller set, so a trimmed copy still
matches) reaches the threshold. Otherwise it starts a story of its own, whose id
is its URL.

The candidates come from the warehouse: each stored article keeps a `sketch` of its shingles
(those whose hash is a multiple of SKETCH_EVERY; all of them for a short text), and the
stored articles sharing the most sketched shingles with a new one are the ones compared
(the SKETCH_CANDIDATES best per new article, as `assign_stories` looks at its 20 best hits).
A copy that reaches the threshold shares at least 80 % of the smaller text's shingles; with
both texts past SKETCH_ALL shingles that is 51 or more, each kept with probability 1/4, so
the copy goes unseen with probability below 1e-6. So extraction reads a bounded number of
stored texts per batch, whatever the size of the warehouse.
"""
from __future__ import annotations

import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, MutableSequence, Sequence
from typing import Any

__all__ = ["shingles", "containment", "assign_stories", "sketch", "SKETCH_CANDIDATES"]

_WORD = re.compile(r"\w+")
SHINGLE = 5
SKETCH_EVERY = 4
SKETCH_ALL = 64
SKETCH_CANDIDATES = 20


def shingles(text: str, size: int = SHINGLE) -> set[int]:
    words = _WORD.findall(text.casefold())
    if len(words) < size:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i:i + size]).encode()) for i in range(len(words) - size + 1)}


def sketch(sh: set[int]) -> list[int]:
    """The shingles a stored article keeps for finding its copies (sorted)."""
    if len(sh) < SKETCH_ALL:
        return sorted(sh)
    return sorted(h for h in sh if h % SKETCH_EVERY == 0)


def containment(a: set[int], b: set[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def assign_stories(new: MutableSequence[dict[str, Any]], stored: Iterable[dict[str, Any]], threshold: float,
                   new_shingles: Sequence[set[int]] | None = None) -> None:
    """Set `story_id` on each new article row (dicts with url, text); `stored` rows carry their story_id.
    `new_shingles`: the new rows' shingles, if the caller has them already.

    A stored text's shingles count only where a new article has them, so only those are indexed
    (with the size of its set): a batch's candidates (up to SKETCH_CANDIDATES per new article) are
    read without keeping their ~600 shingles each (~100 MB for a batch of 50 among 1,000 candidates).
    """
    new_sh = list(new_shingles) if new_shingles is not None else [shingles(row["text"]) for row in new]
    wanted: set[int] = set().union(*new_sh)
    index: dict[int, list[int]] = defaultdict(list)
    pool: list[tuple[str, int]] = []   # (story id, number of shingles)

    def add(story_id: str, sh: set[int]) -> None:
        pool.append((story_id, len(sh)))
        for h in sh:
            if h in wanted:
                index[h].append(len(pool) - 1)

    for row in stored:
        add(row.get("story_id") or row["url"], shingles(row["text"] or ""))
    for row, sh in zip(new, new_sh):
        hits = Counter(i for h in sh for i in index.get(h, ()))
        best, best_score = None, 0.0
        for i, shared in hits.most_common(20):
            score = shared / max(1, min(len(sh), pool[i][1]))
            if score > best_score:
                best, best_score = i, score
        row["story_id"] = pool[best][0] if best is not None and best_score >= threshold else row["url"]
        add(row["story_id"], sh)
