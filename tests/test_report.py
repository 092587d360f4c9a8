"""`newsmon report`: one self-contained, well-formed HTML page with the window's changes, the
standing pledges and a stance timeline per topic and actor group."""
from __future__ import annotations

import datetime as dt
import html.parser
from pathlib import Path

import pytest

from conftest import store_articles, warehouse_config
from flows.notify import detect_changes
from newsmon.settings import AlertSettings, Settings, WarehouseSettings
from warehouse import Warehouse

UTC = dt.timezone.utc
B = 1e9
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def url(name: str) -> str:
    return f"https://news.example/{name}"


def at(month: int, d: int) -> dt.datetime:
    return dt.datetime(2025, month, d, 9, tzinfo=UTC)


TEXTS = {
    "fr-1": (at(11, 10), "France rules out talks with Putin <for now>."),
    "fr-2": (at(12, 5), "France is open to talks with Putin if Russia agrees to a ceasefire."),
    "hu-1": (at(12, 8), "Hungary supports talks with Putin."),
    "no-1": (at(11, 20), "Norway pledged 2 billion kroner in humanitarian aid to Ukraine."),
    "no-2": (at(12, 20), "Norway raised its humanitarian aid to Ukraine to 3 billion kroner."),
}


def position(article: str, group: str, stance: str) -> dict:
    return dict(url=url(article), evidence=TEXTS[article][1], actor=group, actor_group=group,
                topic="direct_talks_with_putin", stance=stance)


def pledge(article: str, amount: float) -> dict:
    return dict(url=url(article), evidence=TEXTS[article][1], donor="Norway", recipient="Ukraine", amount=amount,
                currency="NOK", amount_eur=amount / 11.8, kind="humanitarian")


@pytest.fixture
def config(tmp_path, warehouse: Warehouse) -> Path:
    store_articles(warehouse, [dict(url=url(k), published_at=when, text=text, title=f"Title {k}")
                               for k, (when, text) in TEXTS.items()],
                   positions=[position("fr-1", "France", "oppose"), position("fr-2", "France", "conditional"),
                              position("hu-1", "Hungary", "support")],
                   pledges=[pledge("no-1", 2 * B), pledge("no-2", 3 * B)])
    settings = Settings(warehouse=WarehouseSettings(path=warehouse.path),
                        alerts=AlertSettings(recipients=["analyst@example.org"]))
    detect_changes.fn(settings, warehouse, "run-1")
    return warehouse_config(tmp_path, warehouse.path)


class Page(html.parser.HTMLParser):
    """A strict reading of the page: every element closed in order; collects attributes and resources."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def having(self, attr: str) -> list[str]:
        return [a[attr] for _, a in self.elements if attr in a]


def read_page(path: Path) -> Page:
    page = Page()
    source = path.read_text(encoding="utf-8")
    assert source.startswith("<!DOCTYPE html>")
    page.feed(source)
    page.close()
    assert page.errors == [] and page.stack == []
    return page


def test_report_page_is_wellformed_and_holds_the_windows_rows(run_newsmon, config, tmp_path):
    out = tmp_path / "report.html"
    result = run_newsmon("report", "--since", "2025-12-01", "--out", out, "--config", config)
    assert result.code == 0, result.stderr
    page = read_page(out)
    text = " ".join(page.text)
    # changes of the window: France oppose -> conditional (12-05), Norway 2bn -> 3bn NOK (12-20)
    assert len(page.having("data-change-id")) == 2
    assert "leaders talking directly with Vladimir Putin" in text  # the topic's description, not its id
    assert "NOK 2bn → NOK 3bn" in text and "+50.0%" in text
    assert "France rules out talks with Putin <for now>." in text  # evidence, escaped and intact
    # current pledges: Norway's raised pledge once, at its new amount
    assert page.having("data-pledge") == ["Norway|Ukraine|humanitarian"]
    # timelines: France (with its stance before the window) and Hungary on the topic
    assert sorted(page.having("data-timeline")) == ["direct_talks_with_putin|France",
                                                    "direct_talks_with_putin|Hungary"]
    assert len([1 for tag, _ in page.elements if tag == "circle"]) == 3
    assert "(before the window)" in text


def test_report_page_is_self_contained(run_newsmon, config, tmp_path):
    out = tmp_path / "report.html"
    assert run_newsmon("report", "--since", "2025-11-01", "--out", out, "--config", config).code == 0
    page = read_page(out)
    assert not page.having("src")  # no image, script or frame to fetch
    assert [t for t, a in page.elements if t == "link"] == []  # no external stylesheet
    assert all(h.startswith("https://news.example/") for h in page.having("href"))


def test_report_window_excludes_later_changes(run_newsmon, config, tmp_path):
    out = tmp_path / "early.html"
    result = run_newsmon("report", "--since", "2025-11-01", "--until", "2025-12-10", "--out", out, "--config", config)
    assert result.code == 0, result.stderr
    page = read_page(out)
    text = " ".join(page.text)
    assert len(page.having("data-change-id")) == 1 and "NOK 3bn" not in text.split("Current pledges")[0]
    # the pledge standing at the window's end is the 2bn one
    assert "NOK 2bn" in text.split("Current pledges")[1]


@pytest.mark.parametrize("args, message", [
    (["--since", "2025-13-01"], "is not a date"),
    (["--since", "2025-12-10", "--until", "2025-12-01"], "is before --since"),
])
def test_report_bad_window_is_one_clear_line(run_newsmon, config, tmp_path, args, message):
    result = run_newsmon("report", *args, "--out", tmp_path / "r.html", "--config", config)
    assert result.code == 2 and message in result.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(run_newsmon, config, tmp_path):
    """The page as a browser draws it: Chromium renders it to a PNG of the window's size."""
    import shutil
    import struct
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium (Debian package chromium) is not installed")
    out = tmp_path / "report.html"
    assert run_newsmon("report", "--since", "2025-11-01", "--out", out, "--config", config).code == 0
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1100,900",
                    f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1100, 900)
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("data-change-id=") == 2 and dom.count("<circle") == 3
