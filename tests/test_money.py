"""tasks.money: money amounts in English news text, and EUR conversion.

Runs against the real config/money.yaml and config/fx.yaml, so a change to either that
breaks a common form shows up here.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` run without `python -m`
    sys.path.insert(0, str(ROOT))

from tasks.money import (  # noqa: E402
    FxTable, Money, MoneyLexicon, find_amounts, load_fx_table, load_money_lexicon,
    parse_amount, to_eur,
)

MONEY_YAML = ROOT / "config" / "money.yaml"
FX_YAML = ROOT / "config" / "fx.yaml"

K, M, B, T = 1e3, 1e6, 1e9, 1e12


@pytest.fixture(scope="module")
def lex() -> MoneyLexicon:
    return load_money_lexicon(MONEY_YAML)


@pytest.fixture(scope="module")
def fx() -> FxTable:
    return load_fx_table(FX_YAML)


# (text, amount, currency, low, qualifier): each text is one amount and nothing else.
AMOUNTS = [
    # euro
    ("€90bn", 90 * B, "EUR", None, None),
    ("€90 billion", 90 * B, "EUR", None, None),
    ("90 billion euros", 90 * B, "EUR", None, None),
    ("EUR 90 billion", 90 * B, "EUR", None, None),
    ("EUR90bn", 90 * B, "EUR", None, None),
    ("€ 90 billion", 90 * B, "EUR", None, None),
    ("90 billion EUR", 90 * B, "EUR", None, None),
    ("€1.5m", 1.5 * M, "EUR", None, None),
    ("€500,000", 500_000, "EUR", None, None),
    ("€50 bln", 50 * B, "EUR", None, None),
    ("€1.5-billion", 1.5 * B, "EUR", None, None),
    ("EUR 1.5 BN", 1.5 * B, "EUR", None, None),
    ("€5M", 5 * M, "EUR", None, None),
    ("€5 m", 5 * M, "EUR", None, None),
    ("one billion euros", 1 * B, "EUR", None, None),
    ("half a billion euros", 0.5 * B, "EUR", None, None),
    ("one and a half billion euros", 1.5 * B, "EUR", None, None),
    ("5 billion euro", 5 * B, "EUR", None, None),
    # US dollar, and the other dollars
    ("$61 billion", 61 * B, "USD", None, None),
    ("$61bn", 61 * B, "USD", None, None),
    ("US$1.2bn", 1.2 * B, "USD", None, None),
    ("US$ 1.2bn", 1.2 * B, "USD", None, None),
    ("USD 1.2 billion", 1.2 * B, "USD", None, None),
    ("USD1.2bn", 1.2 * B, "USD", None, None),
    ("2.5 billion dollars", 2.5 * B, "USD", None, None),
    ("$2.5 billion", 2.5 * B, "USD", None, None),
    ("$2.5 Billion", 2.5 * B, "USD", None, None),
    ("$800 million", 800 * M, "USD", None, None),
    ("800 million dollars", 800 * M, "USD", None, None),
    ("$1,200,000,000", 1.2 * B, "USD", None, None),
    ("40 billion US dollars", 40 * B, "USD", None, None),
    ("40 billion U.S. dollars", 40 * B, "USD", None, None),
    ("a quarter of a billion dollars", 0.25 * B, "USD", None, None),
    ("two billion dollars", 2 * B, "USD", None, None),
    ("two hundred and fifty million dollars", 250 * M, "USD", None, None),
    ("twenty-five million dollars", 25 * M, "USD", None, None),
    ("a hundred million dollars", 100 * M, "USD", None, None),
    ("$50k", 50 * K, "USD", None, None),
    ("$3B", 3 * B, "USD", None, None),
    ("$1.2 trillion", 1.2 * T, "USD", None, None),
    ("5-billion-dollar", 5 * B, "USD", None, None),
    ("C$500 million", 500 * M, "CAD", None, None),
    ("5 billion Canadian dollars", 5 * B, "CAD", None, None),
    ("A$100m", 100 * M, "AUD", None, None),
    ("NZ$40m", 40 * M, "NZD", None, None),
    ("HK$3.2 billion", 3.2 * B, "HKD", None, None),
    # sterling
    ("£3bn", 3 * B, "GBP", None, None),
    ("1.5bn pounds", 1.5 * B, "GBP", None, None),
    ("£1.5 billion sterling", 1.5 * B, "GBP", None, None),
    ("2 billion pounds sterling", 2 * B, "GBP", None, None),
    ("£2K", 2 * K, "GBP", None, None),
    # yen, yuan, won
    ("¥450 billion", 450 * B, "JPY", None, None),
    ("450 billion yen", 450 * B, "JPY", None, None),
    ("¥10tn", 10 * T, "JPY", None, None),
    ("50 billion yuan", 50 * B, "CNY", None, None),
    ("RMB 50 billion", 50 * B, "CNY", None, None),
    ("1.2 trillion won", 1.2 * T, "KRW", None, None),
    # Nordic, Swiss, central and eastern European
    ("NOK 135 billion", 135 * B, "NOK", None, None),
    ("135 billion Norwegian kroner", 135 * B, "NOK", None, None),
    ("10 billion Norwegian crowns", 10 * B, "NOK", None, None),
    ("SEK 7.1 billion", 7.1 * B, "SEK", None, None),
    ("7.1 billion Swedish kronor", 7.1 * B, "SEK", None, None),
    ("DKK 2.2 billion", 2.2 * B, "DKK", None, None),
    ("1.4 billion Danish kroner", 1.4 * B, "DKK", None, None),
    ("CHF 5 billion", 5 * B, "CHF", None, None),
    ("1.1 billion Swiss francs", 1.1 * B, "CHF", None, None),
    ("PLN 4bn", 4 * B, "PLN", None, None),
    ("4 billion zlotys", 4 * B, "PLN", None, None),
    ("3 million hryvnias", 3 * M, "UAH", None, None),
    ("UAH 500 million", 500 * M, "UAH", None, None),
    ("2 trillion roubles", 2 * T, "RUB", None, None),
    ("2 trillion rubles", 2 * T, "RUB", None, None),
    ("CZK 1.5 billion", 1.5 * B, "CZK", None, None),
    ("5 billion Czech koruna", 5 * B, "CZK", None, None),
    # ranges
    ("€1-2bn", 2 * B, "EUR", 1 * B, "range"),
    ("€1–2bn", 2 * B, "EUR", 1 * B, "range"),
    ("between €1bn and €2bn", 2 * B, "EUR", 1 * B, "range"),
    ("between $1 and $2 billion", 2 * B, "USD", 1 * B, "range"),
    ("between 1 and 2 billion euros", 2 * B, "EUR", 1 * B, "range"),
    ("1.5 to 2 billion dollars", 2 * B, "USD", 1.5 * B, "range"),
    ("$1bn to $2bn", 2 * B, "USD", 1 * B, "range"),
    ("$10bn-$15bn", 15 * B, "USD", 10 * B, "range"),
    ("€5 billion to €6 billion", 6 * B, "EUR", 5 * B, "range"),
    ("5-10 billion euros", 10 * B, "EUR", 5 * B, "range"),
    ("€500,000-1m", 1 * M, "EUR", 500_000, "range"),
    ("about €1-2bn", 2 * B, "EUR", 1 * B, "range"),
    # hedges
    ("up to €5bn", 5 * B, "EUR", None, "up_to"),
    ("Up to €5bn", 5 * B, "EUR", None, "up_to"),
    ("as much as $10 billion", 10 * B, "USD", None, "up_to"),
    ("nearly $1 billion", 1 * B, "USD", None, "approx"),
    ("about 4.2 billion euros", 4.2 * B, "EUR", None, "approx"),
    ("around £2bn", 2 * B, "GBP", None, "approx"),
    ("some $5bn", 5 * B, "USD", None, "approx"),
    ("an estimated $5bn", 5 * B, "USD", None, "approx"),
    ("almost half a billion euros", 0.5 * B, "EUR", None, "approx"),
    ("more than €3bn", 3 * B, "EUR", None, "at_least"),
    ("over €3bn", 3 * B, "EUR", None, "at_least"),
    ("at least $800 million", 800 * M, "USD", None, "at_least"),
]


@pytest.mark.parametrize(("text", "amount", "currency", "low", "qualifier"), AMOUNTS,
                         ids=[a[0] for a in AMOUNTS])
def test_parse_amount(lex, text, amount, currency, low, qualifier):
    m = parse_amount(text, lex)
    assert m is not None, text
    assert m.amount == pytest.approx(amount)
    assert m.currency == currency
    assert m.low == (pytest.approx(low) if low is not None else None)
    assert m.qualifier == qualifier
    assert (m.start, m.end, m.text) == (0, len(text), text)


@pytest.mark.parametrize(("text", "amount", "currency", "low", "qualifier"), AMOUNTS,
                         ids=[a[0] for a in AMOUNTS])
def test_amount_inside_a_sentence(lex, text, amount, currency, low, qualifier):
    """The same forms found with words and other numbers around them, offsets right."""
    sentence = f"On 24 February 2024, officials said {text} would go to 3 programmes in 2025."
    found = find_amounts(sentence, lex)
    assert len(found) == 1, found
    m = found[0]
    assert sentence[m.start:m.end] == m.text == text
    assert m.start == sentence.index(text)
    assert (m.amount, m.currency, m.qualifier) == (pytest.approx(amount), currency, qualifier)


NOT_AMOUNTS = [
    "800 Stinger anti-aircraft systems",
    "2,000 Javelin missiles",
    "15%",
    "40 percent",
    "February 24",
    "2024",
    "three million people",
    "700 civilians",
    "Article 5",
    "F-16",
    "$ sign",
    "a billion people",
    "the 2022 budget",
    "10,000 troops",
    "5 km",
    "30 days",
    # harder ones: currency words near numbers that are not amounts
    "a euro area",
    "a dollar store",
    "a billion-dollar question",
    "billions of dollars",
    "hundreds of millions of euros",
    "5 pounds of flour",
    "elections in 2019 won by Zelensky",
    "the party won 3 seats",
    "5 Eurofighters and 2 Euro-fighters",
    "EUR/USD 1.0850",
    "the euro rose 2% against the dollar",
    "5 m euros",
    "€1,5 Mrd",
    "4.2bn",
    "",
]


@pytest.mark.parametrize("text", NOT_AMOUNTS)
def test_not_an_amount(lex, text):
    assert find_amounts(text, lex) == []
    assert parse_amount(text, lex) is None


def _summary(found: list[Money]) -> list[tuple]:
    return [(m.text, m.amount, m.currency, m.low, m.qualifier) for m in found]


SENTENCES = [
    ("The EU raised its pledge from €50bn to €90bn on Thursday.",
     [("€50bn", 50 * B, "EUR", None, None), ("€90bn", 90 * B, "EUR", None, None)]),
    ("Washington cut its package to $20 billion from $30 billion.",
     [("$20 billion", 20 * B, "USD", None, None), ("$30 billion", 30 * B, "USD", None, None)]),
    ("Berlin increased its aid by $1bn to $3bn.",
     [("$1bn", 1 * B, "USD", None, None), ("$3bn", 3 * B, "USD", None, None)]),
    ("Aid rose from 1.5 to 2 billion dollars.",
     [("1.5", 1.5 * B, "USD", None, None), ("2 billion dollars", 2 * B, "USD", None, None)]),
    ("In 2024, the 27 member states agreed €18bn for 2025-2027, with 3 tranches of 6 each.",
     [("€18bn", 18 * B, "EUR", None, None)]),
    ("Sweden will give SEK 7.1 billion ($650 million) in military aid.",
     [("SEK 7.1 billion", 7.1 * B, "SEK", None, None), ("$650 million", 650 * M, "USD", None, None)]),
    ("The €90bn, up from €50bn, is up to €5bn a year more than before.",
     [("€90bn", 90 * B, "EUR", None, None), ("€50bn", 50 * B, "EUR", None, None),
      ("up to €5bn", 5 * B, "EUR", None, "up_to")]),
    ("A $61bn package passed 311-112 after 6 months.",
     [("$61bn", 61 * B, "USD", None, None)]),
    ("Japan offered ¥450 billion, about $3bn, and HK$3.2 billion came from Hong Kong.",
     [("¥450 billion", 450 * B, "JPY", None, None), ("about $3bn", 3 * B, "USD", None, "approx"),
      ("HK$3.2 billion", 3.2 * B, "HKD", None, None)]),
    ("Estimates range between €1bn and €2bn, or 1.5 to 2 billion dollars.",
     [("between €1bn and €2bn", 2 * B, "EUR", 1 * B, "range"),
      ("1.5 to 2 billion dollars", 2 * B, "USD", 1.5 * B, "range")]),
    ("Spending went from 500 million to 2 billion dollars, and from €50bn to 90bn.",
     [("500 million", 500 * M, "USD", None, None), ("2 billion dollars", 2 * B, "USD", None, None),
      ("€50bn", 50 * B, "EUR", None, None), ("90bn", 90 * B, "EUR", None, None)]),
    ("Exports grew from 2024 to $5bn.",
     [("$5bn", 5 * B, "USD", None, None)]),
    ("It sent $1bn to 3 million refugees.",
     [("$1bn", 1 * B, "USD", None, None)]),
    ("Between 2022 and 2024 the EU gave €5bn.",
     [("€5bn", 5 * B, "EUR", None, None)]),
    # a code before the number after an article: the code is the number's, not the article's suffix
    ("Copenhagen announced a DKK 4.2 billion package and an EUR 50m loan.",
     [("DKK 4.2 billion", 4.2 * B, "DKK", None, None), ("EUR 50m", 50 * M, "EUR", None, None)]),
    # a code after an article's scale is still its suffix
    ("Tokyo said a billion USD would follow.",
     [("a billion USD", 1 * B, "USD", None, None)]),
]


@pytest.mark.parametrize(("sentence", "expected"), SENTENCES, ids=[s[0][:40] for s in SENTENCES])
def test_find_amounts_in_sentences(lex, sentence, expected):
    found = find_amounts(sentence, lex)
    assert _summary(found) == [(t, pytest.approx(a), c, l, q) for t, a, c, l, q in expected]
    for m in found:
        assert sentence[m.start:m.end] == m.text
    assert all(a.end <= b.start for a, b in zip(found, found[1:])), "overlapping or out of order"


def test_offsets_point_at_the_span(lex):
    text = "Kyiv asked for €18bn; it got nearly $1 billion and 2 trillion roubles were spent."
    found = find_amounts(text, lex)
    assert [(m.start, m.end) for m in found] == [
        (text.index("€18bn"), text.index("€18bn") + len("€18bn")),
        (text.index("nearly"), text.index("nearly $1 billion") + len("nearly $1 billion")),
        (text.index("2 trillion"), text.index(" were")),
    ]
    assert [text[m.start:m.end] for m in found] == [m.text for m in found]


def test_parse_amount_needs_the_whole_string(lex):
    assert parse_amount("  €90bn \n", lex) == Money(90 * B, "EUR", 2, 7, "€90bn")
    assert parse_amount("€90bn loan", lex) is None
    assert parse_amount("€90bn and $61bn", lex) is None
    assert parse_amount("from €50bn", lex) is None


def test_money_is_frozen():
    m = Money(1.0, "EUR", 0, 2, "€1")
    with pytest.raises(Exception):
        m.amount = 2.0  # type: ignore[misc]


def test_find_amounts_is_fast(lex):
    sentences = [s for s, _ in SENTENCES] + [
        "The minister met his counterpart in Brussels on Tuesday to discuss the war.",
        "Some 700 civilians were evacuated from 3 towns over 30 days, officials said.",
    ] * 5
    start = time.perf_counter()
    for _ in range(100):
        for s in sentences:
            find_amounts(s, lex)
    per_sentence = (time.perf_counter() - start) / (100 * len(sentences))
    assert per_sentence < 1e-3, f"{per_sentence * 1e6:.0f} µs per sentence"


# --------------------------------------------------------------------------- FX

def test_eur_is_identity(fx):
    assert to_eur(123.45, "EUR", dt.date(2024, 5, 1), fx) == 123.45
    assert to_eur(123.45, "EUR", dt.date(1990, 1, 1), fx) == 123.45


def test_rate_between_two_dates_uses_the_earlier(fx):
    rows = sorted(yaml.safe_load(FX_YAML.read_text(encoding="utf-8"))["rates"]["USD"].items())
    (d1, r1), (d2, _) = rows[3], rows[4]
    mid = d1 + (d2 - d1) / 2
    assert d1 < mid < d2
    assert to_eur(1000.0, "USD", mid, fx) == pytest.approx(1000.0 / r1)
    assert to_eur(1000.0, "USD", d1, fx) == pytest.approx(1000.0 / r1)   # on the date itself
    assert to_eur(1000.0, "usd", mid, fx) == pytest.approx(1000.0 / r1)


def test_rate_on_or_before(tmp_path):
    p = tmp_path / "fx.yaml"
    p.write_text("rates:\n  USD:\n    2024-07-01: 1.25\n    2024-01-01: 1.0\n"
                 "  GBP:\n    '2024-01-01': 0.8\n", encoding="utf-8")
    table = load_fx_table(p)
    assert to_eur(100, "USD", dt.date(2023, 6, 1), table) == pytest.approx(100.0)   # before: earliest
    assert to_eur(100, "USD", dt.date(2024, 1, 1), table) == pytest.approx(100.0)
    assert to_eur(100, "USD", dt.date(2024, 6, 30), table) == pytest.approx(100.0)
    assert to_eur(100, "USD", dt.date(2024, 7, 1), table) == pytest.approx(80.0)
    assert to_eur(100, "USD", dt.datetime(2030, 1, 1, 12, 0), table) == pytest.approx(80.0)
    assert to_eur(80, "GBP", dt.date(2024, 2, 1), table) == pytest.approx(100.0)


def test_date_before_table_uses_earliest(fx):
    earliest = fx.rates["GBP"][0][1]
    assert to_eur(10.0, "GBP", dt.date(2000, 1, 1), fx) == pytest.approx(10.0 / earliest)


def test_unknown_currency_is_none(fx):
    assert to_eur(10.0, "XYZ", dt.date(2024, 1, 1), fx) is None


def test_every_lexicon_currency_has_rates(lex, fx):
    currencies = set(lex.symbols.values()) | set(lex.codes.values()) | set(lex.words.values())
    assert currencies - {"EUR"} <= set(fx.rates)
    for cur in fx.rates:
        assert to_eur(1e9, cur, dt.date(2024, 3, 1), fx) > 0


def test_real_table_values_are_plausible(fx):
    on = dt.date(2024, 3, 1)
    assert 0.80 < to_eur(1.0, "USD", on, fx) < 1.1
    assert 1.0 < to_eur(1.0, "GBP", on, fx) < 1.25
    assert to_eur(61 * B, "USD", on, fx) == pytest.approx(61 * B / fx.rate("USD", on))


# --------------------------------------------------------------------------- config errors

@pytest.mark.parametrize(("body", "key"), [
    ("rates:\n  USD:\n    2024-01-02: abc\n", "rates.USD.2024-01-02"),
    ("rates:\n  USD:\n    2024-01-02: -1.1\n", "rates.USD.2024-01-02"),
    ("rates:\n  USD:\n    not-a-date: 1.1\n", "rates.USD.not-a-date"),
    ("rates:\n  usd:\n    2024-01-02: 1.1\n", "rates.usd"),
    ("rates: [1, 2]\n", "rates"),
    ("rates:\n  USD: 1.1\n", "rates.USD"),
])
def test_bad_fx_yaml(tmp_path, body, key):
    p = tmp_path / "fx.yaml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        load_fx_table(p)
    assert key in str(exc.value) and "fx.yaml" in str(exc.value)


def _money_config() -> dict:
    return yaml.safe_load(MONEY_YAML.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("edit", "key"), [
    (lambda c: c["scales"]["billion"].__setitem__("value", "lots"), "scales.billion.value"),
    (lambda c: c["currencies"]["USD"].__setitem__("symbols", "$"), "currencies.USD.symbols"),
    (lambda c: c["currencies"].__setitem__("usd", {"codes": ["USD"]}), "currencies.usd"),
    (lambda c: c["currencies"]["CAD"].__setitem__("symbols", ["$"]), "currencies.CAD.symbols"),
    (lambda c: c["number_words"]["values"].__setitem__("two", "deux"), "number_words.values.two"),
    (lambda c: c["qualifiers"].__setitem__("maybe", ["perhaps"]), "qualifiers.maybe"),
    (lambda c: c["ambiguous_words"]["kroner"].__setitem__("XXK", ["Atlantis"]), "ambiguous_words.kroner.XXK"),
    (lambda c: c["ambiguous_words"].__setitem__("euros", {"EUR": ["Europe"], "USD": ["America"]}),
     "ambiguous_words.euros"),
])
def test_bad_money_yaml(tmp_path, edit, key):
    config = _money_config()
    edit(config)
    p = tmp_path / "money.yaml"
    p.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        load_money_lexicon(p)
    assert key in str(exc.value) and "money.yaml" in str(exc.value)


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(ValueError, match="nope.yaml"):
        load_fx_table(tmp_path / "nope.yaml")
    p = tmp_path / "money.yaml"
    p.write_text("currencies: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="money.yaml"):
        load_money_lexicon(p)


def test_lexicon_is_data_driven(tmp_path):
    """A new spelling in the YAML is picked up without code changes."""
    config = _money_config()
    config["currencies"]["EUR"]["words"].append("Eurobucks")
    p = tmp_path / "money.yaml"
    p.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    custom = load_money_lexicon(p)
    m = parse_amount("3 billion eurobucks", custom)
    assert m is not None and (m.amount, m.currency) == (pytest.approx(3 * B), "EUR")


# An ambiguous currency word is read by the one country its sentence names.
@pytest.mark.parametrize(("sentence", "expected"), [
    ("Denmark will fund weapons made in Ukraine with another 2 billion kroner, the ministry said.",
     [(2 * B, "DKK")]),
    ("Oslo will give Ukraine 2.5 billion kroner to buy gas. Denmark said nothing more.", [(2.5 * B, "NOK")]),
])
def test_ambiguous_word_is_read_by_the_country_its_sentence_names(lex, sentence, expected):
    assert [(m.amount, m.currency) for m in find_amounts(sentence, lex)] == expected


@pytest.mark.parametrize("sentence", [
    "The fund now holds 5 billion kroner.",                       # no country: could be either
    "Denmark and Norway each gave 1 billion kroner to the fund.",  # both countries: still either
])
def test_ambiguous_word_without_one_country_is_no_amount(lex, sentence):
    assert find_amounts(sentence, lex) == []
