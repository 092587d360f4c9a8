"""Feed shards: which worker polls which feed, by a stable hash of the feed URL.

`newsmon ingest --shard 2/3` on three workers splits the configured feeds into three
disjoint sets that together cover every feed, the same on every machine and every run
(SHA-256 of the URL, not Python's salted hash), so no feed is polled twice.
"""
from __future__ import annotations

import hashlib
import re

from newsmon.errors import ConfigError

__all__ = ["parse_shard", "in_shard"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """"i/n" (1 <= i <= n) as (i, n); ConfigError saying how to write it otherwise."""
    m = _SHARD.match(text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"shard {text!r}: write it as i/n with 1 <= i <= n, e.g. 1/2 for the first of two workers")
    return int(m.group(1)), int(m.group(2))


def in_shard(url: str, index: int, count: int) -> bool:
    """Whether the feed at `url` belongs to shard `index` (1-based) of `count`."""
    digest = hashlib.sha256(url.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1
