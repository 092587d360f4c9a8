"""tasks.changes: which claims make a change, and how the change log follows late articles.

The rules are tested on plain rows (as the `positions` / `aid_pledges` views give
them); the change log on a real DuckDB file, through the `detect_changes` task.
"""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from flows.notify import detect_changes
from newsmon.settings import AlertSettings, Settings, WarehouseSettings
from tasks.changes import (
    Change, aid_changes, change_id, compute_changes, diff_changes, first_copies, format_amount,
    position_changes,
)
from tasks.money import FxTable
from warehouse import Warehouse
from warehouse.db import insert_rows

UTC = dt.timezone.utc
B = 1e9


def day(n: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, 12, tzinfo=UTC) + dt.timedelta(days=n)


def url(name: str) -> str:
    return f"https://news.example/{name}.html"


def pos(article: str, when: int, stance: str, *, group: str = "France", topic: str = "direct_talks_with_putin",
        story: str | None = None, index: int = 0) -> dict:
    return dict(url=url(article), published_at=day(when), story_id=story and url(story),
                claim_id=f"p-{article}-{index}-{group}", actor=group, actor_group=group, topic=topic,
                stance=stance, evidence=f"{group} says {stance} in {article}.", sentence_index=index)


def pledge(article: str, when: int, amount: float, currency: str = "EUR", *, eur: float | None = None,
           previous: float | None = None, donor: str = "Germany", recipient: str = "Ukraine",
           story: str | None = None, index: int = 0) -> dict:
    return dict(url=url(article), published_at=day(when), story_id=story and url(story),
                claim_id=f"a-{article}-{index}-{donor}", donor=donor, recipient=recipient, amount=amount,
                currency=currency, amount_eur=amount if currency == "EUR" else eur, previous_amount=previous,
                evidence=f"{donor} pledges {amount:g} {currency} to {recipient} ({article}).", sentence_index=index)


# -- positions ---------------------------------------------------------------------
def test_changes_position_change_keeps_both_claims():
    a, b = pos("a", 0, "oppose"), pos("b", 5, "conditional")
    [c] = position_changes([b, a])  # input order does not matter: publication order does
    assert (c.kind, c.actor_group, c.subject, c.old_value, c.new_value) == (
        "position", "France", "direct_talks_with_putin", "oppose", "conditional")
    assert (c.old_url, c.new_url) == (a["url"], b["url"])
    assert (c.old_claim_id, c.new_claim_id) == (a["claim_id"], b["claim_id"])
    assert (c.old_evidence, c.new_evidence) == (a["evidence"], b["evidence"])
    assert (c.old_published_at, c.new_published_at) == (day(0), day(5))


@pytest.mark.parametrize("stances, expected", [
    (["support", "support"], []),
    (["support", "support", "oppose", "oppose"], [("support", "oppose")]),
    (["support", "oppose", "support"], [("support", "oppose"), ("oppose", "support")]),
    (["undecided"], []),
])
def test_changes_repeated_stance_is_no_change(stances, expected):
    rows = [pos(f"s{i}", i, s) for i, s in enumerate(stances)]
    assert [(c.old_value, c.new_value) for c in position_changes(rows)] == expected


def test_changes_positions_are_tracked_per_group_and_topic():
    rows = [pos("a", 0, "support"), pos("b", 1, "oppose", group="Hungary"),
            pos("c", 2, "oppose", topic="ukraine_nato_membership"), pos("d", 3, "support")]
    assert position_changes(rows) == []


def test_changes_order_within_an_article_is_the_sentence_order():
    rows = [pos("a", 0, "oppose", index=7), pos("a", 0, "support", index=2)]
    [c] = position_changes(rows)
    assert (c.old_value, c.new_value) == ("support", "oppose")


def test_changes_syndicated_copy_is_no_change():
    original = pos("b", 3, "oppose")
    copy = pos("b-copy", 4, "oppose", story="b")
    edited_copy = pos("b-copy2", 6, "support", story="b")  # mined differently: still only a copy
    rows = [pos("a", 0, "support"), original, copy, edited_copy]
    [c] = position_changes(rows)
    assert (c.old_value, c.new_value, c.new_url) == ("support", "oppose", original["url"])


def test_changes_earliest_copy_counts_even_when_it_arrives_late():
    # the copy stored first got story_id = itself; the earlier original arrived later
    rows = [dict(url=url("copy"), story_id=url("copy"), published_at=day(5)),
            dict(url=url("orig"), story_id=url("copy"), published_at=day(2))]
    assert first_copies(rows) == {url("orig")}


# -- aid -----------------------------------------------------------------------------
FX = FxTable(rates={"USD": ((dt.date(2023, 1, 1), 1.10),)})


