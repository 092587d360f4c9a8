"""Feed stage: poll one feed with a conditional GET and parse its entries.

`poll_feed` asks with the stored validators (ETag / Last-Modified) and returns a
`FeedPoll`: not modified, unchanged (same body hash: for servers whose validators
lie), parsed entries, or a failure with its reason. It never raises for a bad feed;
the flow stores the poll (validators and entries in one transaction).

`parse_feed` is the pure part: DOCTYPE stripped first (entity-expansion bombs
live in the internal subset), size capped by the caller, entries of a bozo feed
kept when feedparser recovers them, links resolved against the feed URL, fields
truncated to sane lengths.
"""
from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import hashlib
import re
import urllib.parse
import urllib.request
from pathlib import Path

import feedparser

from newsmon.errors import FetchError, RefusedFetchError
from newsmon.settings import FeedSettings
from tasks.fetch import FEED_TYPES, Fetcher

__all__ = ["FeedEntry", "FeedPoll", "FeedState", "cap_entries", "local_root", "parse_feed", "poll_feed",
           "strip_doctype"]

MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_CONTENT = 500_000
# A DOCTYPE is only one in the prolog: after text, the XML declaration, PIs and comments,
# before the root element. Anchoring there keeps a "<!DOCTYPE" inside CDATA or text intact;
# quoted strings and comments inside the internal subset may hold "]" and ">".
# Linear on any input: every repeat is possessive, and no two alternatives can start on the
# same character, so a failed alternative is never retried one character further on. (The
# subset's plain characters used to include "<": after an unterminated "<!--.*?-->" failed,
# "<" was taken as a plain character and the next "<!--" was searched to the end again;
# "<!DOCTYPE rss [" + 64 KB of "<!--" took 6 s, 5 MB would take hours.)
_PI = r"<\?(?:[^?]++|\?(?!>))*+\?>"
_COMMENT = r"<!--(?:[^-]++|-(?!->))*+-->"
_PROLOG = r"(?:[^<]++|" + _PI + "|" + _COMMENT + r")*+"
_SUBSET = r"\[(?:[^\]\"'<]++|\"[^\"]*+\"|'[^']*+'|" + _COMMENT + r"|<(?!!--))*+\]"
_DOCTYPE_AT_START = _PROLOG + r"(<!DOCTYPE(?:\"[^\"]*+\"|'[^']*+'|" + _SUBSET + r"|[^\[>\"']++)*+>)"
_DOCTYPE_TEXT = re.compile(_DOCTYPE_AT_START, re.DOTALL | re.IGNORECASE)
_DOCTYPE_BYTES = re.compile(_DOCTYPE_AT_START.encode(), re.DOTALL | re.IGNORECASE)
# An entry's start and end tag, RSS <item>, Atom <entry>, with or without a namespace prefix
# (not <items> of RSS 1.0).
_ENTRY_START = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?=[\s/>])")
_ENTRY_END = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")


@dataclasses.dataclass(frozen=True)
class FeedEntry:
    url: str
    entry_id: str | None
    title: str | None
    author: str | None
    published_at: dt.datetime | None
    summary: str | None
    content: str | None


