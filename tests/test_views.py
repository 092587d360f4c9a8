"""The warehouse's public views as an analyst meets them, through `newsmon sql` and `newsmon views`:
current pledges that never double-count a revision, EUR and aid kind on aid changes, the topic
and entity catalogs, trimmed evidence, and a commented public interface without base tables."""
from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from conftest import store_articles
from flows.notify import detect_changes
from newsmon.settings import AlertSettings, Settings, WarehouseSettings
from tasks.nlp import load_catalog
from tasks.topics import load_topics
from warehouse import Warehouse

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parents[1]


def url(name: str) -> str:
    return f"https://news.example/{name}"


def day(y: int, m: int, d: int) -> dt.datetime:
    return dt.datetime(y, m, d, 9, tzinfo=UTC)


NOK_2BN = "Norway will provide 2 billion Norwegian kroner in humanitarian aid to Ukraine.\n"
NOK_3BN = "Norway raised its humanitarian aid to Ukraine to 3 billion kroner, the government said."
NOK_3BN_AGAIN = "Norway's 3 billion kroner for Ukraine will go to the power grid."
DE = "Germany will raise its military aid for Ukraine from 8 billion euros to 11.5 billion euros."

ARTICLES = [
    dict(url=url("nor-1"), published_at=day(2025, 11, 20), text=NOK_2BN + "The Storting approved it.\n"),
    dict(url=url("nor-2"), published_at=day(2025, 12, 20), text="Oslo. " + NOK_3BN),
    # a syndicated copy of nor-2: the same statement, which must count once
    dict(url=url("nor-2-copy"), published_at=day(2025, 12, 21), text="Oslo. " + NOK_3BN, story_id=url("nor-2")),
    dict(url=url("nor-3"), published_at=day(2026, 1, 5), text=NOK_3BN_AGAIN),
    dict(url=url("de-1"), published_at=day(2025, 12, 2), text=DE),
]
B = 1e9
NOK = 11.8  # NOK per EUR in these rows


def nok(article: str, amount: float, evidence: str) -> dict:
    return dict(url=url(article), evidence=evidence, donor="Norway", recipient="Ukraine", amount=amount,
                currency="NOK", amount_eur=amount / NOK, kind="humanitarian")


PLEDGES = [
    nok("nor-1", 2 * B, NOK_2BN),
    nok("nor-2", 3 * B, NOK_3BN),
    nok("nor-2-copy", 3 * B, NOK_3BN),
    nok("nor-3", 3 * B, NOK_3BN_AGAIN),
    dict(url=url("de-1"), evidence=DE, donor="Germany", recipient="Ukraine", amount=11.5 * B, currency="EUR",
         amount_eur=11.5 * B, kind="military", previous_amount=8 * B),
]
POSITIONS = [dict(url=url("nor-1"), evidence="The Storting approved it.\n", actor="Norway", actor_group="Norway",
                  topic="military_aid_to_ukraine", stance="support")]


@pytest.fixture
def config(tmp_path, warehouse: Warehouse) -> Path:
    store_articles(warehouse, ARTICLES, pledges=PLEDGES, positions=POSITIONS)
    path = tmp_path / "newsmon.toml"
    path.write_text(f'[warehouse]\npath = "{warehouse.path}"\nlock_timeout_seconds = 30\n')
    return path


def sql(run_newsmon, config: Path, query: str) -> list[dict]:
    result = run_newsmon("sql", query, "--format", "json", "--config", config)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


# -- current_pledges -----------------------------------------------------------------------
def test_views_current_pledges_sum_counts_a_revised_pledge_once(run_newsmon, config):
    every_statement = sql(run_newsmon, config, "SELECT sum(amount) AS total FROM aid_pledges WHERE donor = 'Norway'")
    assert every_statement == [{"total": 11 * B}]  # 2 + 3 + 3 (copy) + 3: what the naive SUM gives
    totals = sql(run_newsmon, config, "SELECT donor, sum(amount) AS total, sum(amount_eur) AS eur FROM current_pledges "
                                  "GROUP BY donor ORDER BY donor")
    assert [(r["donor"], r["total"]) for r in totals] == [("Germany", 11.5 * B), ("Norway", 3 * B)]
    assert totals[1]["eur"] == pytest.approx(3 * B / NOK)


