"""The miner as a whole: its honest version, re-mining under new rules, `newsmon mine`, long texts."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows import stages
from newsmon.cli import app
from newsmon.errors import ConfigError
from newsmon.settings import NlpSettings, load_settings
from tasks.claims import RULE_MODULES, rules_version
from tasks.mine import CLAIM_FIELDS, Miner, miner_version, read_passages
from conftest import NLP_TOML, copy_domain
from tests.test_ingest import PAGES, serve_site
from warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]


def nlp_settings(nlp: Path) -> NlpSettings:
    return NlpSettings(entities=nlp / "entities.yaml", topics=nlp / "topics.yaml", money=nlp / "money.yaml",
                       fx=nlp / "fx.yaml", aid=nlp / "aid.yaml", lang=nlp / "lang")


# -- the version ---------------------------------------------------------------------
def test_mine_rules_version_changes_with_the_rules_code(tmp_path):
    copies = []
    for path in RULE_MODULES:
        copy = tmp_path / path.parent.name / path.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(path, copy)
        copies.append(copy)
    before = rules_version(copies)
    assert before == rules_version(RULE_MODULES)
    stance = next(c for c in copies if c.name == "stance.py")
    stance.write_text(stance.read_text().replace('return Stance("conditional"', 'return Stance("undecided"'))
    assert rules_version(copies) != before


@pytest.mark.parametrize("edited", ["lang/stance.yaml", "lang/discourse.yaml", "topics.yaml", "aid.yaml",
                                    "entities.yaml"])
def test_mine_version_changes_with_every_rule_file(tmp_path, edited):
    nlp = copy_domain(tmp_path)
    s = nlp_settings(nlp)
    before = miner_version(s, "model-1")
    with (nlp / edited).open("a") as f:
        f.write("\n# an edit\n")
    assert miner_version(s, "model-1") != before
    assert miner_version(s, "model-2") != miner_version(s, "model-1")   # a new model re-mines too


def test_mine_next_ingest_remines_stored_articles_after_a_rule_edit_without_download(site, tmp_path):
    nlp = copy_domain(tmp_path)
    feed = serve_site(site)
    config = tmp_path / "newsmon.toml"
    config.write_text('[warehouse]\npath = "news.duckdb"\n\n[fetch]\nallow_private_networks = true\n'
                      f'per_host_delay = 0\nretries = 0\n\n[[feeds]]\nname = "courier"\nurl = "{feed}"\n\n' + NLP_TOML)

    def run() -> dict:
        settings = load_settings(config)
        wh = Warehouse(settings.warehouse.path, 60)
        wh.migrate()
        run_id = str(uuid.uuid4())
        for stage in (stages.poll_feeds, stages.fetch_pages, stages.extract_articles):
            stage.fn(settings, wh, run_id)
        return stages.mine_articles.fn(settings, wh, run_id), wh

    first, wh = run()
    assert first["articles"] == 3
    versions = {r["extractor_version"] for r in wh.read("SELECT extractor_version FROM mined_articles")}
    assert len(versions) == 1
    hits = [len(site.hits(f"/{p}")) for p in PAGES]
    assert run()[0].get("articles", 0) == 0   # same rules: nothing to mine
    # an analyst adds a refusal idiom: the next ingest re-mines every stored article, downloading nothing
    stance = nlp / "lang" / "stance.yaml"
    stance.write_text(stance.read_text().replace("oppose: [", "oppose: [balk*, "))
    again, wh = run()
    assert again["articles"] == 3
    assert [len(site.hits(f"/{p}")) for p in PAGES] == hits
    now = {r["extractor_version"] for r in wh.read("SELECT extractor_version FROM mined_articles")}
    assert len(now) == 1 and now.isdisjoint(versions)
    for table in ("mentions", "position_claims", "pledge_claims", "meeting_claims"):
        stale = wh.read(f"SELECT count(*) AS n FROM {table} WHERE extractor_version <> ?", [next(iter(now))])
        assert stale == [{"n": 0}], table
    assert wh.read("SELECT count(*) AS n FROM mentions")[0]["n"] > 0


STAGE_TABLES = {"articles": "url, title, author, canonical_url, published_at, language, text, story_id",
                "mined_articles": "url, sentences", "mentions": "*", "position_claims": "*",
                "pledge_claims": "*", "meeting_claims": "*"}


def stage_rows(feed: str, work: Path, processes: int, early: bool = False) -> dict:
    """Every stored row after the poll, fetch, extract and mine stages over `feed` (texts mined one
    per batch); `early`: as a plain `newsmon ingest` runs them (`stages.RunHelpers`)."""
    work.mkdir()
    copy_domain(work)
    config = work / "newsmon.toml"
    config.write_text('[warehouse]\npath = "news.duckdb"\n\n[fetch]\nallow_private_networks = true\n'
                      f'per_host_delay = 0\nretries = 0\n\n[[feeds]]\nname = "courier"\nurl = "{feed}"\n\n'
                      + NLP_TOML + f"processes = {processes}\nbatch_size = 1\n")
    settings = load_settings(config)
    wh = Warehouse(settings.warehouse.path, 60)
    wh.migrate()
    run_id = str(uuid.uuid4())
    if early:
        with stages.RunHelpers(settings) as helpers:
            stages.poll_feeds.fn(settings, wh, run_id)
            assert helpers.mine_service._process is None
            stages.fetch_pages.fn(settings, wh, run_id, on_pending=helpers.start)
            assert helpers.mine_service._process is not None   # started before the download
            stages.extract_articles.fn(settings, wh, run_id, pool=helpers.extract_pool)
            counts = stages.mine_articles.fn(settings, wh, run_id, service=helpers.mine_service)
    else:
        for stage in (stages.poll_feeds, stages.fetch_pages, stages.extract_articles, stages.mine_articles):
            counts = stage.fn(settings, wh, run_id)
    assert counts["articles"] == len(PAGES)
    assert stages.mine_articles.fn(settings, wh, run_id).get("articles", 0) == 0   # all mined, once
    return {t: wh.read(f"SELECT {cols} FROM {t} ORDER BY ALL") for t, cols in STAGE_TABLES.items()}


def test_mine_and_extract_stages_on_two_processes_store_what_one_stores(site, tmp_path):
    """nlp.processes = 2: a forked helper extracts and mines beside the run (pieces of one text
    here, so every chunk is shared); every stored row is the one a single process stores."""
    feed = serve_site(site)
    one, two = stage_rows(feed, tmp_path / "one", 1), stage_rows(feed, tmp_path / "two", 2)
    assert len(one["articles"]) == len(PAGES) and len(one["mined_articles"]) == len(PAGES) and one["mentions"]
    assert two == one


@pytest.mark.slow  # forks a mining process that loads the model
def test_mine_plain_run_helpers_started_early_store_what_one_process_stores(site, tmp_path):
    """A plain run forks its extraction helpers and its mining process (which loads the model while
    the pages download) once pages are due: with one process or two, it stores the same rows."""
    feed = serve_site(site)
    one = stage_rows(feed, tmp_path / "one", 1)
    assert one["mentions"] and one["mined_articles"]
    assert stage_rows(feed, tmp_path / "early1", 1, early=True) == one
    assert stage_rows(feed, tmp_path / "early2", 2, early=True) == one


# -- newsmon mine -----------------------------------------------------------------------
PASSAGES = [
    {"id": "a", "text": "Germany pledged €500m in military aid to Ukraine on Monday, Chancellor Olaf Scholz said.",
     "published_at": "2025-03-11T12:00:00Z"},
    {"id": "b", "text": "The weather in Kyiv was cold."},
    {"id": "c", "text": "Hungary's Viktor Orban rejected calls for a ceasefire."},
]


def test_mine_cli_jsonl_writes_one_contract_record_per_claim():
    stdin = "\n".join(json.dumps(p) for p in PASSAGES) + "\n"
    result = CliRunner().invoke(app, ["mine", "--format", "jsonl", "-"], input=stdin)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert records and all(tuple(r) == CLAIM_FIELDS for r in records)
    aid = [r for r in records if r["type"] == "aid"]
    assert [(r["id"], r["donor"], r["recipient"], r["amount"], r["currency"], r["kind"]) for r in aid] == \
        [("a", "Germany", "Ukraine", 500_000_000.0, "EUR", "military")]
    assert aid[0]["evidence"] == PASSAGES[0]["text"]
    assert aid[0]["actor"] is None and aid[0]["topic"] is None   # fields that do not apply are null
    assert not [r for r in records if r["id"] == "b"]
    assert ("c", "Hungary", "ceasefire", "oppose") in {(r["id"], r["actor_group"], r["topic"], r["stance"])
                                                       for r in records if r["type"] == "position"}


def test_mine_cli_table_shows_the_evidence():
    stdin = json.dumps(PASSAGES[0]) + "\n"
    result = CliRunner().invoke(app, ["mine", "-"], input=stdin)
    assert result.exit_code == 0, result.output
    assert "500,000,000 EUR" in result.stdout and "Olaf Scholz said" in result.stdout


@pytest.mark.parametrize("line, message", [
    ("not json", "not a JSON object"),
    ('{"id": 1}', 'needs "text"'),
    ('{"id": 1, "text": "x", "published_at": "yesterday"}', "not an ISO date"),
])
def test_mine_bad_passage_is_a_clear_error(line, message):
    with pytest.raises(ConfigError, match=message):
        list(read_passages([line]))


@pytest.fixture(scope="module")
def miner() -> Miner:
    return Miner.from_settings(NlpSettings())


def test_mine_text_longer_than_the_cap_is_mined_up_to_a_paragraph_break(miner):
    para = "Germany pledged €500m in military aid to Ukraine on Monday, Chancellor Olaf Scholz said.\n"
    text = para * 30 + "Hungary's Viktor Orban rejected calls for a ceasefire.\n" + "x " * 300
    small = dataclasses.replace(miner, max_chars=len(para) * 30 + 10)
    rows, mined = small.mine([dict(url="u", text=text, language="en", published_at=None)])
    assert rows["pledge_claims"]
    assert all(r["topic"] != "ceasefire" for r in rows["position_claims"])   # past the cap
    assert max(r["end_char"] for r in rows["pledge_claims"]) <= small.max_chars
    assert mined[0]["sentences"] == 30


def test_mine_article_over_spacys_length_limit_is_mined_with_the_rest_of_its_batch(miner):
    """Issue 9: one article of 1.2 M characters (over spaCy's max_length, 1,000,000) raised E088, so
    nothing in its batch was mined, on every later run. Here it sits in a batch beside a healthy
    article, with the default cap: both are mined, the long one up to the cap. (The filler is white
    space, which spaCy parses cheaply: E088 looks only at the length.)"""
    para = "Germany pledged €500m in military aid to Ukraine on Monday, Chancellor Olaf Scholz said.\n"
    articles = [dict(url="long", text=para + " " * 1_200_000, language="en", published_at=None),
                dict(url="healthy", text=para, language="en", published_at=None)]
    assert len(articles[0]["text"]) > 1_000_000
    rows, mined = miner.mine(articles)
    assert [m["url"] for m in mined] == ["long", "healthy"]
    assert sorted(r["url"] for r in rows["pledge_claims"]) == ["healthy", "long"]


# -- the version without spaCy, mining on several processes ----------------------------------
def test_mine_current_version_is_the_loaded_miners_without_spacy(miner):
    from tasks import claims, mine, nlp

    assert mine.rule_modules() == claims.RULE_MODULES
    assert mine.LEXICON_FILES == claims.LEXICON_FILES and mine.MODEL == nlp.MODEL
    assert mine.current_version(NlpSettings()) == miner.version


def test_mine_current_version_changes_with_a_domain_file(tmp_path):
    nlp = copy_domain(tmp_path)
    settings = NlpSettings(**{n: nlp / f"{n}.yaml" for n in ("entities", "topics", "money", "fx", "aid")})
    from tasks.mine import current_version

    before = current_version(settings)
    with (nlp / "aid.yaml").open("a", encoding="utf-8") as f:
        f.write("\n# edited\n")
    assert current_version(settings) != before


def sample_articles() -> list[dict]:
    """The bundled sample's pages and a few passages: a fixed set of texts with every kind of claim."""
    from tasks.extract import extract_article

    texts = [extract_article(p.read_bytes(), f"https://sample.invalid/{p.name}").text
             for p in sorted((ROOT / "config" / "sample" / "pages").glob("*.html"))]
    texts += ["Germany pledged €500m in military aid to Ukraine on Monday, Chancellor Olaf Scholz said.",
              "Hungary's Viktor Orban rejected calls for a ceasefire.",
              "Zelenskyy met Macron in Paris on Tuesday to discuss security guarantees.",
              "Die Regierung hat neue Hilfen angekündigt."]
    return [dict(url=f"text:{i}", text=t, language="de" if t.startswith("Die ") else "en",
                 published_at=dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)) for i, t in enumerate(texts)]


