"""`newsmon export`: public views to Parquet, CSV and JSON through DuckDB's writers, lists intact,
filters under the read-only guard, and nothing written but the one file asked for."""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from conftest import store_articles, warehouse_config
from warehouse import Warehouse

UTC = dt.timezone.utc
EVIDENCE = 'Norway and Denmark said "winter matters", pledging 2 billion kroner, together, to Ukraine.\n'
TEXT = "Oslo.\n" + EVIDENCE + "More text."


def url(name: str) -> str:
    return f"https://news.example/{name}"


@pytest.fixture
def config(tmp_path, warehouse: Warehouse) -> Path:
    store_articles(
        warehouse,
        [dict(url=url("a"), published_at=dt.datetime(2025, 11, 20, tzinfo=UTC), text=TEXT),
         dict(url=url("b"), published_at=dt.datetime(2025, 12, 20, tzinfo=UTC), text="Germany pledged 1 billion euros.")],
        pledges=[dict(url=url("a"), evidence=EVIDENCE, donor="Norway", recipient="Ukraine", amount=2e9,
                      currency="NOK", amount_eur=1.7e8, kind="humanitarian"),
                 dict(url=url("b"), evidence="Germany pledged 1 billion euros.", donor="Germany",
                      recipient="Ukraine", amount=1e9, currency="EUR", amount_eur=1e9, kind="military")])
    return warehouse_config(tmp_path, warehouse.path)


def export(run_newsmon, config: Path, *args: str):
    return run_newsmon("export", *args, "--config", config)


def test_export_csv_round_trips_with_lists_intact(run_newsmon, config, tmp_path):
    out = tmp_path / "events.csv"
    result = export(run_newsmon, config, "events", "--format", "csv", "--out", out)
    assert result.code == 0, result.stderr
    assert "exported 2 rows of events" in result.stderr
    with out.open(newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["url"])
    assert [json.loads(r["participants"]) for r in rows] == [["Norway", "Ukraine"], ["Germany", "Ukraine"]]
    assert rows[0]["evidence"] == EVIDENCE.strip()  # quotes and commas intact, no trailing newline
    assert rows[0]["people"] == ""  # NULL list: an empty cell
    assert float(rows[0]["amount"]) == 2e9


def test_export_parquet_keeps_list_type(run_newsmon, config, tmp_path):
    out = tmp_path / "events.parquet"
    assert export(run_newsmon, config, "events", "--format", "parquet", "--out", out).code == 0
    con = duckdb.connect()
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{out}')").fetchall())
    rows = con.execute(f"SELECT participants, published_at FROM '{out}' ORDER BY url").fetchall()
    assert types["participants"] == "VARCHAR[]" and types["published_at"].startswith("TIMESTAMP")
    assert rows[0][0] == ["Norway", "Ukraine"]


def test_export_json_is_an_array_of_objects_with_lists(run_newsmon, config, tmp_path):
    out = tmp_path / "pledges.json"
    assert export(run_newsmon, config, "events", "--format", "json", "--out", out).code == 0
    rows = json.loads(out.read_text())
    assert sorted(r["participants"] for r in rows) == [["Germany", "Ukraine"], ["Norway", "Ukraine"]]


def test_export_where_filters_rows(run_newsmon, config, tmp_path):
    out = tmp_path / "norway.csv"
    result = export(run_newsmon, config, "current_pledges", "-f", "csv", "-o", out, "--where", "donor = 'Norway'")
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(out.open(newline="")))
    assert [(r["donor"], r["kind"]) for r in rows] == [("Norway", "humanitarian")]


@pytest.mark.parametrize("view, where, message", [
    ("pledge_claims", None, "no public view 'pledge_claims'"),
    ("feeds", None, "no public view 'feeds'"),
    ("events", "1=1); COPY feeds TO 'stolen.csv'; --", "SQL error"),
    ("events", "url IN (SELECT content FROM read_text('/etc/hostname'))", "disabled"),
    ("events", "no_such_column = 1", "no_such_column"),
])
def test_export_refuses_what_newsmon_sql_refuses(run_newsmon, config, tmp_path, view, where, message):
    out = tmp_path / "out" / "x.csv"
    out.parent.mkdir()
    args = ["--where", where] if where else []
    result = export(run_newsmon, config, view, "--format", "csv", "--out", out, *args)
    assert result.code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(out.parent.iterdir()) == []  # no file, no partial file
    assert not (config.parent / "stolen.csv").exists()


def test_export_failed_run_leaves_the_previous_file(run_newsmon, config, tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("previous export\n")
    assert export(run_newsmon, config, "events", "-f", "csv", "-o", out, "--where", "nope = 1").code == 2
    assert out.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".p.csv")) == []


def test_export_into_a_missing_directory_is_a_clear_error(run_newsmon, config, tmp_path):
    result = export(run_newsmon, config, "events", "--out", tmp_path / "nowhere" / "x.parquet")
    assert result.code == 2 and "no such directory" in result.stderr