def test_views_current_pledges_name_the_pledge_they_replaced(run_newsmon, config):
    rows = {r["donor"]: r for r in sql(run_newsmon, config, "SELECT * FROM current_pledges")}
    norway = rows["Norway"]
    assert (norway["amount"], norway["currency"], norway["kind"], norway["url"]) == (3 * B, "NOK", "humanitarian",
                                                                                    url("nor-3"))
    assert (norway["replaced_amount"], norway["replaced_currency"], norway["replaced_url"]) == (2 * B, "NOK",
                                                                                                url("nor-1"))
    assert norway["replaced_amount_eur"] == pytest.approx(2 * B / NOK)
    assert norway["replaced_evidence"] == NOK_2BN.strip()
    assert norway["evidence"] == NOK_3BN_AGAIN
    # stated in nor-2 and nor-3; the syndicated copy of nor-2 is no confirmation
    assert (norway["confirmations"], norway["statements"]) == (2, 3)
    assert norway["standing_since"].startswith("2025-12-20")
    germany = rows["Germany"]  # a revision stated in its own sentence: "from 8 billion euros to 11.5"
    assert (germany["replaced_amount"], germany["replaced_url"], germany["replaced_amount_eur"]) == (
        8 * B, url("de-1"), 8 * B)


def test_views_pledges_as_of_a_past_moment(run_newsmon, config):
    rows = sql(run_newsmon, config, "SELECT donor, amount, replaced_amount FROM pledges_as_of(DATE '2025-12-10') "
                                "ORDER BY donor")
    assert rows == [{"donor": "Germany", "amount": 11.5 * B, "replaced_amount": 8 * B},
                    {"donor": "Norway", "amount": 2 * B, "replaced_amount": None}]
    assert sql(run_newsmon, config, "SELECT count(*) AS n FROM pledges_as_of(DATE '2025-01-01')") == [{"n": 0}]


def test_views_current_pledges_are_kept_per_kind(run_newsmon, config, warehouse):
    text = "Norway also pledged 1 billion kroner in military aid to Ukraine."
    store_articles(warehouse, [dict(url=url("nor-mil"), published_at=day(2026, 2, 1), text=text)],
                   pledges=[dict(nok("nor-mil", 1 * B, text), kind="military", claim_id="nor-mil")])
    rows = sql(run_newsmon, config, "SELECT kind, amount, replaced_amount FROM current_pledges WHERE donor = 'Norway' "
                                "ORDER BY kind")
    assert rows == [{"kind": "humanitarian", "amount": 3 * B, "replaced_amount": 2 * B},
                    {"kind": "military", "amount": 1 * B, "replaced_amount": None}]


# -- changes: EUR and aid kind -----------------------------------------------------------------
def test_views_aid_changes_carry_eur_kind_and_percent(run_newsmon, config, warehouse):
    settings = Settings(warehouse=WarehouseSettings(path=warehouse.path),
                        alerts=AlertSettings(recipients=["analyst@example.org"]))
    detect_changes.fn(settings, warehouse, "run-1")
    rows = sql(run_newsmon, config, "SELECT actor_group, old_value, new_value, aid_kind, old_amount_eur, new_amount_eur, "
                                "change_percent FROM changes WHERE kind = 'aid' ORDER BY actor_group")
    assert [(r["actor_group"], r["aid_kind"], r["change_percent"]) for r in rows] == [
        ("Germany", "military", 43.8), ("Norway", "humanitarian", 50.0)]
    assert (rows[0]["old_amount_eur"], rows[0]["new_amount_eur"]) == (8 * B, 11.5 * B)
    assert rows[1]["old_amount_eur"] == pytest.approx(2 * B / NOK)
    assert rows[1]["new_amount_eur"] == pytest.approx(3 * B / NOK)
    [evidence] = sql(run_newsmon, config, "SELECT old_evidence FROM changes WHERE actor_group = 'Norway'")
    assert evidence["old_evidence"] == NOK_2BN.strip()


# -- evidence ------------------------------------------------------------------------------------
@pytest.mark.parametrize("view", ["aid_pledges", "positions"])
def test_views_evidence_is_trimmed_and_its_offsets_follow(run_newsmon, config, view):
    rows = sql(run_newsmon, config, f"SELECT v.evidence, v.start_char, v.end_char, a.text FROM {view} v "
                                "JOIN articles a USING (url)")
    assert rows
    for r in rows:
        assert r["evidence"] == r["evidence"].strip()
        assert r["text"][r["start_char"]:r["end_char"]] == r["evidence"]