@pytest.mark.slow  # starts helper processes (a spawned one imports spaCy and loads the model)
@pytest.mark.parametrize("fork", [True, False], ids=["forked helpers", "spawned helpers"])
@pytest.mark.parametrize("processes", [2, 3])
def test_mine_several_processes_mine_exactly_what_one_does(miner, monkeypatch, fork, processes):
    from tasks import mine
    from tasks.mine import mine_chunks

    monkeypatch.setattr(mine, "WORKER_CHUNKS", 1)   # a fresh helper for every piece: replacements change nothing
    articles = sample_articles()
    chunks = [articles[i:i + 3] for i in range(0, len(articles), 3)]
    # pieces of one text: helpers and this process share every chunk, and this process finishes a
    # piece while a helper still mines an earlier one of the same chunk
    miner = dataclasses.replace(miner, batch_size=1)

    def mined(processes: int) -> str:
        out = [(batch, rows, [dict(m, mined_at=None) for m in rows_mined])
               for batch, rows, rows_mined in mine_chunks(NlpSettings(), iter(chunks), processes, miner=miner,
                                                          fork=fork)]
        return json.dumps(out, default=str, sort_keys=True)

    one, several = mined(1), mined(processes)
    rows = json.loads(several)
    for batch, _, rows_mined in rows:   # each chunk comes back whole, with every one of its articles
        assert [m["url"] for m in rows_mined] == [a["url"] for a in batch]
    assert one == several
    assert [len(batch) for batch, _, _ in rows] == [3, 3, 2]
    assert all(any(r[t] for _, r, _ in rows) for t in ("mentions", "pledge_claims", "position_claims",
                                                        "meeting_claims"))


