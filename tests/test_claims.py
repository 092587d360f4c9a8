"""Mining rules: entity normalisation, stances, pledges, meetings.

The pipeline is the real one (en_core_web_sm + newsmon's components, built from the
real config files), loaded once for the module.
"""
from __future__ import annotations

import datetime as dt

import pytest

from newsmon.errors import ConfigError
from newsmon.settings import NlpSettings
from tasks.claims import mine_doc
from tasks.mine import Miner
from tasks.nlp import MentionResolver, load_catalog
from tasks.topics import load_topics

WHEN = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def miner() -> Miner:
    return Miner.from_settings(NlpSettings())


def mine(miner: Miner, text: str):
    doc = miner.nlp(text)
    return mine_doc(doc, "test:1", WHEN, catalog=miner.catalog, topics=miner.topics, aid=miner.aid, fx=miner.fx,
                    lexicon=miner.lexicon)


def stances(miner: Miner, text: str) -> set[tuple[str, str, str]]:
    return {(p.actor_group, p.topic, p.stance) for p in mine(miner, text).positions}


# -- entities ----------------------------------------------------------------------
@pytest.mark.parametrize("text, entity, group", [
    ("Zelenskyy spoke in Kyiv.", "Volodymyr Zelenskyy", "Ukraine"),
    ("Zelensky spoke in Kyiv.", "Volodymyr Zelenskyy", "Ukraine"),
    ("President Volodymyr Zelenskiy spoke.", "Volodymyr Zelenskyy", "Ukraine"),
    ("Russian envoy Kirill Dmitriev arrived in Miami.", "Kirill Dmitriev", "Russia"),
    ("Emmanuel Macron said nothing.", "Emmanuel Macron", "France"),
    ("Orbán vetoed the plan.", "Viktor Orban", "Hungary"),
])
def test_nlp_alias_resolves_to_canonical_person(miner, text, entity, group):
    mentions = {(m.entity, m.actor_group) for m in mine(miner, text).mentions}
    assert (entity, group) in mentions


@pytest.mark.parametrize("text, acting, entity", [
    ("Moscow rejected the proposal.", True, "Russia"),
    ("The Kremlin rejected the proposal.", True, "Russia"),
    ("Berlin confirmed the delivery.", True, "Germany"),
    ("Brussels approved the package.", True, "European Union"),
    ("The delegations met in Berlin on Monday.", False, "Berlin"),
])
def test_nlp_metonym_names_the_state_only_when_it_acts(miner, text, acting, entity):
    found = {m.entity for m in mine(miner, text).mentions}
    assert entity in found
    if not acting:
        assert "Germany" not in found


def test_nlp_unknown_person_is_normalised_within_the_article(miner):
    result = mine(miner, "Hungarian Prime Minister Zoltan Kovacsy spoke first. Later Kovacsy left.")
    people = [m for m in result.mentions if m.entity_type == "person"]
    assert {m.entity for m in people} == {"Zoltan Kovacsy"}
    assert len(people) == 2
    assert people[0].actor_group == "Hungary"   # learned from "Hungarian Prime Minister"


def test_nlp_demonym_counts_as_the_state(miner):
    assert "Russia" in {m.entity for m in mine(miner, "A Russian envoy arrived.").mentions}


def test_nlp_catalog_rejects_an_unknown_affiliation(tmp_path):
    bad = tmp_path / "entities.yaml"
    bad.write_text("people:\n  - name: A Person\n    affiliation: Atlantis\n")
    with pytest.raises(ConfigError, match="Atlantis"):
        load_catalog(bad)


def test_nlp_money_is_an_entity_not_a_cardinal(miner):
    doc = miner.nlp("The European Union has formalized 90 billion euros in assistance for Ukraine.")
    money = [e for e in doc.ents if e.label_ == "MONEY"]
    assert [e.text for e in money] == ["90 billion euros"]
    assert doc._.money[0][1].amount == 90e9 and doc._.money[0][1].currency == "EUR"


def test_nlp_resolver_names_the_group_of_a_person(miner):
    doc = miner.nlp("Kremlin spokesman Dmitry Peskov spoke.")
    r = MentionResolver(miner.catalog, doc)
    person = next(e for e in doc.ents if e.label_ == "PERSON")
    assert r.group(r.resolve(person)) == "Russia"