@pytest.mark.parametrize("old, new, changed", [
    (pledge("a", 0, 100 * B), pledge("b", 1, 110 * B), False),       # exactly 10 %: not more than
    (pledge("a", 0, 100 * B), pledge("b", 1, 111 * B), True),
    (pledge("a", 0, 100 * B), pledge("b", 1, 89 * B), True),         # cuts count too
    (pledge("a", 0, 100 * B), pledge("b", 1, 100 * B), False),       # repeated amount
    # across currencies the EUR values decide, not the figures
    (pledge("a", 0, 100 * B, "USD", eur=92 * B), pledge("b", 1, 95 * B), False),
    (pledge("a", 0, 100 * B, "USD", eur=90 * B), pledge("b", 1, 100 * B), True),
    # no amount_eur stored: the FX table converts (100 USD = 90.9 EUR)
    (pledge("a", 0, 100 * B, "USD"), pledge("b", 1, 95 * B), False),
    (pledge("a", 0, 100 * B, "USD"), pledge("b", 1, 101 * B), True),
])
def test_changes_aid_threshold_is_ten_percent_in_eur(old, new, changed):
    found = aid_changes([old, new], fx=FX)
    assert bool(found) is changed
    if changed:
        [c] = found
        assert (c.old_amount, c.new_amount) == (old["amount"], new["amount"])
        assert (c.old_currency, c.currency) == (old["currency"], new["currency"])
        assert (c.old_url, c.new_url) == (old["url"], new["url"])


def test_changes_aid_threshold_is_configurable():
    rows = [pledge("a", 0, 100 * B), pledge("b", 1, 120 * B)]
    assert aid_changes(rows, threshold=0.25) == []
    assert len(aid_changes(rows, threshold=0.10)) == 1


def test_changes_aid_is_tracked_per_donor_and_recipient():
    rows = [pledge("a", 0, 4 * B), pledge("b", 1, 50 * B, donor="European Union"),
            pledge("c", 2, 1 * B, recipient="Moldova"), pledge("d", 3, 4.1 * B)]
    assert aid_changes(rows) == []


def test_changes_self_stated_revision_is_a_change_on_first_sight():
    row = pledge("a", 0, 8 * B, previous=4 * B)
    [c] = aid_changes([row])
    assert (c.old_amount, c.new_amount, c.old_value, c.new_value) == (4 * B, 8 * B, "€4bn", "€8bn")
    assert c.old_url == c.new_url == row["url"] and c.old_claim_id == c.new_claim_id


def test_changes_self_stated_revision_uses_the_earlier_claim_as_before_evidence():
    earlier, revised = pledge("a", 0, 4 * B), pledge("b", 9, 8 * B, previous=4 * B)
    [c] = aid_changes([earlier, revised])
    assert (c.old_url, c.old_claim_id, c.new_url) == (earlier["url"], earlier["claim_id"], revised["url"])


def test_changes_self_stated_revision_below_threshold_is_no_change():
    assert aid_changes([pledge("a", 0, 105 * B, previous=100 * B)]) == []


def test_changes_self_stated_revision_wins_over_the_last_amount():
    # last seen 8bn, the sentence says "from 7.5bn to 8bn": 6.7 % is no change
    assert aid_changes([pledge("a", 0, 8 * B), pledge("b", 1, 8 * B, previous=7.5 * B)]) == []


# -- ids, order, diff -------------------------------------------------------------------
def test_changes_ids_are_deterministic_and_mixed_in_publication_order():
    rows_p = [pos("a", 0, "support"), pos("c", 2, "oppose")]
    rows_a = [pledge("a", 0, 4 * B), pledge("b", 1, 8 * B)]
    first = compute_changes(rows_p, rows_a)
    again = compute_changes(list(reversed(rows_p)), list(reversed(rows_a)))
    assert [c.change_id for c in first] == [c.change_id for c in again]
    assert [c.kind for c in first] == ["aid", "position"]  # published day 1, then day 2
    assert first[1].change_id == change_id("position", "France", "direct_talks_with_putin", "support", "oppose",
                                           url("a"), url("c"))


def test_changes_format_amount():
    assert format_amount(90 * B, "EUR") == "€90bn"
    assert format_amount(800e6, "USD") == "$800m"
    assert format_amount(135 * B, "NOK") == "NOK 135bn"
    assert format_amount(2.5e9, "GBP") == "£2.5bn"
    assert format_amount(250_000, "EUR") == "€250,000"


