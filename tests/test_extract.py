"""tasks.extract: what an article keeps of a hostile page's metadata."""
from __future__ import annotations

import re

import pytest

from tasks.extract import MAX_TITLE_CHARS, extract_article

BODY = "<article><p>" + "The ministers met in Brussels and agreed a winter energy package. " * 6 + "</p></article>"


@pytest.mark.parametrize("title", ["Word " * 2000, "x" * 10_000], ids=["words", "one-word"])
def test_extract_page_title_capped(title):
    # a <title> of 10,000 characters reached the alert digest whole
    page = f"<html lang='en'><head><title>{title}</title></head><body>{BODY}</body></html>".encode()
    art = extract_article(page, "http://example.org/a")
    assert art.title is not None
    assert len(art.title) <= MAX_TITLE_CHARS and art.title.endswith("…")
    assert art.title[:20] == " ".join(title.split())[:20]


def test_extract_title_on_one_line():
    page = f"<html><head><title>EU  ministers\n agree</title></head><body>{BODY}</body></html>".encode()
    assert extract_article(page, "http://example.org/a").title == "EU ministers agree"


def test_extract_feed_title_capped_when_the_page_has_none():
    page = f"<html><body>{BODY}</body></html>".encode()
    art = extract_article(page, "http://example.org/a", feed_title="T" * 5000)
    assert art.title is not None and len(art.title) <= MAX_TITLE_CHARS


# -- the metadata pass newsmon runs, against trafilatura's own ------------------------------------
def _pages() -> list[tuple[str, bytes]]:
    from conftest import CORPUS, ROOT

    pages = [(f"https://sample.invalid/{p.name}", p.read_bytes())
             for p in sorted((ROOT / "config" / "sample" / "pages").glob("*.html"))]
    pages.append(("http://example.org/short", f"<html><body>{BODY}</body></html>".encode()))
    pages.append(("http://example.org/empty", b"<html><body><p>menu</p></body></html>"))
    zyte = CORPUS / "zyte-articles"
    if (zyte / "html").is_dir():
        # every 5th page (36 of 181): the whole set takes a minute on a loaded machine
        pages += [(f"https://zyte.invalid/{p.name}", p.read_bytes()) for p in sorted((zyte / "html").iterdir())[::5]]
    return pages


def test_extract_metadata_and_text_are_trafilaturas_own():
    """extract_article parses a page once and skips the metadata fields it does not store (and the
    date search when the feed dated the entry): title, author, canonical URL, date and text stay
    exactly what trafilatura.bare_extraction(with_metadata=True) finds (the Zyte pages of ../shared
    too, when present)."""
    import datetime as dt

    import trafilatura

    from tasks.extract import MAX_AUTHOR_CHARS, ExtractError, _cap, _page_date

    checked = 0
    for url, html in _pages():
        ref = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                          include_tables=False, favor_precision=True)
        text = re.sub(r"[ \t]+\n", "\n", (ref.text if ref is not None else "") or "").strip()
        for feed_date in (None, dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)):
            try:
                art = extract_article(html, url, feed_published=feed_date)
            except ExtractError:
                assert len(text) < 40, url
                continue
            checked += 1
            assert art.text == text, url
            assert (art.title, art.author) == (_cap(ref.title, MAX_TITLE_CHARS), _cap(ref.author, MAX_AUTHOR_CHARS)), url
            assert art.canonical_url == (ref.url or None), url
            assert art.published_at == (feed_date or _page_date(ref.date)), url
    assert checked >= 2 * 5


def test_extract_pool_gives_what_one_process_gives():
    """Two processes (a forked helper takes every other page) give the articles and rejections of
    one, in the same order."""
    from tasks.extract import ExtractError, ExtractPool

    jobs = [dict(html=html, url=url, feed_title="feed title", feed_author=None, feed_published=None)
            for url, html in _pages()[:12]]

    def run(processes: int) -> list:
        with ExtractPool(processes) as pool:
            out = pool.extract(jobs)
            assert pool.extract(jobs[:1]) == out[:1]   # a batch of one: this process alone
        return [str(a) if isinstance(a, ExtractError) else a for a in out]

    one, two = run(1), run(2)
    assert two == one
    assert any(isinstance(a, str) for a in one) and sum(not isinstance(a, str) for a in one) >= 5

    # only helpers extract (this process hands out the pages), two batches out at once; no page, no helper
    with ExtractPool(2, helpers_only=True) as pool:
        assert pool.submit([])() == [] and pool._pool is None
    for processes in (1, 2):
        with ExtractPool(processes, helpers_only=True) as pool:
            first, second = pool.submit(jobs[:7]), pool.submit(jobs[7:])
            out = first() + second()
            assert pool.submit([])() == []
        assert [str(a) if isinstance(a, ExtractError) else a for a in out] == one


def test_extract_stage_in_small_batches_with_helpers_stores_what_one_batch_stores(site, tmp_path, monkeypatch):
    """The stage reads the next batch and starts its extraction before it stores the current one:
    in batches of 2 pages, on helpers only, it stores the articles (and stories) of one batch."""
    from flows import stages
    from tasks.extract import ExtractPool
    from tests.test_mine import STAGE_TABLES, stage_rows
    from tests.test_ingest import serve_site

    feed = serve_site(site)
    whole = stage_rows(feed, tmp_path / "whole", 1)
    monkeypatch.setattr(stages, "EXTRACT_BATCH", 2)
    monkeypatch.setattr(stages, "ExtractPool", lambda processes, fork=True: ExtractPool(processes, fork=fork,
                                                                                          helpers_only=True))
    assert stage_rows(feed, tmp_path / "small", 2) == whole
    assert set(whole) == set(STAGE_TABLES) and whole["articles"]