# -- topics and entities -----------------------------------------------------------------------------
TOPICS = textwrap.dedent("""\
    topics:
      frozen_assets_for_ukraine:
        description: using frozen Russian assets to fund Ukraine
        cues: [frozen assets, frozen Russian assets]
        examples: []
      {extra}
""")
ENTITIES = textwrap.dedent("""\
    countries:
    - name: Norway
      type: country
      wikidata: Q20
      aliases: [Kingdom of Norway]
      demonyms: [Norwegian]
      metonyms: [Oslo]
    - name: Ukraine
      type: country
      aliases: []
    people:
    - name: Espen Barth Eide
      type: person
      wikidata: Q1373523
      affiliation: Norway
      aliases: [Barth Eide]
""")


@pytest.fixture
def catalog_config(config: Path, tmp_path: Path) -> Path:
    (tmp_path / "topics.yaml").write_text(TOPICS.format(extra=""))
    (tmp_path / "entities.yaml").write_text(ENTITIES)
    config.write_text(config.read_text() + '\n[nlp]\ntopics = "topics.yaml"\nentities = "entities.yaml"\n')
    return config


def test_views_topics_and_entities_come_from_the_config_files(run_newsmon, catalog_config):
    topics = sql(run_newsmon, catalog_config, "SELECT topic, description, positions FROM topics")
    assert topics == [{"topic": "frozen_assets_for_ukraine",
                       "description": "using frozen Russian assets to fund Ukraine", "positions": 0}]
    entities = {r["entity"]: r for r in sql(run_newsmon, catalog_config, "SELECT * FROM entities")}
    assert set(entities) == {"Norway", "Ukraine", "Espen Barth Eide"}
    norway = entities["Norway"]
    assert (norway["entity_type"], norway["wikidata_id"], norway["wikidata_url"]) == (
        "country", "Q20", "https://www.wikidata.org/wiki/Q20")
    assert "Kingdom of Norway" in norway["aliases"]
    assert (norway["demonyms"], norway["metonyms"]) == (["Norwegian"], ["Oslo"])
    assert (entities["Ukraine"]["wikidata_id"], entities["Ukraine"]["wikidata_url"]) == (None, None)
    eide = entities["Espen Barth Eide"]
    assert (eide["entity_type"], eide["actor_group"], eide["wikidata_id"]) == ("person", "Norway", "Q1373523")


def test_views_topics_follow_an_edit_of_the_config_file(run_newsmon, catalog_config, tmp_path):
    assert len(sql(run_newsmon, catalog_config, "SELECT topic FROM topics")) == 1
    (tmp_path / "topics.yaml").write_text(TOPICS.format(extra=textwrap.dedent("""\
        ceasefire:
            description: an immediate ceasefire
            cues: [ceasefire]""").replace("\n", "\n  ")))
    rows = sql(run_newsmon, catalog_config, "SELECT topic, description FROM topics ORDER BY topic")
    assert rows == [{"topic": "ceasefire", "description": "an immediate ceasefire"},
                    {"topic": "frozen_assets_for_ukraine", "description": "using frozen Russian assets to fund Ukraine"}]


