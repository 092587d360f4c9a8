"""Aid pledges (tasks/claims/pledges.py, config/aid.yaml): one construction per test pair.

Every rule has a positive case (the construction yields the pledge) and a negative one (a
passage that looks like it but states no such pledge). The pipeline and the config files
are the real ones.
"""
from __future__ import annotations

import datetime as dt

import pytest

from tasks.claims import mine_doc

WHEN = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


def pledges(miner, text: str) -> set[tuple]:
    """(donor, recipient, amount, currency) of every pledge mined from `text`."""
    doc = miner.nlp(text)
    result = mine_doc(doc, "test:1", WHEN, catalog=miner.catalog, topics=miner.topics, aid=miner.aid, fx=miner.fx,
                      lexicon=miner.lexicon)
    return {(p.donor, p.recipient, p.amount, p.currency) for p in result.pledges}


# -- recipient: the followed state when the passage names none ------------------------
def test_pledges_unnamed_recipient_is_the_followed_state(nlp_miner):
    text = ("\"Estonia will give €100 million in military aid next year, and we are proud of it,\" "
            "Prime Minister Kristen Michal said.")
    assert pledges(nlp_miner, text) == {("Estonia", "Ukraine", 100e6, "EUR")}


def test_pledges_named_recipient_wins_over_the_followed_state(nlp_miner):
    text = "Estonia will give €10 million in humanitarian aid to Moldova next year, Prime Minister Kristen Michal said."
    assert pledges(nlp_miner, text) == {("Estonia", "Moldova", 10e6, "EUR")}


