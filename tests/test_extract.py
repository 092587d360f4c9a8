"""tasks.extract: what an article keeps of a hostile page's metadata."""
from __future__ import annotations

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