def test_changes_diff_inserts_retracts_and_restores():
    a, b, c = (Change(change_id=i, kind="position", actor_group="France", subject="t", old_value="support",
                      new_value=v, new_claim_id=i, new_url=url(i)) for i, v in [("x", "oppose"), ("y", "oppose"),
                                                                                    ("z", "undecided")])
    stored = [dict(change_id="x", kind="position", actor_group="France", subject="t", old_value="support",
                   new_value="oppose", retracted_at=None),
              dict(change_id="z", kind="position", actor_group="France", subject="t", old_value="support",
                   new_value="undecided", retracted_at=day(0)),
              dict(change_id="gone", kind="position", actor_group="France", subject="t", old_value="oppose",
                   new_value="support", retracted_at=None)]
    d = diff_changes([a, b, c], stored)
    assert [x.change_id for x in d.new] == ["y"]
    assert [x.change_id for x in d.restored] == ["z"]
    assert d.retracted == ["gone"] and d.unchanged == 1
    assert d.supersedes == {}  # "gone" says something else than "y"


# -- the change log on a real warehouse -------------------------------------------------
def add_articles(wh: Warehouse, positions: list[dict] = (), pledges: list[dict] = ()) -> None:
    """Store claim rows (as made by `pos` / `pledge`) with their articles, as mining would."""
    now = dt.datetime.now(UTC)
    articles = {}
    for r in [*positions, *pledges]:
        articles[r["url"]] = dict(url=r["url"], title=f"Title of {r['url']}", published_at=r["published_at"],
                                  story_id=r["story_id"], text=r["evidence"],
                                  text_sha256=hashlib.sha256(r["url"].encode()).hexdigest(),
                                  extractor_version="test", extracted_at=now)
    common = dict(start_char=0, end_char=10, extractor_version="test")
    with wh.transaction() as con:
        insert_rows(con, "article_texts", list(articles.values()), on_conflict="replace")
        insert_rows(con, "position_claims", [dict(common, claim_id=r["claim_id"], url=r["url"],
                                                  sentence_index=r["sentence_index"], evidence=r["evidence"],
                                                  actor=r["actor"], actor_group=r["actor_group"],
                                                  topic=r["topic"], stance=r["stance"]) for r in positions])
        insert_rows(con, "pledge_claims", [dict(common, claim_id=r["claim_id"], url=r["url"],
                                                sentence_index=r["sentence_index"], evidence=r["evidence"],
                                                donor=r["donor"], recipient=r["recipient"], amount=r["amount"],
                                                currency=r["currency"], amount_eur=r["amount_eur"],
                                                previous_amount=r["previous_amount"], kind="financial")
                                           for r in pledges])


@pytest.fixture
def settings(warehouse: Warehouse) -> Settings:
    return Settings(warehouse=WarehouseSettings(path=warehouse.path),
                    alerts=AlertSettings(recipients=["analyst@example.org"]))


def test_changes_rerun_is_idempotent(warehouse, settings):
    add_articles(warehouse, [pos("a", 0, "support"), pos("b", 1, "oppose")], [pledge("a", 0, 4 * B),
                                                                           pledge("b", 1, 8 * B)])
    first = detect_changes.fn(settings, warehouse, "run-1")
    again = detect_changes.fn(settings, warehouse, "run-2")
    assert (first["new"], first["queued"]) == (2, 2)
    assert (again["new"], again["retracted"], again["queued"], again["unchanged"]) == (0, 0, 0, 2)
    rows = warehouse.read("SELECT kind, old_amount, new_amount, currency, old_currency FROM changes ORDER BY kind")
    assert rows[0] == dict(kind="aid", old_amount=4 * B, new_amount=8 * B, currency="EUR", old_currency="EUR")


def test_changes_late_article_retracts_and_adds(warehouse, settings):
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose"), pos("apr", 90, "support")])
    detect_changes.fn(settings, warehouse, "run-1")
    before = warehouse.read("SELECT change_id, old_url, new_url FROM changes ORDER BY new_published_at")
    assert [(r["old_url"], r["new_url"]) for r in before] == [(url("jan"), url("mar")), (url("mar"), url("apr"))]

    # February's article arrives late: it said "oppose" first, and April's change now starts from it
    add_articles(warehouse, [pos("feb", 30, "oppose")])
    counts = detect_changes.fn(settings, warehouse, "run-2")
    assert (counts["new"], counts["retracted"], counts["unchanged"]) == (1, 1, 1)

    after = warehouse.read("SELECT change_id, old_value, new_value, old_url, new_url FROM changes "
                           "ORDER BY new_published_at")
    assert [(r["old_value"], r["new_value"], r["old_url"], r["new_url"]) for r in after] == [
        ("support", "oppose", url("jan"), url("feb")), ("oppose", "support", url("mar"), url("apr"))]
    log = warehouse.read("SELECT change_id, retracted_at FROM change_log")
    assert len(log) == 3  # retracted, never deleted
    retracted = [r["change_id"] for r in log if r["retracted_at"] is not None]
    assert retracted == [before[0]["change_id"]]
    # its alert was never sent: it is dropped, the new change is due
    alerts = {r["change_id"]: r["status"] for r in warehouse.read("SELECT change_id, status FROM alerts")}
    assert alerts[before[0]["change_id"]] == "retracted"
    assert alerts[after[0]["change_id"]] == "due"


