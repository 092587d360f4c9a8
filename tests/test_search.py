"""Full-text search through `newsmon search` and the `search_articles` macro of `newsmon sql`:
word forms match, all words must occur, filters by day and entity, and an index that follows
new articles."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from conftest import store_articles, warehouse_config
from warehouse import Warehouse
from warehouse.search import fts_extension_path

UTC = dt.timezone.utc

FROZEN = ("EU leaders agreed on Thursday to use frozen Russian assets to fund a loan for Ukraine. "
          "Belgium, where most of the assets are held, asked for guarantees.")
CONFLICT = "Analysts warn the war could turn into a frozen conflict along the front line."
ASSETS = "The central bank reported its foreign assets rose in November."
OLD = "In 2022 the EU first froze the assets of Russia's central bank."


def url(name: str) -> str:
    return f"https://news.example/{name}"


ARTICLES = [
    dict(url=url("frozen"), title="EU to tap Russian assets", published_at=dt.datetime(2025, 12, 18, tzinfo=UTC),
         text=FROZEN),
    dict(url=url("conflict"), published_at=dt.datetime(2025, 12, 10, tzinfo=UTC), text=CONFLICT),
    dict(url=url("assets"), published_at=dt.datetime(2025, 12, 1, tzinfo=UTC), text=ASSETS),
    dict(url=url("old"), published_at=dt.datetime(2022, 3, 1, tzinfo=UTC), text=OLD),
]
MENTIONS = [dict(url=url("frozen"), entity="European Union", entity_type="organization"),
            dict(url=url("old"), entity="Russia", entity_type="country")]


@pytest.fixture
def config(tmp_path, warehouse: Warehouse) -> Path:
    store_articles(warehouse, ARTICLES, mentions=MENTIONS)
    return warehouse_config(tmp_path, warehouse.path)


def search(run_newsmon, config: Path, *args: str) -> list[dict]:
    result = run_newsmon("search", *args, "--format", "json", "--config", config)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_search_frozen_assets_finds_frozen_russian_assets(run_newsmon, config):
    [hit] = search(run_newsmon, config, "frozen assets")
    assert hit["url"] == url("frozen") and hit["score"] > 0
    assert "frozen Russian assets" in hit["snippet"]
    assert [h["url"] for h in search(run_newsmon, config, "frozen asset")] == [url("frozen")]  # word forms match


def test_search_needs_every_word_unless_any(run_newsmon, config):
    assert url("conflict") not in {h["url"] for h in search(run_newsmon, config, "frozen assets")}
    assert {h["url"] for h in search(run_newsmon, config, "frozen assets", "--any")} == {
        url("frozen"), url("old"), url("conflict"), url("assets")}


def test_search_since_and_entity_filter(run_newsmon, config):
    ranked = [h["url"] for h in search(run_newsmon, config, "assets")]
    assert set(ranked) == {url("frozen"), url("assets"), url("old")}
    assert [h["url"] for h in search(run_newsmon, config, "assets", "--since", "2025-01-01")] == [
        u for u in ranked if u != url("old")]
    assert [h["url"] for h in search(run_newsmon, config, "assets", "--entity", "russia")] == [url("old")]
    assert [h["url"] for h in search(run_newsmon, config, "assets", "--limit", "1")] == ranked[:1]


def test_search_unknown_entity_suggests_names(run_newsmon, config):
    result = run_newsmon("search", "assets", "--entity", "Rusia", "--config", config)
    assert result.code == 2
    assert "no article mentions 'Rusia'" in result.stderr and "Russia" in result.stderr


def test_search_query_without_words_is_a_clear_error(run_newsmon, config):
    result = run_newsmon("search", "  ?! ", "--config", config)
    assert result.code == 2 and "give one or more words" in result.stderr


def test_search_table_output_lists_title_url_and_snippet(run_newsmon, config):
    result = run_newsmon("search", "frozen assets", "--config", config)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(" 1. 2025-12-18  EU to tap Russian assets")
    assert lines[1].strip() == url("frozen")
    assert "frozen Russian assets" in lines[2]


def test_search_macro_in_newsmon_sql(run_newsmon, config):
    result = run_newsmon("sql", "SELECT url, snippet FROM search_articles('frozen assets', since := DATE '2025-01-01')",
                     "--format", "json", "--config", config)
    assert result.code == 0, result.stderr
    [hit] = json.loads(result.stdout)
    assert hit["url"] == url("frozen") and "frozen Russian assets" in hit["snippet"]


def test_search_index_follows_new_articles(run_newsmon, config, warehouse):
    assert len(search(run_newsmon, config, "immobilised reserves")) == 0
    store_articles(warehouse, [dict(url=url("new"), published_at=dt.datetime(2025, 12, 19, tzinfo=UTC),
                                    text="Euroclear holds most of Russia's immobilised reserves.")])
    assert [h["url"] for h in search(run_newsmon, config, "immobilised reserves")] == [url("new")]
    # a re-extracted text replaces what the index knew of the article
    store_articles(warehouse, [dict(url=url("new"), published_at=dt.datetime(2025, 12, 19, tzinfo=UTC),
                                    text="Euroclear declined to comment.")])
    assert search(run_newsmon, config, "immobilised reserves") == []


def test_search_index_persists_for_plain_duckdb_with_the_extension(run_newsmon, config, warehouse):
    """An analyst's own DuckDB session: LOAD the packaged extension, then use the macro."""
    search(run_newsmon, config, "frozen assets")  # builds the index
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        con.execute(f"LOAD '{fts_extension_path()}'")
        rows = con.execute("SELECT url FROM search_articles('frozen assets') LIMIT 1").fetchall()
    finally:
        con.close()
    assert rows == [(url("frozen"),)]


