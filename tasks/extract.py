"""Extraction stage: stored page bytes -> article (main text and metadata).

trafilatura finds the main text (no comments, no navigation, banners or footers),
title, author, canonical URL and dates. The publication date is taken from the
feed, else the page's metadata (trafilatura's own, htmldate underneath); the
language from the text (py3langid), falling back on the page's `lang` attribute
for short texts. Pages are capped in size before `extract` (it has no guard of
its own: 25 MB of HTML took 562 MB of memory).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING

from newsmon.errors import ExtractError

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

__all__ = ["EXTRACTOR_VERSION", "Article", "extract_article", "detect_language"]

EXTRACTOR_VERSION = "extract-1"
MAX_HTML_BYTES = 3 * 1024 * 1024
# A headline is a line: a page's <title> of 10,000 characters reached the alert digest whole.
MAX_TITLE_CHARS = 500
MAX_AUTHOR_CHARS = 500
# the primary subtag of <html lang>: "en", "de-AT"; a 3-letter code ("fil") has no ISO 639-1 form
_LANG_ATTR = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})(?![A-Za-z])", re.IGNORECASE)
_identifier: LanguageIdentifier | None = None


@dataclasses.dataclass(frozen=True)
class Article:
    url: str
    canonical_url: str | None
    title: str | None
    author: str | None
    published_at: dt.datetime | None
    date_source: str | None
    language: str | None
    text: str

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def detect_language(text: str, declared: str | None = None) -> str | None:
    """ISO 639-1 code of `text`; the page's declared language decides when the text is too short to tell."""
    global _identifier
    if _identifier is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # numpy and a model: only when needed

        _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    sample = text[:5000]
    if len(sample) >= 200:
        lang, prob = _identifier.classify(sample)
        if prob >= 0.9 or not declared:
            return lang
    return declared or (_identifier.classify(sample)[0] if sample.strip() else None)


def _page_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)


def _cap(value: str | None, limit: int) -> str | None:
    """One line of at most `limit` characters (cut at a word boundary, with an ellipsis), or None."""
    value = " ".join((value or "").split())
    if len(value) <= limit:
        return value or None
    cut = value[:limit - 1]
    cut = cut.rsplit(" ", 1)[0] if " " in cut[limit // 2:] else cut
    return cut.rstrip() + "…"


def extract_article(html: bytes, url: str, *, feed_title: str | None = None, feed_author: str | None = None,
                    feed_published: dt.datetime | None = None, max_bytes: int = MAX_HTML_BYTES) -> Article:
    """The article in a page. Raises ExtractError when there is no main text."""
    if len(html) > max_bytes:
        raise ExtractError(f"{url}: page of {len(html)} bytes exceeds the extraction cap of {max_bytes}")
    import trafilatura  # ~1 s of imports (lxml, htmldate, courlan): only in a run that has pages to extract

    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=False, favor_precision=True)
    text = (doc.text if doc is not None else "") or ""
    text = re.sub(r"[ \t]+\n", "\n", text).strip()
    if len(text) < 40:
        raise ExtractError(f"{url}: no article text found ({len(text)} characters)")
    declared = None
    m = _LANG_ATTR.search(html[:20000])
    if m and len(m.group(1)) == 2:  # cutting "fil" (Filipino) to "fi" would declare Finnish
        declared = m.group(1).decode().lower()
    published, source = feed_published, "feed"
    if published is None:
        published, source = _page_date(doc.date), "page"
    if published is None:
        source = None
    title = doc.title or feed_title
    return Article(url=url, canonical_url=doc.url if doc.url and doc.url != url else (doc.url or None),
                   title=_cap(title, MAX_TITLE_CHARS), author=_cap(doc.author or feed_author, MAX_AUTHOR_CHARS),
                   published_at=published, date_source=source,
                   language=detect_language(text, declared), text=text)