@pytest.mark.slow  # forks a mining process that loads the model
@pytest.mark.parametrize("processes", [1, 2])
def test_mine_service_mines_exactly_what_one_process_does(miner, processes):
    """The mining process (`MineService`: a fork that loads its own Miner and mines with `processes`
    processes) sends back, chunk by chunk and in order, the rows this process mines itself."""
    from tasks.mine import MineService, mine_chunks

    articles = sample_articles()
    chunks = [articles[i:i + 3] for i in range(0, len(articles), 3)]
    settings = NlpSettings(batch_size=1)

    def dumped(results) -> str:
        return json.dumps([(batch, rows, [dict(m, mined_at=None) for m in mined]) for batch, rows, mined in results],
                          default=str, sort_keys=True)

    here = dumped(mine_chunks(settings, iter(chunks), 1, miner=dataclasses.replace(miner, batch_size=1)))
    with MineService(settings, processes) as service:
        there = dumped(service.mine_chunks(iter(chunks)))
        assert service._process is None   # done: the mining process has exited
        assert dumped(service.mine_chunks(iter(chunks[:1]))) == dumped(json.loads(here)[:1])   # and restarts
    assert there == here
    assert [len(batch) for batch, _, _ in json.loads(there)] == [3, 3, 2]


def test_mine_service_with_nothing_to_mine_starts_nothing():
    from tasks.mine import MineService

    service = MineService(NlpSettings(), 2)
    assert list(service.mine_chunks(iter([]))) == []
    assert service._process is None