def test_views_topics_and_entities_are_filled_by_the_ingest_run(run_newsmon, tmp_path):
    """Straight after `newsmon ingest` (no read command between), the file holds the catalogs; an edit of
    topics.yaml reaches them at the next run, and a run with nothing edited rebuilds nothing."""
    import duckdb

    (tmp_path / "topics.yaml").write_text(TOPICS.format(extra=""))
    (tmp_path / "entities.yaml").write_text(ENTITIES)
    config = tmp_path / "newsmon.toml"
    config.write_text('[warehouse]\npath = "wh.duckdb"\n[nlp]\ntopics = "topics.yaml"\nentities = "entities.yaml"\n')

    def ingest_and_look() -> tuple[list[tuple], int, dict]:
        result = run_newsmon("ingest", "--config", config)
        assert result.code == 0, result.stderr
        with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
            topics = con.execute("SELECT topic, description FROM topics ORDER BY topic").fetchall()
            entities = con.execute("SELECT count(*) FROM entities").fetchone()[0]
            counts = json.loads(con.execute("SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0])
        return topics, entities, counts["catalogs"]

    topics, entities, done = ingest_and_look()
    assert topics == [("frozen_assets_for_ukraine", "using frozen Russian assets to fund Ukraine")]
    assert (entities, done) == (3, {"rebuilt": 1})
    assert ingest_and_look() == (topics, 3, {"rebuilt": 0})
    (tmp_path / "topics.yaml").write_text(TOPICS.format(extra=textwrap.dedent("""\
        ceasefire:
            description: an immediate ceasefire
            cues: [ceasefire]""").replace("\n", "\n  ")))
    topics, entities, done = ingest_and_look()
    assert topics[0] == ("ceasefire", "an immediate ceasefire") and len(topics) == 2
    assert done == {"rebuilt": 1}


def test_views_bundled_catalogs_are_loaded_whole(run_newsmon, config):
    """The default config's files: every topic with its description, every entity with its Wikidata id."""
    book = load_topics(ROOT / "config" / "topics.yaml")
    topics = {r["topic"]: r["description"] for r in sql(run_newsmon, config, "SELECT topic, description FROM topics")}
    assert topics == {t.id: t.description for t in book.topics.values()}
    catalog = load_catalog(ROOT / "config" / "entities.yaml")
    rows = {r["entity"]: r["wikidata_id"] for r in sql(run_newsmon, config, "SELECT entity, wikidata_id FROM entities")}
    assert rows == {name: info.wikidata for name, info in catalog.entities.items()}


def test_views_topic_of_a_position_joins_its_description(run_newsmon, config):
    [row] = sql(run_newsmon, config, "SELECT p.actor_group, t.description FROM positions p JOIN topics t USING (topic)")
    assert row == {"actor_group": "Norway", "description": "supplying weapons or military aid to Ukraine"}


# -- the public interface --------------------------------------------------------------------------
CONTRACT_COLUMNS = {
    "articles": ["url", "title", "published_at", "language", "text"],
    "article_entities": ["url", "entity", "entity_type", "mentions"],
    "aid_pledges": ["url", "published_at", "donor", "recipient", "amount", "currency", "kind", "previous_amount",
                    "evidence"],
    "positions": ["url", "published_at", "actor", "actor_group", "topic", "stance", "evidence"],
    "changes": ["kind", "actor_group", "subject", "old_value", "new_value", "old_amount", "new_amount", "currency",
                "old_url", "new_url", "detected_at"],
}


def views_listing(run_newsmon, config: Path, *args: str) -> list[dict]:
    result = run_newsmon("views", *args, "--format", "json", "--config", config)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_views_listing_shows_only_the_public_interface(run_newsmon, config):
    listed = views_listing(run_newsmon, config)
    names = {r["name"].split("(")[0] for r in listed}
    expected = {p.stem.split("_", 1)[1] for p in (ROOT / "warehouse" / "views").glob("*.sql")}
    assert expected | {"search_articles", "search_snippet", "pledges_as_of"} == names
    assert not names & {"feeds", "pledge_claims", "change_log", "article_texts", "derived_state", "schema_views"}
    assert all(not n.startswith("fts_") for n in names)


def test_views_every_public_view_and_column_has_a_comment(run_newsmon, config):
    for view in views_listing(run_newsmon, config):
        assert view["meaning"], f"{view['name']} has no comment"
        if view["kind"] != "view":
            continue
        columns = views_listing(run_newsmon, config, view["name"])
        missing = [c["column"] for c in columns if not c["meaning"]]
        assert not missing, f"{view['name']}: columns without a comment: {missing}"
        assert len(columns) == int(view["columns"])


def test_views_contract_columns_are_kept(run_newsmon, config):
    for view, needed in CONTRACT_COLUMNS.items():
        columns = [c["column"] for c in views_listing(run_newsmon, config, view)]
        assert set(needed) <= set(columns), view


def test_views_unknown_view_is_one_clear_line(run_newsmon, config):
    result = run_newsmon("views", "pledge_claims", "--config", config)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "no public view 'pledge_claims'" in result.stderr and "current_pledges" in result.stderr


# -- newsmon sql: lists in CSV, hints, refusals -------------------------------------------------------
def test_views_sql_csv_writes_lists_as_json_arrays(run_newsmon, config):
    import csv
    import io

    result = run_newsmon("sql", "SELECT participants, amount FROM events WHERE event_type = 'pledge' ORDER BY url",
                     "--format", "csv", "--config", config)
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [json.loads(r["participants"]) for r in rows][:2] == [["Germany", "Ukraine"], ["Norway", "Ukraine"]]


def test_views_sql_csv_lists_are_written_as_export_writes_them(run_newsmon, config, tmp_path):
    import csv
    import io

    query = "SELECT url, participants FROM events WHERE event_type = 'pledge' ORDER BY url"
    result = run_newsmon("sql", query, "--format", "csv", "--config", config)
    assert result.code == 0, result.stderr
    from_sql = {r["url"]: r["participants"] for r in csv.DictReader(io.StringIO(result.stdout))}
    out = tmp_path / "events.csv"
    exported = run_newsmon("export", "events", "--format", "csv", "--out", out, "--where", "event_type = 'pledge'",
                           "--config", config)
    assert exported.code == 0, exported.stderr
    with out.open(newline="") as f:
        from_export = {r["url"]: r["participants"] for r in csv.DictReader(f)}
    assert from_sql == from_export
    assert from_sql[url("de-1")] == '["Germany","Ukraine"]'


def test_views_sql_table_shows_lists_as_their_items(run_newsmon, config):
    result = run_newsmon("sql", "SELECT participants, [NULL, 'x'] AS odd, {'donor': 'Norway', 'n': 2} AS s, "
                                "[]::VARCHAR[] AS empty FROM events WHERE url = 'https://news.example/de-1' "
                                "AND event_type = 'pledge'", "--config", config)
    assert result.code == 0, result.stderr
    header, rule, row, count = result.stdout.strip().splitlines()
    cells = [c.strip() for c in row.split("|")]
    assert cells == ["Germany, Ukraine", "NULL, x", "{donor: Norway, n: 2}", ""]  # the empty list: an empty cell
    assert "['" not in result.stdout and "'" not in row
    assert count == "(1 row)"


def test_views_sql_error_keeps_duckdbs_hint(run_newsmon, config):
    result = run_newsmon("sql", "SELECT actr FROM positions", "--config", config)
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "actr" in result.stderr and '"actor"' in result.stderr  # DuckDB's candidate bindings


@pytest.mark.parametrize("statement, words", [
    ("INSTALL fts", ["refused: INSTALL", "search_articles"]),
    ("LOAD fts", ["refused: LOAD", "search_articles"]),
    ("COPY positions TO 'p.csv'", ["refused: COPY", "newsmon export"]),
])
def test_views_sql_refusals_say_what_and_why(run_newsmon, config, statement, words):
    result = run_newsmon("sql", statement, "--config", config)
    assert result.code == 2
    for w in words:
        assert w in result.stderr


def test_views_read_after_an_upgrade_brings_the_views_up_to_date(run_newsmon, config, warehouse):
    """A warehouse last migrated by an older newsmon (no current_pledges yet) is brought up to date by a read."""
    with warehouse.transaction() as con:
        con.execute("DROP VIEW current_pledges")
        con.execute("DROP MACRO TABLE pledges_as_of")
        con.execute("DELETE FROM schema_views WHERE name = '08_current_pledges.sql'")
    assert sql(run_newsmon, config, "SELECT donor FROM current_pledges ORDER BY donor") == [
        {"donor": "Germany"}, {"donor": "Norway"}]


# -- end to end: the bundled sample through a real ingest --------------------------------------
@pytest.mark.slow
def test_views_bundled_sample_end_to_end(run_newsmon, tmp_path):
    """`newsmon ingest` of the bundled sample, then the analyst's reads on what it stored."""
    import csv
    import os
    import subprocess
    import sys

    import shutil

    # a local feed's pages must lie in the config's folder: the sample is copied beside the config
    shutil.copytree(ROOT / "config" / "sample", tmp_path / "sample")
    sample = tmp_path / "sample" / "feeds"
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "news.duckdb"\n\n'
                      f'[[feeds]]\nname = "kyiv-ledger"\nurl = "{sample / "kyiv-ledger.xml"}"\n\n'
                      f'[[feeds]]\nname = "atlantic-wire"\nurl = "{sample / "atlantic-wire.atom"}"\n')
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "NO_COLOR": "1"}
    ingest = subprocess.run([str(Path(sys.executable).with_name("newsmon")), "ingest", "--config", str(config)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert ingest.returncode == 0, ingest.stdout[-3000:] + ingest.stderr[-3000:]

    hits = json.loads(run_newsmon("search", "frozen assets", "--format", "json", "--config", config).stdout)
    assert [h["title"] for h in hits] == ["Germany raises 2026 military aid for Ukraine"]
    assert "frozen Russian assets" in hits[0]["snippet"]

    # Norway's 2bn NOK raised to 3bn NOK: the obvious SUM gives 5bn on aid_pledges, 3bn here
    [norway] = sql(run_newsmon, config, "SELECT sum(amount) AS total, any_value(replaced_amount) AS replaced "
                                    "FROM current_pledges WHERE donor = 'Norway'")
    assert norway == {"total": 3e9, "replaced": 2e9}

    out = tmp_path / "changes.csv"
    assert run_newsmon("export", "changes", "--format", "csv", "--out", out, "--config", config).code == 0
    rows = {r["actor_group"]: r for r in csv.DictReader(out.open(newline="")) if r["kind"] == "aid"}
    assert (rows["Norway"]["aid_kind"], rows["Norway"]["change_percent"]) == ("humanitarian", "50.0")
    assert not any(r["new_evidence"].endswith("\n") for r in rows.values())