# -- stances: each rule with a positive and a negative example ----------------------
@pytest.mark.parametrize("text, expected", [
    # base: a cue under an actor's verb is support
    ("Kirill Dmitriev said the talks in Miami were going well.", ("Russia", "peace_negotiations", "support")),
    # negation flips
    ("Hungary would not send weapons to Ukraine.", ("Hungary", "military_aid_to_ukraine", "oppose")),
    # a negative determiner on the way flips ("no" must stay a word, not YAML's false)
    ("Kremlin spokesman Dmitry Peskov said Russia saw no point in a ceasefire.", ("Russia", "ceasefire", "oppose")),
    # an oppose verb flips
    ("Zelenskyy rejected calls for a ceasefire along the front line.", ("Ukraine", "ceasefire", "oppose")),
    # double negation: "did not rule out" is conditional
    ("Germany did not rule out sending troops to Ukraine after a deal.", ("Germany", "security_guarantees", "conditional")),
    # conditions the actor sets on its own action
    ("France is open to direct talks with Vladimir Putin under appropriate circumstances.",
     ("France", "direct_talks_with_putin", "conditional")),
    ("Scholz said he would speak to Putin again, but only if the Russian leader was prepared to withdraw.",
     ("Germany", "direct_talks_with_putin", "conditional")),
    # a condition attached to the reporting verb conditions the reported clause
    ('Vladimir Putin said that Russia would order a ceasefire "immediately" if Ukraine withdrew its troops '
     'from the four regions.', ("Russia", "ceasefire", "conditional")),
    ('Vladimir Putin said that Russia would order a ceasefire "immediately" if Ukraine withdrew its troops '
     'from the four regions.', ("Russia", "ukraine_cedes_territory", "support")),
    # the content of someone's demand is not the stance of the clause's subject
    ("Zelenskyy again rejected Russia's demand that Ukraine withdraw from the parts of Donetsk it still holds.",
     ("Ukraine", "ukraine_cedes_territory", "oppose")),
    # an anaphoric object takes the topic of the sentence's cue; a dropped objection is support
    ("The European Union approved an €18 billion loan package for Ukraine after Hungary dropped its objections.",
     ("Hungary", "ukraine_eu_funding", "support")),
    # a cue inside the condition the actor demands: the actor wants it
    ("Peskov said Moscow would stop if Kyiv renounced any ambition to join NATO.",
     ("Russia", "ukraine_nato_membership", "oppose")),
    # undecided
    ("EU member states failed to reach consensus on using frozen Russian assets.",
     ("European Union", "use_frozen_russian_assets", "undecided")),
    # counter-cue: supporting the opposite proposition
    ("Orban said the sanctions on Russia should be lifted.", ("Hungary", "sanctions_on_russia", "oppose")),
    # reported speech: the speaker's group
    ("Kremlin spokesman Dmitry Peskov said Russia would never recognise Ukraine's membership of NATO.",
     ("Russia", "ukraine_nato_membership", "oppose")),
    # a copular clause reported by another actor is the reporter's view
    ("Joe Biden said Ukraine was not ready for NATO membership.", ("United States", "ukraine_nato_membership", "oppose")),
    # a pronoun takes the subject of the sentence before
    ("Viktor Orban spoke on the radio. He said Hungary backed an immediate ceasefire.",
     ("Hungary", "ceasefire", "support")),
    # "treat X as theft": the predicate of "as" counts
    ("Moscow has warned that it would treat any use of the frozen Russian assets as theft.",
     ("Russia", "use_frozen_russian_assets", "oppose")),
    # the subject of a condition is not who sets it
    ("Friedrich Merz said he would be prepared to speak to Putin if it helped secure a ceasefire.",
     ("Germany", "ceasefire", "support")),
    # shelving a plan opposes it
    ("Trump also shelved plans for a summit with Putin in Budapest.", ("United States", "direct_talks_with_putin", "oppose")),
    # a negation of a first conjunct is not the second's
    ("Hungary would not send weapons to Ukraine and called for an immediate ceasefire.",
     ("Hungary", "ceasefire", "support")),
])
def test_claims_stance_rule_positive(miner, text, expected):
    assert expected in stances(miner, text)