def test_search_extension_ships_with_the_pinned_package():
    path = fts_extension_path()
    assert path.is_file() and f"v{duckdb.__version__}" in path.parts


def test_search_index_is_built_only_by_reads_that_search(run_newsmon, config, warehouse):
    for args in (["sql", "SELECT count(*) FROM articles"], ["report", "--since", "2025-01-01", "--out",
                                                            config.parent / "r.html"]):
        assert run_newsmon(*args, "--config", config).code == 0
    assert [r["name"] for r in warehouse.read("SELECT name FROM derived_state ORDER BY name")] == ["catalog"]
    assert run_newsmon("sql", "SELECT count(*) FROM search_articles('assets')", "--config", config).code == 0
    assert [r["name"] for r in warehouse.read("SELECT name FROM derived_state ORDER BY name")] == [
        "catalog", "search_index"]


def test_search_entity_by_alias(run_newsmon, config):
    """The entity filter takes the catalog's aliases (config/entities.yaml: EU is the European Union)."""
    assert [h["url"] for h in search(run_newsmon, config, "assets", "--entity", "EU")] == [url("frozen")]


def test_search_lists_a_syndicated_story_once(run_newsmon, config, warehouse):
    store_articles(warehouse, [dict(url=url("frozen-copy"), published_at=dt.datetime(2025, 12, 19, tzinfo=UTC),
                                    text=FROZEN, story_id=url("frozen"))])
    assert [h["url"] for h in search(run_newsmon, config, "frozen assets")] == [url("frozen")]


# -- on a DuckLake: the index lives in the local DuckDB file `path` (see docs/scaling.md) ---------
def _lake_config(directory: Path, lake_warehouse: Warehouse) -> Path:
    lake = lake_warehouse.lake
    path = directory / "newsmon.toml"
    path.write_text(f'[warehouse]\nbackend = "ducklake"\ncatalog = "{lake.catalog}"\ndata_path = "{lake.data_path}"\n'
                    f'path = "{lake_warehouse.path}"\nlock_timeout_seconds = 30\n')
    return path


def _sql_hits(run_newsmon, config: Path, query: str) -> list[dict]:
    result = run_newsmon("sql", f"SELECT url, title, published_at, score, snippet FROM search_articles('{query}')",
                         "--format", "json", "--config", config)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_lake_search_gives_the_rows_of_the_duckdb_file(run_newsmon, config, lake_warehouse, tmp_path):
    store_articles(lake_warehouse, ARTICLES, mentions=MENTIONS)
    lake_dir = tmp_path / "lake-config"
    lake_dir.mkdir()
    lake_config = _lake_config(lake_dir, lake_warehouse)
    for args in (["frozen assets"], ["assets", "--any"], ["assets", "--entity", "EU"],
                 ["assets", "--since", "2025-01-01"]):
        expected = search(run_newsmon, config, *args)
        assert expected, args
        assert search(run_newsmon, lake_config, *args) == expected, args
    assert _sql_hits(run_newsmon, lake_config, "frozen assets") == _sql_hits(run_newsmon, config, "frozen assets")


def test_lake_search_index_is_rebuilt_after_new_articles_and_not_otherwise(run_newsmon, lake_warehouse, tmp_path):
    from newsmon.reading import refresh_derived
    from newsmon.settings import load_settings

    store_articles(lake_warehouse, ARTICLES, mentions=MENTIONS)
    config = _lake_config(tmp_path, lake_warehouse)
    settings = load_settings(config)
    assert refresh_derived(settings, lake_warehouse, search_index=True)["search_index"] is True
    assert refresh_derived(settings, lake_warehouse, search_index=True)["search_index"] is False
    assert search(run_newsmon, config, "immobilised reserves") == []
    store_articles(lake_warehouse, [dict(url=url("new"), published_at=dt.datetime(2025, 12, 19, tzinfo=UTC),
                                         text="Euroclear holds most of Russia's immobilised reserves.")])
    assert [h["url"] for h in search(run_newsmon, config, "immobilised reserves")] == [url("new")]
    assert refresh_derived(settings, lake_warehouse, search_index=True)["search_index"] is False
    # nothing of the index went into the lake: its catalog holds no fts schema and no search macro
    assert lake_warehouse.read("SELECT count(*) AS n FROM duckdb_schemas() WHERE database_name = 'lake' "
                               "AND schema_name LIKE 'fts_%'") == [{"n": 0}]
    assert lake_warehouse.read("SELECT name FROM derived_state WHERE name = 'search_index'") == []