# -- donor: the owner of the money's own noun ---------------------------------------
@pytest.mark.parametrize("text, expected", [
    # a possessive on the loan outranks the clause's subject, who only contributes to it
    ("The United States will contribute $20 billion to the G7's $50 billion loan, Treasury Secretary Janet Yellen said.",
     {("United States", "Ukraine", 20e9, "USD"), ("G7", "Ukraine", 50e9, "USD")}),
    # the amount measures the package through "worth": the package's owner gives it
    ("Finland's 25th defence package, worth €198 million, \"will be delivered quickly\", Defence Minister "
     "Antti Hakkanen told reporters in Helsinki.",
     {("Finland", "Ukraine", 198e6, "EUR")}),
])
def test_pledges_owner_of_the_aid_noun_is_the_donor(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


def test_pledges_followed_state_owning_the_loan_is_its_recipient_not_donor(nlp_miner):
    text = "The International Monetary Fund approved Ukraine's $8.1 billion loan on Thursday."
    assert pledges(nlp_miner, text) == {("International Monetary Fund", "Ukraine", 8.1e9, "USD")}


# -- donor: the speaker of the words, when the money's clause names no other giver ----
@pytest.mark.parametrize("text, expected", [
    # the package itself is the subject of the quoted clause
    ("\"This A$245 million package includes 49 Abrams tanks,\" Defence Minister Richard Marles said.",
     {("Australia", "Ukraine", 245e6, "AUD")}),
    # first person, through "our"; and an institution's speaker pays for its organisation
    ("\"The first €3 billion of our €35 billion loan is on its way to Kyiv,\" Ursula von der Leyen wrote on X.",
     {("European Union", "Ukraine", 3e9, "EUR"), ("European Union", "Ukraine", 35e9, "EUR")}),
])
def test_pledges_money_in_a_speakers_own_words_is_the_speakers(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


@pytest.mark.parametrize("text", [
    # the clause has its own subject, who is not the speaker's government
    "\"Volunteers who sign a contract this month will receive a one-off payment of 1.9 million roubles,\" "
    "Moscow mayor Sergei Sobyanin said.",
    "\"Every time he comes to this country, he walks away with $60 billion,\" Donald Trump told a campaign rally.",
])
def test_pledges_speaker_is_not_the_donor_of_someone_elses_money(nlp_miner, text):
    assert pledges(nlp_miner, text) == set()


# -- money a donor spends at home is not aid -----------------------------------------
@pytest.mark.parametrize("text", [
    "\"The €100 billion special fund is for the Bundeswehr's own equipment,\" Olaf Scholz told the Bundestag.",
    # an aid noun beside the amount does not make loans to member states aid to Ukraine
    "European leaders endorsed a plan including €150 billion in loans that member states can use to buy weapons "
    "for their own armies.",
])
def test_pledges_money_for_the_donors_own_forces_is_not_aid(nlp_miner, text):
    assert pledges(nlp_miner, text) == set()


def test_pledges_money_for_the_recipients_own_industry_is_aid(nlp_miner):
    # "its own" is Ukraine's here: the money still goes to Ukraine
    text = "Denmark will give €500 million in military aid to help Ukraine produce its own drones, the defence ministry said."
    assert pledges(nlp_miner, text) == {("Denmark", "Ukraine", 500e6, "EUR")}


# -- pledge verbs: lemmas and particles on the parse path ----------------------------
@pytest.mark.parametrize("text, expected", [
    ("Germany will spend half a billion euros helping Ukrainians get through the winter, its development ministry said.",
     {("Germany", "Ukraine", 0.5e9, "EUR")}),
    ("The European Commission said on Tuesday it had paid EUR 2bn in macro-financial assistance to Ukraine.",
     {("European Union", "Ukraine", 2e9, "EUR")}),
    ("Denmark will top up its fund for weapons for Ukraine to DKK 17 billion this year, Mette Frederiksen said.",
     {("Denmark", "Ukraine", 17e9, "DKK")}),
])
def test_pledges_verb_lemma_or_particle_makes_a_pledge(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


@pytest.mark.parametrize("text", [
    # spending on one's own defence is a budget, not aid
    "\"European allies and Canada spent $485 billion on defence last year,\" Jens Stoltenberg told a news conference.",
    # "called for ... to give": a demand, not a pledge (the particle is on the verb's preposition)
    "Chancellor Friedrich Merz called on Thursday for the immobilised Russian assets to be used to give Ukraine "
    "an interest-free loan of about €140 billion.",
])
def test_pledges_spending_at_home_or_a_call_for_money_is_not_a_pledge(nlp_miner, text):
    assert pledges(nlp_miner, text) == set()


# -- running totals and revisions -----------------------------------------------------
def test_pledges_running_total_is_not_a_pledge_but_the_new_amount_is(nlp_miner):
    text = ("EU governments approved a further €500 million in military assistance for Ukraine on Wednesday, "
            "bringing the total committed through the fund since February to €1.5 billion, the Council said.")
    assert pledges(nlp_miner, text) == {("European Union", "Ukraine", 500e6, "EUR")}


def test_pledges_total_since_a_starting_point_is_not_a_pledge(nlp_miner):
    text = "Germany has provided €40 billion in military aid to Ukraine since 2022, the defence ministry said."
    assert pledges(nlp_miner, text) == set()


def test_pledges_raising_the_total_of_ones_support_is_a_pledge(nlp_miner):
    text = "Emmanuel Macron said that France would increase the total amount of its support for Ukraine to two billion dollars."
    assert pledges(nlp_miner, text) == {("France", "Ukraine", 2e9, "USD")}


def test_pledges_up_from_amount_is_the_previous_figure_not_a_claim(nlp_miner):
    text = ("Belgium will provide €1 billion in military aid to Ukraine this year, up from €977 million last year, "
            "Defence Minister Theo Francken said.")
    doc = nlp_miner.nlp(text)
    found = mine_doc(doc, "test:1", WHEN, catalog=nlp_miner.catalog, topics=nlp_miner.topics, aid=nlp_miner.aid,
                     fx=nlp_miner.fx, lexicon=nlp_miner.lexicon).pledges
    assert [(p.donor, p.amount, p.previous_amount) for p in found] == [("Belgium", 1e9, 977e6)]


# -- a conversion in parentheses is the same money ----------------------------------
def test_pledges_parenthesised_conversion_is_not_a_second_pledge(nlp_miner):
    text = "NATO allies agreed a one-year, €40bn (US$43.6bn) pledge for further Ukrainian military aid."
    assert pledges(nlp_miner, text) == {("NATO", "Ukraine", 40e9, "EUR")}


def test_pledges_parenthesised_amount_of_its_own_is_a_pledge(nlp_miner):
    # the bracket holds a separate pledge, not a conversion: no amount right before it
    text = "Several allies pledged more on Friday (Norway gave $100 million in military aid to Ukraine)."
    assert ("Norway", "Ukraine", 100e6, "USD") in pledges(nlp_miner, text)


# -- words of a name are not nouns ---------------------------------------------------
def test_pledges_a_name_is_not_a_non_aid_noun(nlp_miner):
    text = ("Canada has doubled its military aid for Ukraine this year from C$500 million to C$1 billion, "
            "Defence Minister Bill Blair said on Tuesday.")
    assert pledges(nlp_miner, text) == {("Canada", "Ukraine", 1e9, "CAD")}


def test_pledges_the_noun_bill_still_rules_an_amount_out(nlp_miner):
    text = "The bill for rebuilding Ukraine already stands at $349 billion, the World Bank estimated on Friday."
    assert pledges(nlp_miner, text) == set()


@pytest.mark.parametrize("text, expected", [
    ("\"The cabinet is reserving EUR 2bn for military support to Ukraine in 2024,\" the Dutch defence ministry said.",
     {("Netherlands", "Ukraine", 2e9, "EUR")}),
    # the group noun names its own state: that state gives, not the speaker's
    ("\"The Polish government is reserving EUR 2bn for military support to Ukraine,\" the Dutch defence ministry said.",
     {("Poland", "Ukraine", 2e9, "EUR")}),
])
def test_pledges_bare_group_noun_in_a_speakers_words_is_the_speakers_government(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


# -- the giver named by a preposition ------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Ukraine secured a new $8.1 billion loan from the International Monetary Fund on Thursday, the IMF said.",
     {("International Monetary Fund", "Ukraine", 8.1e9, "USD")}),
    ("\"This morning we received €1.5 billion from the European Union,\" Prime Minister Denys Shmyhal wrote on Telegram.",
     {("European Union", "Ukraine", 1.5e9, "EUR")}),
    ("The Ukraine Facility, worth €50 billion in grants and loans through 2027, was approved by all 27 EU leaders "
     "in Brussels on Thursday.",
     {("European Union", "Ukraine", 50e9, "EUR")}),
])
def test_pledges_giver_after_from_or_by_is_the_donor(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


def test_pledges_receiving_from_something_that_is_not_an_actor_is_not_aid(nlp_miner):
    text = "Ukraine received $2 billion from the sale of its dollar bonds last week, the finance ministry said."
    assert pledges(nlp_miner, text) == set()


# -- the owner of the noun a relative clause hangs on --------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Critics attacked Norway's new budget, which earmarks NOK 5 billion in military aid for Ukraine.",
     {("Norway", "Ukraine", 5e9, "NOK")}),
    ("Olaf Scholz spoke on Friday. Critics attacked his government's draft budget, which earmarks only "
     "€4 billion in military aid for Ukraine.",
     {("Germany", "Ukraine", 4e9, "EUR")}),
    # nobody owns the budget: no donor, no pledge
    ("Critics attacked the draft budget, which earmarks only €4 billion in military aid for Ukraine.", set()),
])
def test_pledges_relative_clause_money_is_its_antecedents_owners(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


# -- held out wire: construction seen on analysis and spoken ----------------------
@pytest.mark.parametrize("text, expected", [
    # "put money into X" commits it; the new package as the subject of "brings the total" is new money
    ("Britain will put £450m into drones and radar for Ukraine, Defence Secretary John Healey said.",
     {("United Kingdom", "Ukraine", 450e6, "GBP")}),
    ("Australia's latest package, worth A$95.3 million, brings Canberra's total military assistance to Ukraine "
     "to more than A$1.3 billion since February 2022, Richard Marles said.",
     {("Australia", "Ukraine", 95.3e6, "AUD")}),
])
def test_pledges_put_into_and_new_package_beside_a_total(nlp_miner, text, expected):
    assert pledges(nlp_miner, text) == expected


@pytest.mark.parametrize("text", [
    # "put at" is an estimate, not "put into"
    "Ukraine's financing gap next year, which the International Monetary Fund has put at roughly $12 billion, "
    "worries Kyiv.",
    # a package being prepared is not yet pledged
    "Officials in Washington are preparing a weapons package worth up to $500 million for Ukraine, "
    "according to two people familiar with the plans.",
])
def test_pledges_estimates_and_packages_in_preparation_are_not_pledges(nlp_miner, text):
    assert pledges(nlp_miner, text) == set()


# -- verbless items: a roundup's label, a quotation going on -------------------------
def test_pledges_verbless_roundup_item_is_its_labels_pledge(nlp_miner):
    text = ("Allies announced new aid for Ukraine at the Ramstein meeting on Thursday.\n"
            "• Finland: €120m for air defence, delivered by spring.\n"
            "• Norway: NOK 2bn in ammunition.")
    assert pledges(nlp_miner, text) == {("Finland", "Ukraine", 120e6, "EUR"), ("Norway", "Ukraine", 2e9, "NOK")}


def test_pledges_verbless_quotation_continuing_is_the_speakers(nlp_miner):
    text = ("\"We committed, and we delivered,\" Antonio Costa told reporters in the early hours of Friday. "
            "\"Ninety billion euros for Ukraine for the next two years.\"")
    assert pledges(nlp_miner, text) == {("European Union", "Ukraine", 90e9, "EUR")}


@pytest.mark.parametrize("text", [
    # a label that is no state or organisation gives nothing
    "Schools budget: €5bn for new buildings.\nHospitals budget: €2bn for repairs.",
    # a verbless headline with nobody speaking and no label
    "€120m for air defence, delivered by spring.",
])
def test_pledges_verbless_item_without_a_giver_is_not_a_pledge(nlp_miner, text):
    assert pledges(nlp_miner, text) == set()


# -- an estimate of a gap is not money given -----------------------------------------
def test_pledges_gap_an_organisation_puts_at_an_amount_is_an_estimate(nlp_miner):
    text = ("It is not yet clear whether the loan will cover Ukraine's financing gap next year, which the "
            "International Monetary Fund has put at roughly $12 billion after accounting for pledges already made.")
    assert pledges(nlp_miner, text) == set()


def test_pledges_money_an_organisation_puts_into_a_fund_is_a_pledge(nlp_miner):
    text = "The International Monetary Fund has put $1 billion into a new fund for Ukraine, the fund said."
    assert pledges(nlp_miner, text) == {("International Monetary Fund", "Ukraine", 1e9, "USD")}


# -- first-person interview answers --------------------------------------------------
INTERVIEW = ("Kyiv Ledger: What will Canada send next?\n"
             "Melanie Joly: {answer}\n"
             "Kyiv Ledger: When?\n"
             "Melanie Joly: Before the winter.")


def test_pledges_first_person_interview_answer_is_the_speakers_government(nlp_miner):
    text = INTERVIEW.format(answer="We are sending another C$80 million for drones, and more will follow.")
    assert pledges(nlp_miner, text) == {("Canada", "Ukraine", 80e6, "CAD")}


def test_pledges_third_party_money_in_an_interview_answer_is_the_third_partys(nlp_miner):
    text = INTERVIEW.format(answer="The Germans are sending another €80 million for drones.")
    assert pledges(nlp_miner, text) == {("Germany", "Ukraine", 80e6, "EUR")}


# -- kind: the modifier of the money's own aid noun decides first --------------------
def kinds(miner, text: str) -> set[tuple]:
    doc = miner.nlp(text)
    result = mine_doc(doc, "test:1", WHEN, catalog=miner.catalog, topics=miner.topics, aid=miner.aid, fx=miner.fx,
                      lexicon=miner.lexicon)
    return {(p.donor, p.kind) for p in result.pledges}


@pytest.mark.parametrize("text, expected", [
    ("Critics attacked Norway's new budget, which earmarks NOK 5 billion in military aid for Ukraine.",
     {("Norway", "military")}),
    # "equipment" elsewhere in the sentence does not make humanitarian assistance military
    ("Japan pledged ¥62 billion in humanitarian assistance for Ukraine, including demining equipment.",
     {("Japan", "humanitarian")}),
])
def test_pledges_kind_is_the_modifier_of_the_aid_noun(nlp_miner, text, expected):
    assert kinds(nlp_miner, text) == expected


def test_pledges_a_us_department_speaks_for_the_united_states(nlp_miner):
    text = ('"Today the Department of Defense is announcing a $300 million package of artillery rounds," '
            'Lloyd Austin said.')
    assert ("United States", "Ukraine", 300_000_000.0, "USD") in pledges(nlp_miner, text)


def test_pledges_korea_alone_is_south_korea(nlp_miner):
    text = '"Korea will provide 100 billion won in humanitarian assistance to Ukraine," the minister said.'
    assert ("South Korea", "Ukraine", 100_000_000_000.0, "KRW") in pledges(nlp_miner, text)


def test_pledges_an_unknown_speakers_national_currency_names_the_donor(nlp_miner):
    # the catalog does not know Mr Lindqvist's government; the kronor do
    text = 'Erik Lindqvist spoke to reporters on Monday.\n"We will send another SEK 3 billion to Ukraine this year."'
    assert ("Sweden", "Ukraine", 3_000_000_000.0, "SEK") in pledges(nlp_miner, text)
    text = 'Erik Lindqvist spoke to reporters on Monday.\n"We will send another $3 billion to Ukraine this year."'
    assert not {p for p in pledges(nlp_miner, text) if p[0] == "Sweden"}


def test_pledges_a_quoted_unknown_minister_pledging_in_kroner(nlp_miner):
    text = ('"This is our fifteenth package and our largest so far: NOK 7.1 billion," Defence Minister '
            'Erik Lindqvist told reporters in Oslo.')
    assert ("Norway", "Ukraine", 7_100_000_000.0, "NOK") in pledges(nlp_miner, text)


@pytest.mark.parametrize("chamber", ["the U.S. House of Representatives", "the US House", "the U.S. Senate"])
def test_pledges_a_chamber_of_congress_pledges_for_the_united_states(nlp_miner, chamber):
    text = f"After weeks of delay, {chamber} approved a $20bn package of military aid for Ukraine on Saturday."
    assert pledges(nlp_miner, text) == {("United States", "Ukraine", 20e9, "USD")}


def test_pledges_what_the_money_is_to_buy_is_its_purpose_not_its_measure(nlp_miner):
    # "gas" and "pensions" are not-aid nouns when they measure the amount, not when they are its purpose
    assert pledges(nlp_miner, "Finland will give Ukraine EUR 90 million to buy gas before the winter.") == {
        ("Finland", "Ukraine", 90e6, "EUR")}
    assert pledges(nlp_miner, "Sweden will send Ukraine SEK 500 million to pay pensions in the liberated areas.") == {
        ("Sweden", "Ukraine", 500e6, "SEK")}


def test_pledges_an_amount_of_gas_is_still_no_aid(nlp_miner):
    assert pledges(nlp_miner, "Hungary bought EUR 900 million of Russian gas last year to heat its homes.") == set()
    assert pledges(nlp_miner, "Russia earned EUR 5 billion from gas exports to fund its war.") == set()