@pytest.mark.parametrize("text, unexpected", [
    # a question is not a position
    ("Would Washington send fighter jets to Ukraine?", ("United States", "military_aid_to_ukraine", "support")),
    # a hypothetical is not a position
    ("If Budapest were granted more time, Hungary might back the embargo.", ("Hungary", "sanctions_on_russia", "support")),
    # analysts are not actors
    ("Analysts say the sanctions on Russia have failed.", ("Russia", "sanctions_on_russia", "oppose")),
    # hardware names a position only as the object of a supply verb
    ("Russia has lost more than 2,000 tanks since the invasion began.", ("Russia", "military_aid_to_ukraine", "support")),
    # talks that are not about the war
    ("Zelenskyy hailed the decision to open accession talks.", ("Ukraine", "peace_negotiations", "support")),
    # a possessive after Putin is not a talk with Putin
    ("Donald Trump called Putin's remarks promising.", ("United States", "direct_talks_with_putin", "support")),
    # the negated stance is not support
    ("Hungary would not send weapons to Ukraine.", ("Hungary", "military_aid_to_ukraine", "support")),
    # "a call for Germany to supply": Germany is asked, not asking
    ("Zelenskyy repeated his call for Germany to supply Taurus cruise missiles to Ukraine.",
     ("Germany", "military_aid_to_ukraine", "support")),
    # analysts' speculation about an actor is not the actor's position
    ("Analysts say the Commission could fall back on joint borrowing if Belgium cannot be persuaded.",
     ("European Union", "ukraine_eu_funding", "conditional")),
    # an organisation the catalog does not know is not an actor
    ("16:45 GMT: Officials from GMT said sanctions on Russia must stay.", ("GMT", "sanctions_on_russia", "support")),
])
def test_claims_stance_rule_negative(miner, text, unexpected):
    assert unexpected not in stances(miner, text)


def test_claims_expletive_subject_is_no_position_on_the_topic(miner):
    # an expletive subject is nobody's position: no actor holds any stance on the topic
    found = stances(miner, "It was not clear how quickly the weapons would reach Ukraine.")
    assert not [s for s in found if s[1] == "military_aid_to_ukraine"], found


def test_claims_interview_answer_without_actor_is_the_interviewees(miner):
    text = ("Kyiv Ledger: Would Ukraine accept a ceasefire along the current front line?\n"
            "Andrii Sybiha: A ceasefire is possible only if it comes with real security guarantees.")
    found = stances(miner, text)
    assert ("Ukraine", "ceasefire", "conditional") in found
    assert ("Ukraine", "security_guarantees", "support") in found


def test_claims_interview_answer_about_a_third_party_is_the_speakers_view(miner):
    text = ("Continental Post: Would Denmark send troops?\n"
            "Mette Frederiksen: Ukraine needs security guarantees that Putin believes in.")
    found = stances(miner, text)
    assert ("Denmark", "security_guarantees", "support") in found
    assert not any(g == "Ukraine" for g, _, _ in found)


def test_claims_interviewer_label_is_not_an_actor_and_reported_third_parties_keep_their_words(miner):
    text = ("Continental Post: Washington has stopped deliveries of American weapons.\n"
            "Andrii Sybiha: Seoul told us it would consider supplying weapons to Ukraine.\n"
            "Continental Post: Anything else?\n"
            "Andrii Sybiha: No.")
    found = stances(miner, text)
    assert not any(g == "Continental Post" for g, _, _ in found)
    assert ("South Korea", "military_aid_to_ukraine", "conditional") in found


def test_claims_nearest_subject_wins_over_a_label(miner):
    text = ("10:00 - Recap: US Defence Secretary Pete Hegseth told allies that NATO membership "
            "for Ukraine was not a realistic outcome.")
    assert ("United States", "ukraine_nato_membership", "oppose") in stances(miner, text)


def test_claims_possessive_pronoun_group_noun_is_the_speaker(miner):
    text = "Slovakia's new prime minister, Robert Fico, told reporters that his government would not send any more weapons to Ukraine."
    assert ("Slovakia", "military_aid_to_ukraine", "oppose") in stances(miner, text)


def test_claims_one_stance_per_article_group_and_topic(miner):
    text = ("Zelenskyy said Ukraine wanted peace talks. "
            "Zelenskyy said talks with Moscow could begin only once Russian forces had left.")
    found = [s for s in stances(miner, text) if s[:2] == ("Ukraine", "peace_negotiations")]
    assert found == [("Ukraine", "peace_negotiations", "conditional")]


def test_claims_interviewer_questions_yield_nothing_and_answers_speak_for_the_speaker(miner):
    text = ("Kyiv Ledger: Should Ukraine give up territory to end the war?\n"
            "Melanie Joly: No. Canada will never accept handing Ukrainian land to Russia.\n"
            "Kyiv Ledger: Will you keep sending weapons?\n"
            "Melanie Joly: We will keep sending Ukraine the weapons it needs.")
    found = stances(miner, text)
    assert ("Canada", "military_aid_to_ukraine", "support") in found
    assert not any(g == "Ukraine" for g, _, _ in found)