@pytest.mark.slow  # forks a mining process
def test_mine_service_killed_is_an_error_of_the_stage_not_a_hang():
    """A mining process that dies (the OOM killer, a kill -9) fails the mining call at once with
    MineServiceError; the articles it held are simply not returned (they stay pending)."""
    import os
    import signal

    from tasks.mine import MineService, MineServiceError

    articles = sample_articles()
    with MineService(NlpSettings(), 1) as service:
        service.start()
        os.kill(service._process.pid, signal.SIGKILL)
        service._process.join(timeout=10)
        got = []
        with pytest.raises(MineServiceError, match="gone"):
            for item in service.mine_chunks(iter([articles[:3], articles[3:6]])):
                got.append(item)
        assert got == []
        assert service._process is None


@pytest.mark.slow  # a Python process that forks a mining process and its helper
def test_mine_service_and_its_helpers_end_when_the_run_is_killed(tmp_path):
    """kill -9 of the run while its mining process and helper work: neither is left behind."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(f"""
import multiprocessing, os, signal, sys
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})
from newsmon.settings import NlpSettings
from tasks.mine import MineService
from test_mine import sample_articles
articles = sample_articles()
service = MineService(NlpSettings(batch_size=1), 2)
for _ in service.mine_chunks(iter([articles] * 40)):
    kids = multiprocessing.active_children()
    os.system("pgrep -P %d > {tmp_path / 'pids'}" % service._process.pid)
    print(service._process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    pids = [int(proc.stdout.split()[0])] + [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2   # the mining process and its helper were at work

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ")[-1][0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 20
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


@pytest.mark.slow  # forks a mining process
def test_mine_service_error_in_the_mining_process_names_it():
    """A Miner that cannot be built there (a bad domain file) is reported with its own message."""
    from tasks.mine import MineService, MineServiceError

    settings = NlpSettings(entities=ROOT / "config" / "no-such-entities.yaml")
    with MineService(settings, 1) as service:
        with pytest.raises(MineServiceError, match="no-such-entities"):
            list(service.mine_chunks(iter([sample_articles()[:2]])))


def test_mine_split_chunk_cuts_pieces_of_batch_size_mined_texts():
    from tasks.mine import split_chunk

    chunk = [dict(url=str(i), language=lang) for i, lang in enumerate(["en", "de", "en", "en", None, "fr", "en"])]
    pieces = split_chunk(chunk, 2)
    assert [[a["url"] for a in p] for p in pieces] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert split_chunk(chunk[:1], 8) == [chunk[:1]]


def test_mine_processes_setting_is_validated(tmp_path):
    cfg = tmp_path / "newsmon.toml"
    cfg.write_text("[nlp]\nprocesses = 0\n")
    with pytest.raises(ConfigError, match="nlp.processes"):
        load_settings(cfg)
    cfg.write_text("[nlp]\nprocesses = 1\n[warehouse]\nmemory_limit = \"lots\"\n")
    with pytest.raises(ConfigError, match="warehouse.memory_limit"):
        load_settings(cfg)
    cfg.write_text("[nlp]\nprocesses = 1\n[warehouse]\nmemory_limit = \"256MB\"\n")
    settings = load_settings(cfg)
    assert (settings.nlp.processes, settings.warehouse.memory_limit) == (1, "256MB")


def test_mine_batch_size_changes_memory_not_claims(miner):
    articles = sample_articles()
    one, many = dataclasses.replace(miner, batch_size=1), dataclasses.replace(miner, batch_size=64)
    rows_one, _ = one.mine(articles)
    rows_many, _ = many.mine(articles)
    assert rows_one == rows_many and rows_one["position_claims"]


def test_a_frame_with_an_unknown_key_is_a_config_error(tmp_path):
    from tasks.topics import load_topics
    path = tmp_path / "topics.yaml"
    path.write_text("topics:\n  t:\n    cues: [x]\n    frames:\n      - {predicates: [leave], arguments: [land], agent: [x]}\n")
    with pytest.raises(ConfigError, match="unknown key 'agent'"):
        load_topics(path)


def test_mine_pipeline_tokens_are_the_models_own_and_the_text_is_joined_once(miner):
    """The pipeline's tokenizer hands out ArticleDocs (text kept after the first join): the same tokens,
    spaces and norms as the model's own tokenizer, including special cases ("don't" -> do + n't/not)."""
    import spacy
    from spacy.attrs import IDX, NORM, ORTH, SPACY

    from tasks.nlp import MODEL, ArticleDoc

    plain = spacy.load(MODEL, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"])
    for text in ["Zelensky said they don't want talks.\n\nRussia's envoy pledged $5bn —  “No.”", "", "  \n", "🙂 ok"]:
        doc = miner.nlp(text)
        assert isinstance(doc, ArticleDoc) and doc.text == text == "".join(t.text_with_ws for t in doc)
        made, ref = miner.nlp.make_doc(text), plain.make_doc(text)   # NORM before the pipeline's components
        assert isinstance(made, ArticleDoc)
        assert made.to_array([ORTH, NORM, SPACY, IDX]).tolist() == ref.to_array([ORTH, NORM, SPACY, IDX]).tolist()
    doc = miner.nlp("Peace talks resumed. They failed.")
    assert doc.text is doc.text and [s.text for s in doc.sents] == ["Peace talks resumed.", "They failed."]