@dataclasses.dataclass(frozen=True)
class FeedState:
    """What the warehouse remembers of a feed between polls."""
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class FeedPoll:
    feed: str
    outcome: str                      # ok | not_modified | unchanged_body | failed
    status: int | None = None
    entries: tuple[FeedEntry, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()   # (entry key, reason) for entries that could not be kept
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    bozo: str | None = None
    error: str | None = None
    reason: str | None = None
    unreachable: bool = False         # failed because the host could not be reached (DNS, refused, connect timeout)
    polled_at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


def _codec(data: bytes) -> str | None:
    """The UTF-16/32 codec of a document with a BOM or tell-tale NULs, else None (ASCII-compatible)."""
    boms = [(b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
            (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le")]
    for bom, codec in boms:
        if data.startswith(bom):
            return codec
    head = data[:4]
    if head == b"\x00\x00\x00<":
        return "utf-32-be"
    if head == b"<\x00\x00\x00":
        return "utf-32-le"
    if head[:2] == b"\x00<":
        return "utf-16-be"
    if head[:2] == b"<\x00":
        return "utf-16-le"
    return None


def strip_doctype(data: bytes) -> bytes:
    """Remove the prolog's DOCTYPE declaration (and its internal subset) in any encoding."""
    codec = _codec(data)
    if codec is None:
        m = _DOCTYPE_BYTES.match(data)
        return data[:m.start(1)] + data[m.end(1):] if m else data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return data
    m = _DOCTYPE_TEXT.match(text)
    return (text[:m.start(1)] + text[m.end(1):]).encode(codec) if m else data


def cap_entries(data: bytes, max_entries: int) -> tuple[bytes, int]:
    """The document with only its first `max_entries` entries, and how many were cut.

    Cut before feedparser sees the document: it takes about half a millisecond per entry
    (200,000 entries in a 5 MB feed held a run for over 20 minutes). The entries past the cap
    are spliced out between the start of the first one dropped and the end of the last one, so
    the channel's closing tags stay and the document remains well-formed.
    """
    codec = _codec(data)
    try:
        text = data.decode(codec or "latin-1")  # latin-1: one byte, one character
    except UnicodeDecodeError:
        return data, 0
    starts = [m.start() for m in _ENTRY_START.finditer(text)]
    if len(starts) <= max_entries:
        return data, 0
    ends = [m.end() for m in _ENTRY_END.finditer(text, starts[-1])]
    cut_from, cut_to = starts[max_entries], (ends[0] if ends else len(text))
    text = text[:cut_from] + text[cut_to:]
    return text.encode(codec or "latin-1"), len(starts) - max_entries


def local_root(feed_url: str, config_dir: Path | None) -> Path | bool:
    """What `Fetcher.get(allow_file=...)` gets for the pages of a feed: False for a feed that
    came over the network, else the folder a local feed's pages must lie in (by real path, so
    a symlink cannot lead out): the config's folder when the feed file is inside it (the
    bundled sample keeps its pages beside feeds/), else the feed file's own folder."""
    if not feed_url.startswith("file:"):
        return False
    feed_dir = Path(urllib.request.url2pathname(urllib.parse.urlsplit(feed_url).path)).resolve().parent
    if config_dir is not None:
        config_dir = Path(config_dir).resolve()
        if feed_dir.is_relative_to(config_dir):
            return config_dir
    return feed_dir


def _when(entry) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # not entry.get: feedparser maps a missing updated_parsed, with a warning
        if value:
            try:
                return dt.datetime.fromtimestamp(calendar.timegm(value), dt.timezone.utc)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _cut(value, limit: int) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value[:limit] or None


def _link(entry, base: str) -> str | None:
    candidates = [entry.get("link")]
    for link in entry.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            candidates.append(link["href"])
    guid = entry.get("id")
    if guid and (entry.get("guidislink") or re.match(r"^https?://", str(guid))):
        candidates.append(guid)
    for cand in candidates:
        if cand and isinstance(cand, str):
            url = urllib.parse.urljoin(base, cand.strip())
            if urllib.parse.urlsplit(url).scheme in ("http", "https", "file"):
                return urllib.parse.urldefrag(url)[0]
    return None


def parse_feed(content: bytes, feed_url: str, content_type: str | None = None, max_entries: int | None = None
               ) -> tuple[list[FeedEntry], list[tuple[str, str]], str | None]:
    """Entries of a feed document, the entries rejected (key, reason), and feedparser's bozo complaint.

    With `max_entries`, entries past it are not parsed; they are one rejection that says so."""
    rejected: list[tuple[str, str]] = []
    if max_entries is not None:
        content, cut = cap_entries(content, max_entries)
        if cut:
            rejected.append((f"entries after #{max_entries}",
                             f"the feed lists {max_entries + cut} entries; {cut} past the first {max_entries} "
                             "were not read (fetch.max_feed_entries)"))
    # feedparser resolves relative links (and xml:base) against content-location, but mangles
    # file:/// bases; links of a local feed are resolved below, against the feed's own URL.
    headers = {} if feed_url.startswith("file:") else {"content-location": feed_url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(strip_doctype(content), response_headers=headers, sanitize_html=True,
                              resolve_relative_uris=True)
    bozo = None
    if parsed.get("bozo"):
        bozo = f"{type(parsed.get('bozo_exception')).__name__}: {parsed.get('bozo_exception')}"[:500]
    entries, seen = [], set()
    for i, e in enumerate(parsed.entries[:max_entries]):
        url = _link(e, feed_url)
        if url is None:
            rejected.append((str(e.get("id") or e.get("title") or f"entry #{i}")[:500], "entry has no usable link"))
            continue
        if url in seen:  # one row per (feed, url): a later entry with the same link is recorded, not lost
            rejected.append((str(e.get("id") or e.get("title") or f"entry #{i}")[:500],
                             f"duplicate link {url[:300]} (an earlier entry of the feed has it)"))
            continue
        seen.add(url)
        content_value = None
        if e.get("content"):
            content_value = "\n".join(str(c.get("value", "")) for c in e["content"])
        entries.append(FeedEntry(
            url=url, entry_id=_cut(e.get("id"), 2000), title=_cut(e.get("title"), MAX_TITLE),
            author=_cut(e.get("author"), 500), published_at=_when(e),
            summary=_cut(e.get("summary"), MAX_SUMMARY), content=_cut(content_value, MAX_CONTENT)))
    if not entries and not parsed.entries and bozo and not parsed.get("version"):
        raise RefusedFetchError(f"{feed_url} is not a feed: {bozo}", reason="not_a_feed")
    return entries, rejected, bozo


def poll_feed(fetcher: Fetcher, feed: FeedSettings, state: FeedState, max_bytes: int,
              max_entries: int | None = None) -> FeedPoll:
    """Conditional GET and parse of one feed. Never raises for a bad feed: the poll says what went wrong."""
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    base = dict(feed=feed.name, etag=state.etag, last_modified=state.last_modified, body_sha256=state.body_sha256)
    try:
        resp = fetcher.get(feed.url, max_bytes=max_bytes, accept=FEED_TYPES, headers=headers,
                           allow_file=feed.url.startswith("file:"))
    except FetchError as exc:
        return FeedPoll(outcome="failed", status=exc.status, error=str(exc), reason=exc.reason,
                        unreachable=getattr(exc, "unreachable", False), **base)
    validators = dict(etag=resp.headers.get("etag") or state.etag,
                      last_modified=resp.headers.get("last-modified") or state.last_modified)
    if resp.not_modified:
        return FeedPoll(feed=feed.name, outcome="not_modified", status=304, body_sha256=state.body_sha256,
                        **validators)
    digest = hashlib.sha256(resp.content).hexdigest()
    if digest == state.body_sha256:
        return FeedPoll(feed=feed.name, outcome="unchanged_body", status=resp.status, body_sha256=digest,
                        **validators)
    if max_entries is None:
        max_entries = fetcher.settings.max_feed_entries
    try:
        entries, rejected, bozo = parse_feed(resp.content, resp.final_url, resp.content_type, max_entries)
    except RefusedFetchError as exc:
        return FeedPoll(outcome="failed", status=resp.status, error=str(exc), reason=exc.reason, **base)
    except Exception as exc:  # feedparser on hostile input: record, never crash the run
        return FeedPoll(outcome="failed", status=resp.status, error=f"feed parser failed: {exc!r}"[:500],
                        reason="parse_error", **base)
    return FeedPoll(feed=feed.name, outcome="ok", status=resp.status, entries=tuple(entries),
                    rejected=tuple(rejected), body_sha256=digest, bozo=bozo, **validators)