def test_changes_retracted_change_produced_again_is_restored(warehouse, settings):
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-1")
    [original] = warehouse.read("SELECT change_id FROM changes")
    add_articles(warehouse, [pos("feb", 30, "oppose")])
    detect_changes.fn(settings, warehouse, "run-2")
    with warehouse.transaction() as con:  # February's article is re-mined: no claim after all
        con.execute("DELETE FROM position_claims WHERE url = ?", [url("feb")])
    counts = detect_changes.fn(settings, warehouse, "run-3")
    assert (counts["restored"], counts["retracted"]) == (1, 1)
    assert warehouse.read("SELECT change_id FROM changes") == [original]
    assert warehouse.read("SELECT status FROM alerts WHERE change_id = ?", [original["change_id"]]) == [
        dict(status="due")]


def test_changes_recipient_filters_decide_what_is_queued(warehouse):
    settings = Settings(warehouse=WarehouseSettings(path=warehouse.path), alerts=AlertSettings(recipients=[
        "all@example.org",
        dict(address="aid@example.org", kinds=["aid"], min_aid_change=0.5),
        dict(address="hu@example.org", groups=["Hungary"]),
        dict(address="talks@example.org", topics=["direct talks with putin"]),
    ]))
    add_articles(warehouse, [pos("a", 0, "support"), pos("b", 1, "oppose")],
                 [pledge("a", 0, 4 * B), pledge("b", 1, 5 * B), pledge("c", 2, 10 * B)])
    detect_changes.fn(settings, warehouse, "run-1")
    got = warehouse.read("SELECT recipient, kind, new_value FROM alerts ORDER BY recipient, kind, new_value")
    assert [(r["recipient"], r["kind"], r["new_value"]) for r in got] == [
        ("aid@example.org", "aid", "€10bn"),
        ("all@example.org", "aid", "€10bn"), ("all@example.org", "aid", "€5bn"),
        ("all@example.org", "position", "oppose"),
        ("talks@example.org", "position", "oppose"),
    ]


def test_changes_streamed_from_the_warehouse_equal_the_changes_of_all_claims(warehouse):
    """detect_changes streams the first copies' claims in publication order from DuckDB
    (`first_copy_claims` + `compute_changes_ordered`): the same changes as `compute_changes` over every
    claim and article, here with syndicated copies (the later-stored copy published first), undated
    articles, ties on the publication time, several claims per article and mixed currencies."""
    import random

    from tasks.changes import compute_changes_ordered
    from warehouse import outbox as ob

    rng = random.Random(7)
    stances = ["support", "oppose", "conditional", "undecided"]
    positions, pledges = [], []
    for n in range(60):
        article = f"art{n:02d}"
        when = rng.choice([rng.randint(0, 40), 3])               # many on day 3: ties broken by URL
        story = f"art{rng.randint(0, n):02d}" if rng.random() < 0.3 else None
        for index in range(rng.randint(1, 3)):
            group = rng.choice(["France", "Germany", "Russia"])
            positions.append(pos(article, when, rng.choice(stances), group=group, story=story, index=index,
                                 topic=rng.choice(["direct_talks_with_putin", "ceasefire"])))
            if rng.random() < 0.5:
                currency = rng.choice(["EUR", "EUR", "USD"])
                pledges.append(pledge(article, when, rng.choice([1, 2, 4, 4.2, 8]) * B, currency,
                                      eur=rng.choice([None, 3.5 * B]), donor=group, story=story, index=index,
                                      previous=rng.choice([None, None, 2 * B])))
    undated = {url(f"art{n:02d}") for n in (5, 17, 33)}
    for row in [*positions, *pledges]:
        if row["url"] in undated:
            row["published_at"] = None
    add_articles(warehouse, positions, pledges)
    with warehouse.connect(read_only=True) as con:
        all_positions, all_pledges, articles = ob.claims_for_changes(con)
        expected = compute_changes(all_positions, all_pledges, articles=articles, fx=None)
        assert any(a["story_id"] for a in articles) and any(a["published_at"] is None for a in articles)
        streamed = compute_changes_ordered(*ob.first_copy_claims(con), fx=None)
        assert ob.count_claims(con) == len(all_positions) + len(all_pledges)
    assert len(expected) > 20 and {c.kind for c in expected} == {"position", "aid"}
    assert streamed == expected
