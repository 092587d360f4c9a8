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
from html import unescape
from typing import TYPE_CHECKING

from newsmon.errors import ExtractError

if TYPE_CHECKING:
    from collections.abc import Callable

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


def _page_metadata(tree, url: str, date_params: dict | None):
    """Title, author, canonical URL and (if `want_date`) date of a parsed page: the same values as
    `trafilatura.bare_extraction(..., with_metadata=True)` gives, by the same steps of
    `trafilatura.metadata.extract_metadata`, without the fields newsmon does not store (site name,
    categories, tags, license, description...: half of that function's time) and without the date
    search (htmldate) when the feed already dated the entry. tests/test_extract.py checks the
    equality on the bundled pages, ../shared's Zyte pages when present."""
    from htmldate import find_date
    from trafilatura.metadata import (Document, examine_meta, extract_author, extract_meta_json,
                                      extract_title, extract_url)
    from trafilatura.utils import line_processing

    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:
        metadata.author = None
    try:
        metadata = extract_meta_json(tree, metadata)
    except Exception:  # as trafilatura does: bugs in its json_metadata.py
        pass
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = extract_author(tree)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    date = None
    if date_params is not None:
        params = {**date_params, "url": metadata.url}
        date = find_date(tree, **params)
    out = Document()
    for name, value in (("title", metadata.title), ("author", metadata.author), ("url", metadata.url),
                        ("date", date)):
        if isinstance(value, str):   # Document.clean_and_trim, on these four fields
            if len(value) > 10000:
                value = value[:9999] + "…"
            value = line_processing(unescape(value))
        setattr(out, name, value)
    return out


def extract_article(html: bytes, url: str, *, feed_title: str | None = None, feed_author: str | None = None,
                    feed_published: dt.datetime | None = None, max_bytes: int = MAX_HTML_BYTES) -> Article:
    """The article in a page. Raises ExtractError when there is no main text."""
    if len(html) > max_bytes:
        raise ExtractError(f"{url}: page of {len(html)} bytes exceeds the extraction cap of {max_bytes}")
    import trafilatura  # ~1 s of imports (lxml, htmldate, courlan): only in a run that has pages to extract
    from trafilatura.settings import DEFAULT_CONFIG, Extractor
    from trafilatura.utils import load_html

    # what bare_extraction(html, url=url, include_comments=False, include_tables=False,
    # favor_precision=True) builds, without its metadata pass (done below, for the fields stored)
    options = Extractor(config=DEFAULT_CONFIG, output_format="python", precision=True, comments=False,
                        tables=False, url=url, with_metadata=False)
    tree = load_html(html, options.max_file_size)   # parsed once, for the metadata and the text
    doc = None
    if tree is not None:
        # in bare_extraction's order: the metadata first, on the tree the extraction then copies
        meta = _page_metadata(tree, url, options.date_params if feed_published is None else None)
        doc = trafilatura.bare_extraction(tree, options=options)
    if doc is not None:
        doc.title, doc.author, doc.url, doc.date = meta.title, meta.author, meta.url, meta.date
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


# -- extracting on several processes ---------------------------------------------------------
def _extract_one(job: dict) -> Article | ExtractError:
    try:
        return extract_article(job["html"], job["url"], feed_title=job.get("feed_title"),
                               feed_author=job.get("feed_author"), feed_published=job.get("feed_published"))
    except ExtractError as exc:
        return exc


def _extract_all(jobs: list[dict]) -> list[Article | ExtractError]:
    return [_extract_one(job) for job in jobs]


def _warm_up() -> None:
    """A helper's first work, before any page: the imports and py3langid's model (~1 s), done
    while the run downloads the pages instead of at its first page."""
    import trafilatura  # noqa: F401

    detect_language("newsmon warms up the language model of its extraction helper. " * 4)


class ExtractPool:
    """`extract_article` over batches of pages on `processes` processes, each taking every n-th page
    of a batch: this one and `processes - 1` helpers, or (`helpers_only`) `processes` helpers while
    this process only hands out the pages and stores what comes back. A helper is a fork of this
    process unless `fork` is false (inside a Prefect flow run, whose threads make forking unsafe:
    then spawned). Use as a context manager; `extract(jobs)` gives, for each job (html, url,
    feed_title, feed_author, feed_published), its Article or the ExtractError that rejected it, in
    the jobs' order: the same as one process. `submit(jobs)` starts a batch and returns what
    gives its results, so the helpers can work on the next batch while this process stores one."""

    def __init__(self, processes: int = 1, fork: bool = True, helpers_only: bool = False):
        self.processes, self.fork, self.helpers_only = max(1, processes), fork, helpers_only
        self.helpers = self.processes if helpers_only else self.processes - 1
        self._pool = None

    def __enter__(self) -> ExtractPool:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def start(self) -> None:
        """Start the helpers now rather than at the first batch: the run forks them before it starts
        threads of its own (see `flows.stages.RunHelpers`). A helper of a `helpers_only` pool warms up
        (imports, the language model) as soon as it is started."""
        if self.helpers > 0 and self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            if not self.helpers_only:
                import trafilatura  # noqa: F401  (imported before the fork: helpers start with it)

            ctx = multiprocessing.get_context("fork" if self.fork else "spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.helpers, mp_context=ctx,
                                             initializer=_warm_up if self.helpers_only else None)
            if self.fork:   # a fork-context pool forks every helper within its first submit: make that now
                self._pool.submit(int)

    def submit(self, jobs: list[dict]) -> Callable[[], list[Article | ExtractError]]:
        """Start extracting `jobs` on the helpers; the function returned waits for (and, for this
        process's own share, does) the work, and gives what `extract(jobs)` gives."""
        shares = min(self.processes, len(jobs))
        if not jobs or (not self.helpers_only and shares <= 1):   # nothing to start helpers for
            return lambda: _extract_all(jobs)
        self.start()
        # interleaved shares (pages of one site tend to be alike in size); share 0 is this process's
        # unless only helpers extract
        first = 0 if self.helpers_only else 1
        futures = [self._pool.submit(_extract_all, jobs[i::shares]) for i in range(first, shares)]

        def results() -> list[Article | ExtractError]:
            done = ([] if self.helpers_only else [_extract_all(jobs[0::shares])]) + [f.result() for f in futures]
            out: list = [None] * len(jobs)
            for i, share in enumerate(done):
                out[i::shares] = share
            return out

        return results

    def extract(self, jobs: list[dict]) -> list[Article | ExtractError]:
        return self.submit(jobs)()