def test_topics_examples_in_config_hold(miner):
    """The examples documented in config/topics.yaml are what the miner finds."""
    import yaml

    data = yaml.safe_load(NlpSettings().topics.read_text())
    failures = []
    for tid, rec in data["topics"].items():
        for ex in rec.get("examples") or []:
            got = {(t, s) for _, t, s in stances(miner, ex["text"])}
            if (tid, ex["stance"]) not in got:
                failures.append((tid, ex["stance"], ex["text"], got))
    assert not failures


def test_topics_bad_cue_pattern_is_a_config_error(tmp_path):
    bad = tmp_path / "topics.yaml"
    bad.write_text("topics:\n  t:\n    cues: ['re:(unclosed']\nstance_words: {}\n")
    with pytest.raises(ConfigError, match="bad cue pattern"):
        load_topics(bad)


# -- pledges -----------------------------------------------------------------------
def pledges(miner, text):
    return {(p.donor, p.recipient, p.amount, p.currency, p.kind, p.previous_amount) for p in mine(miner, text).pledges}


@pytest.mark.parametrize("text, expected", [
    ("US President Joe Biden announced an additional $800 million in security assistance for Ukraine.",
     ("United States", "Ukraine", 800e6, "USD", "military", None)),
    ("The European Union has formalized 90 billion euros in two-year assistance for Ukraine.",
     ("European Union", "Ukraine", 90e9, "EUR", "financial", None)),
    ("Germany will raise its military aid for Ukraine from €4 billion to €8 billion next year.",
     ("Germany", "Ukraine", 8e9, "EUR", "military", 4e9)),
    ("Britain would increase its support for Ukraine this year to £3 billion from £2.5 billion.",
     ("United Kingdom", "Ukraine", 3e9, "GBP", "unspecified", 2.5e9)),
    ("Kishida pledged ¥62 billion in humanitarian assistance for Ukraine.",
     ("Japan", "Ukraine", 62e9, "JPY", "humanitarian", None)),
    ("The $725 million package the United States announced for Ukraine includes Stinger missiles.",
     ("United States", "Ukraine", 725e6, "USD", "military", None)),
])
def test_claims_pledge_found(miner, text, expected):
    assert expected in pledges(miner, text)


@pytest.mark.parametrize("text", [
    "With roughly $300bn of the Russian central bank's reserves frozen, the pressure on Moscow grows.",
    "The war has already caused about $565bn in losses in Ukraine, the economy ministry said.",
    "Russia plans to raise defence spending next year to 10.8 trillion roubles, roughly 6% of its gross domestic product.",
    "Hungarian Prime Minister Viktor Orban vetoed a proposed €50 billion EU budget facility for Ukraine.",
    "Germany did not approve the €2bn package for Ukraine.",
    "Trade between China and Russia reached a record $190bn last year.",
])
def test_claims_non_pledge_amounts_are_not_pledges(miner, text):
    assert pledges(miner, text) == set()


def test_claims_pledge_by_its_board_is_the_reporting_organisations(miner):
    text = "The World Bank said its board had approved $530 million in additional financing for Ukraine."
    assert ("World Bank", "Ukraine", 530e6, "USD", "financial", None) in pledges(miner, text)


def test_claims_pledge_in_an_interview_answer_is_the_interviewees_government(miner):
    text = ("Kyiv Ledger: Prime Minister Justin Trudeau announced new military aid. What does it cover?\n"
            "Melanie Joly: The prime minister committed C$650 million over three years for armoured vehicles for Ukraine.\n"
            "Kyiv Ledger: Is more coming?\n"
            "Melanie Joly: Yes.")
    assert ("Canada", "Ukraine", 650e6, "CAD", "military", None) in pledges(miner, text)


def test_claims_pledge_evidence_offsets_point_at_the_sentence(miner):
    text = "Talks went on. Norway will give NOK 2 billion in humanitarian aid to Ukraine."
    result = mine(miner, text)
    (p,) = result.pledges
    assert text[p.evidence.start_char:p.evidence.end_char] == p.evidence.text
    assert "NOK 2 billion" in p.evidence.text


def test_claims_meeting_has_participants_and_place(miner):
    result = mine(miner, "Russian envoy Kirill Dmitriev held talks with US officials in Miami on Saturday.")
    (m,) = result.meetings
    assert set(m.participants) >= {"Russia", "United States"}
    assert m.location == "Miami"
