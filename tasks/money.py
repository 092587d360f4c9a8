"""Money amounts in English news text, and their value in euros.

The NLP stage calls `find_amounts` on each sentence to find the spans that state an
amount of money ("€90bn", "up to $10 billion", "between €1bn and €2bn",
"135 billion Norwegian kroner") and `to_eur` to put pledges made in different currencies
on one scale. Plain functions over strings: no spaCy, no I/O after loading.

What counts as a currency, a scale word, a number word or a hedge ("up to", "nearly")
is data in config/money.yaml, loaded once into a `MoneyLexicon` that holds the compiled
regular expressions; the dated EUR reference rates are in config/fx.yaml, loaded into an
`FxTable`. Both loaders raise `MoneyConfigError` (a `ValueError` and a newsmon
`ConfigError`) naming the file and the key when the YAML is malformed.

How a sentence is read:
  1. a cheap search for any currency marker; most sentences have none and stop here;
  2. every number is found with what surrounds it: a currency symbol or code before it,
     a scale ("bn", "million") and a currency word or code after it ("parts");
  3. neighbouring parts joined by a range connector ("-", "to", "between ... and ...")
     become one range, sharing currency and scale ("€1-2bn", "1.5 to 2 billion dollars");
     a "to" pair right after a revision marker ("from €50bn to €90bn") stays two amounts;
  4. a part, or range, that has a currency is an amount; a hedge just before it sets the
     qualifier and is part of the span.
Not read: decimal commas ("1,5 Mrd"), vague amounts ("billions of dollars",
"hundreds of millions"), currencies written only as a bare "kroner" or "francs".
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import yaml

from newsmon.errors import ConfigError

__all__ = [
    "Money", "MoneyLexicon", "FxTable", "MoneyConfigError",
    "load_money_lexicon", "find_amounts", "parse_amount", "load_fx_table", "to_eur",
]


class MoneyConfigError(ConfigError, ValueError):
    """config/money.yaml or config/fx.yaml is malformed; the message names the file and key."""


@dataclass(frozen=True)
class Money:
    amount: float            # the value in currency units (for ranges: the upper bound)
    currency: str            # ISO 4217
    start: int               # char offsets of the whole span in the input text
    end: int
    text: str                # the matched surface text
    low: float | None = None  # lower bound for ranges, else None
    qualifier: str | None = None  # "up_to" | "approx" | "at_least" | "range" | None


# --------------------------------------------------------------------------- lexicon

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![.,]?\d)"
_QUALIFIER_KINDS = ("up_to", "approx", "at_least")


def _norm(s: str) -> str:
    """Lookup key of a matched phrase: lower case, single spaces."""
    return " ".join(s.lower().split())


def _phrase(p: str) -> str:
    """Regex for a phrase: escaped, any run of spaces where it has one."""
    return r"\s+".join(re.escape(w) for w in p.split())


def _alt(phrases: list[str] | tuple[str, ...] | Any) -> str:
    """Alternation of phrases, longest first so that "a quarter of a" beats "a"."""
    ordered = sorted(set(phrases), key=lambda p: (-len(p), p))
    return "(?:" + "|".join(_phrase(p) for p in ordered) + ")" if ordered else "(?!)"


@dataclass(frozen=True)
class MoneyLexicon:
    """What config/money.yaml says, with the regular expressions compiled from it."""

    symbols: Mapping[str, str]              # "€" -> "EUR" (case-sensitive, before the number)
    codes: Mapping[str, str]                # "EUR" -> "EUR" (upper case, before or after)
    words: Mapping[str, str]                # "norwegian kroner" -> "NOK" (lower case, after)
    weak_words: Mapping[str, str]           # "pounds" -> "GBP": count only with a scale
    scales: Mapping[str, int]               # "bn" -> 10**9 (lower case)
    number_values: Mapping[str, Decimal]    # "half a" -> 0.5
    number_continuations: Mapping[str, Decimal]  # "and a half" -> 0.5
    number_multipliers: Mapping[str, Decimal]    # "hundred" -> 100
    articles: Mapping[str, Decimal]         # "a" -> 1
    qualifiers: Mapping[str, str]           # "up to" -> "up_to"
    range_connectors: tuple[str, ...] = ("-", "–", "—", "to")
    between: tuple[tuple[str, str], ...] = (("between", "and"),)
    revision_markers: tuple[str, ...] = ("from", "by")
    # "kroner" -> {"DKK": ("Denmark", "Danish", ...), "NOK": (...)}: read by the country the sentence names
    ambiguous_words: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    _re: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_re", self._compile())

    def _compile(self) -> dict[str, Any]:
        syms = _alt(self.symbols)
        codes = _alt(self.codes)
        words = _alt([*self.words, *self.weak_words, *self.ambiguous_words])
        long_scales = _alt([s for s in self.scales if len(s) > 1])
        short_scales = _alt([s for s in self.scales if len(s) == 1])
        val = _alt([*self.number_values])
        mult = _alt([*self.number_multipliers])
        cont = _alt([*self.number_continuations])
        art = _alt([*self.articles])
        first_word = rf"(?:{val}|{mult}(?:\s+and(?=[\s-]+{val}\b))?|{art})\b"
        next_word = rf"(?:{val}|{mult}(?:\s+and(?=[\s-]+{val}\b))?|{cont})\b"
        part = (
            r"(?:"
            rf"(?<![A-Za-z/])(?P<pre>{syms}|{codes}(?![A-Za-z]))[^\S\n]*(?P<pnum>{_NUMBER})"
            rf"|(?<![\w.,])(?P<num>{_NUMBER})"
            rf"|(?<![\w-])(?P<wnum>(?i:{first_word}(?:[\s-]+{next_word})*))"
            r")"
            rf"(?:(?P<scale>(?:[^\S\n]*-[^\S\n]*|[^\S\n]*)(?i:{long_scales}))(?![A-Za-z])"
            rf"|(?(pre)[^\S\n]?|(?<=\d))(?P<scale1>(?i:{short_scales}))(?![A-Za-z]))?"
            rf"(?:(?P<sufsep>[^\S\n]+|[^\S\n]*-[^\S\n]*)"
            # a code followed by a number is that number's ("a DKK 4.2 billion package"), not a suffix of "a"
            rf"(?P<suf>(?i:{words})(?![\w-])|{codes}(?![\w-])(?![^\S\n]*\d)))?"
        )
        quals = _alt(list(self.qualifiers))
        between_openers = _alt([b[0] for b in self.between])
        revision = _alt(list(self.revision_markers))
        word_conns = [c for c in self.range_connectors if c[:1].isalnum()]
        dash_conns = [c for c in self.range_connectors if not c[:1].isalnum()]
        conn = "(?:" + "|".join(
            ([r"\s*(?:" + "|".join(re.escape(c) for c in dash_conns) + r")\s*"] if dash_conns else [])
            + ([r"\s+(?i:" + "|".join(_phrase(c) for c in word_conns) + r")\s+"] if word_conns else [])
        ) + ")" if self.range_connectors else "(?!)"
        return {
            "part": re.compile(part),
            "any_currency": re.compile(
                rf"{syms}|(?<![A-Za-z]){codes}(?![A-Za-z])|(?i:(?<!\w){words}(?!\w))"
            ),
            "word_token": re.compile(rf"(?i:{val}|{mult}|{cont}|{art})\b"),
            "qualifier": re.compile(rf"(?i:(?<![\w.])(?P<q>{quals})\s+)\Z"),
            "between_open": re.compile(
                rf"(?i:(?<!\w)(?P<b>{between_openers})\s+)\Z"
            ),
            "revision": re.compile(rf"(?i:(?<!\w){revision}\s+)\Z"),
            "cues": {w: {iso: re.compile(r"(?<!\w)" + _alt(cues) + r"(?!\w)") for iso, cues in by_iso.items()}
                     for w, by_iso in self.ambiguous_words.items()},
            "connector": re.compile(conn + r"\Z"),
            "between_close": {
                _norm(o): re.compile(rf"\s+(?i:{_phrase(c)})\s+\Z") for o, c in self.between
            },
        }

    # -- lookups used by the parser
    def _ambiguous_currency(self, surface: str, text: str, start: int, end: int) -> str | None:
        """The currency an ambiguous word ("kroner") names in the sentence around [start, end): the one
        whose country the sentence names, if exactly one is named."""
        cues = self._re["cues"].get(_norm(surface))
        if not cues:
            return None
        left = max(text.rfind(c, 0, start) for c in ".!?\n") + 1
        rights = [i for i in (text.find(c, end) for c in (". ", "! ", "? ", "\n")) if i >= 0]
        sentence = text[left:min(rights) if rights else len(text)]
        named = [iso for iso, pattern in cues.items() if pattern.search(sentence)]
        return named[0] if len(named) == 1 else None

    def _currency_of(self, surface: str) -> str | None:
        return (self.symbols.get(surface) or self.codes.get(surface)
                or self.words.get(_norm(surface)) or self.weak_words.get(_norm(surface)))


def _lexicon_from_data(data: Any, source: str) -> MoneyLexicon:
    def fail(key: str, msg: str) -> MoneyConfigError:
        return MoneyConfigError(f"{source}: {key}: {msg}")

    def mapping(value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise fail(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def strings(value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(key, f"expected a list of non-empty strings, got {value!r}")
        return [v.strip() for v in value]

    def number(value: Any, key: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise fail(key, f"expected a positive number, got {value!r}")
        return Decimal(str(value))

    root = mapping(data, "(top level)")
    symbols: dict[str, str] = {}
    codes: dict[str, str] = {}
    words: dict[str, str] = {}
    weak: dict[str, str] = {}
    seen: dict[str, str] = {}                # surface -> the key that defined it
    for iso, spec in mapping(root.get("currencies"), "currencies").items():
        key = f"currencies.{iso}"
        if not (isinstance(iso, str) and re.fullmatch(r"[A-Z]{3}", iso)):
            raise fail(key, "currency keys must be ISO 4217 codes (three capital letters)")
        spec = mapping(spec, key)
        unknown = set(spec) - {"symbols", "codes", "words", "weak_words"}
        if unknown:
            raise fail(key, f"unknown field(s) {sorted(unknown)}")
        for table, name, normalise in ((symbols, "symbols", str), (codes, "codes", str),
                                       (words, "words", _norm), (weak, "weak_words", _norm)):
            for s in strings(spec.get(name), f"{key}.{name}"):
                s = normalise(s)
                if name == "codes" and not re.fullmatch(r"[A-Z]{3}", s):
                    raise fail(f"{key}.codes", f"{s!r} is not a three-letter upper-case code")
                other = seen.get(s)
                if other and not other.startswith(f"{key}."):
                    raise fail(f"{key}.{name}", f"{s!r} is already given by {other}")
                seen[s] = f"{key}.{name}"
                table[s] = iso

    scales: dict[str, int] = {}
    for name, spec in mapping(root.get("scales"), "scales").items():
        key = f"scales.{name}"
        spec = mapping(spec, key)
        value = number(spec.get("value"), f"{key}.value")
        if value != value.to_integral_value():
            raise fail(f"{key}.value", f"expected a whole number, got {spec.get('value')!r}")
        for s in strings(spec.get("words"), f"{key}.words") + strings(spec.get("abbreviations"), f"{key}.abbreviations"):
            scales[_norm(s)] = int(value)

    nw = mapping(root.get("number_words"), "number_words")
    groups: dict[str, dict[str, Decimal]] = {}
    for group in ("values", "continuations", "multipliers", "articles"):
        table = {}
        for w, v in mapping(nw.get(group) or {}, f"number_words.{group}").items():
            table[_norm(str(w))] = number(v, f"number_words.{group}.{w}")
        groups[group] = table

    qualifiers: dict[str, str] = {}
    for kind, phrases in mapping(root.get("qualifiers"), "qualifiers").items():
        if kind not in _QUALIFIER_KINDS:
            raise fail(f"qualifiers.{kind}", f"unknown qualifier; expected one of {list(_QUALIFIER_KINDS)}")
        for p in strings(phrases, f"qualifiers.{kind}"):
            qualifiers[_norm(p)] = kind

    ranges = mapping(root.get("ranges") or {}, "ranges")
    connectors = tuple(strings(ranges.get("connectors"), "ranges.connectors"))
    between: list[tuple[str, str]] = []
    for i, pair in enumerate(ranges.get("between") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) and p.strip() for p in pair)):
            raise fail(f"ranges.between[{i}]", f"expected a pair of words like [between, and], got {pair!r}")
        between.append((pair[0].strip(), pair[1].strip()))
    revision = tuple(strings(ranges.get("revision_markers"), "ranges.revision_markers"))

    ambiguous: dict[str, dict[str, tuple[str, ...]]] = {}
    for word, by_iso in mapping(root.get("ambiguous_words") or {}, "ambiguous_words").items():
        key = f"ambiguous_words.{word}"
        w = _norm(str(word))
        if w in seen:
            raise fail(key, f"{w!r} is already given by {seen[w]}")
        table = {}
        for iso, cues in mapping(by_iso, key).items():
            if iso not in symbols.values() and iso not in codes.values():
                raise fail(f"{key}.{iso}", "not a currency defined under `currencies`")
            table[iso] = tuple(strings(cues, f"{key}.{iso}"))
            if not table[iso]:
                raise fail(f"{key}.{iso}", "expected a list of words that name the currency's country")
        if len(table) < 2:
            raise fail(key, "an ambiguous word names at least two currencies; put one currency under its `words`")
        ambiguous[w] = table

    return MoneyLexicon(
        symbols=symbols, codes=codes, words=words, weak_words=weak, scales=scales,
        number_values=groups["values"], number_continuations=groups["continuations"],
        number_multipliers=groups["multipliers"], articles=groups["articles"],
        qualifiers=qualifiers, range_connectors=connectors, between=tuple(between),
        revision_markers=revision, ambiguous_words=ambiguous,
    )


def _read_yaml(path: Path) -> Any:
    from newsmon.settings import parse_yaml_file

    try:
        return parse_yaml_file(path)
    except UnicodeDecodeError as exc:
        raise MoneyConfigError(f"{path}: not valid YAML ({exc})") from exc
    except OSError as exc:
        raise MoneyConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise MoneyConfigError(f"{path}: not valid YAML ({exc})") from exc


def load_money_lexicon(path: str | Path) -> MoneyLexicon:
    """Load config/money.yaml; raises MoneyConfigError (a ValueError) naming file and key."""
    path = Path(path)
    return _lexicon_from_data(_read_yaml(path), str(path))


# --------------------------------------------------------------------------- parsing

@dataclass
class _Part:
    """One number with what is glued to it, before ranges and hedges are considered."""

    start: int
    end: int
    value: Decimal               # the number as written, before the scale
    scale: int | None
    currency: str | None
    weak_only: bool              # the currency comes only from a weak word ("pounds")
    article_only: bool           # the number is only "a"/"an"
    hyphen_word: bool            # the currency word is hyphen-joined ("billion-dollar")
    bare: bool                   # no currency and no scale: a plain number

    @property
    def amount(self) -> Decimal:
        return self.value * self.scale if self.scale else self.value


def _word_number(surface: str, lex: MoneyLexicon) -> tuple[Decimal, bool]:
    total = Decimal(0)
    started = False
    article_only = True
    for m in lex._re["word_token"].finditer(surface):
        key = _norm(m.group())
        if key in lex.number_multipliers:
            total = (total if started else Decimal(1)) * lex.number_multipliers[key]
            article_only = False
        elif key in lex.articles and not started:
            total += lex.articles[key]
        else:
            total += lex.number_values.get(key) or lex.number_continuations.get(key, Decimal(0))
            article_only = False
        started = True
    return total, article_only


def _parts(text: str, lex: MoneyLexicon) -> list[_Part]:
    parts = []
    for m in lex._re["part"].finditer(text):
        pre, suf = m.group("pre"), m.group("suf")
        digits = m.group("pnum") or m.group("num")
        if digits is not None:
            value, article_only = Decimal(digits.replace(",", "")), False
        else:
            value, article_only = _word_number(m.group("wnum"), lex)
        scale_text = m.group("scale") or m.group("scale1")
        scale = lex.scales[_norm(scale_text.strip(" -\t\u00a0"))] if scale_text else None
        currency = lex._currency_of(pre) if pre else None
        end = m.end()
        weak_only = hyphen_word = False
        if suf:
            suf_cur = lex._currency_of(suf) or lex._ambiguous_currency(suf, text, m.start(), m.end())
            if currency and suf_cur != currency:
                end = m.start("sufsep")          # "$5bn euros": keep "$5bn" only
            elif not currency:
                currency = suf_cur
                weak_only = _norm(suf) in lex.weak_words
                hyphen_word = "-" in m.group("sufsep")
        parts.append(_Part(
            start=m.start(), end=end, value=value, scale=scale, currency=currency,
            weak_only=weak_only, article_only=article_only, hyphen_word=hyphen_word,
            bare=currency is None and scale is None,
        ))
    return parts


def _acceptable(p: _Part) -> bool:
    """Whether a part states an amount by itself."""
    if p.currency is None:
        return False
    if p.weak_only and p.scale is None:
        return False                      # "5 pounds" of flour, "in 2019 won"
    if p.article_only and (p.scale is None or p.hyphen_word):
        return False                      # "a euro area", "a billion-dollar question"
    return True


def _qualifier(text: str, start: int, floor: int, lex: MoneyLexicon) -> tuple[int, str | None]:
    """The hedge right before `start` (not reaching back before `floor`): (new start, kind)."""
    m = lex._re["qualifier"].search(text, max(floor, start - 40), start)
    if m:
        return m.start(), lex.qualifiers[_norm(m.group("q"))]
    return start, None


def _range(a: _Part, b: _Part) -> tuple[Decimal, Decimal, str, int | None] | None:
    """(low, high, currency, scale) if parts a and b can form one range, else None."""
    if a.currency and b.currency and a.currency != b.currency:
        return None
    currency = a.currency or b.currency
    if currency is None:
        return None
    low = a.amount
    if a.scale is None and b.scale is not None and not a.article_only and a.value <= b.value:
        low = a.value * b.scale            # "€1-2bn", "1.5 to 2 billion dollars"
    elif a.bare and b.scale is not None:
        return None                        # "rose 30 to $5bn": the 30 is something else
    high = b.amount
    if not (0 < low < high) or low * 1000 < high:
        return None
    scale = b.scale or a.scale
    # the weak-word and article rules apply to the range as a whole
    weak_only = (a.currency is None or a.weak_only) and (b.currency is None or b.weak_only)
    if (weak_only and scale is None) or a.article_only or b.article_only:
        return None
    return low, high, currency, scale


def _borrowed(a: _Part, b: _Part) -> Decimal | None:
    """Value of a currency-less `a` read with `b`'s scale, in "from A to B" (a change)."""
    if b.currency is None or a.article_only or not _acceptable(b):
        return None
    candidates = [a.value * b.scale] if a.scale is None and b.scale else []
    candidates.append(a.amount)
    for c in candidates:                   # a change stays within two orders of magnitude
        if c > 0 and max(c, b.amount) <= 100 * min(c, b.amount):
            return c
    return None


def find_amounts(text: str, lexicon: MoneyLexicon) -> list[Money]:
    """Every money amount in `text`, in order, non-overlapping; text[m.start:m.end] == m.text."""
    if not text or lexicon._re["any_currency"].search(text) is None:
        return []
    parts = _parts(text, lexicon)
    conn_re = lexicon._re["connector"]
    between_open = lexicon._re["between_open"]
    between_close = lexicon._re["between_close"]
    revision_re = lexicon._re["revision"]
    out: list[Money] = []
    floor = 0                                  # end of the previous amount
    i = 0
    n = len(parts)
    while i < n:
        a = parts[i]
        b = parts[i + 1] if i + 1 < n else None
        if b is not None and (a.currency or b.currency):
            gap_start, gap_end = a.end, b.start
            # between X and Y
            opener = between_open.search(text, max(floor, a.start - 20), a.start)
            if opener is not None:
                closer = between_close.get(_norm(opener.group("b")))
                if closer is not None and closer.match(text, gap_start, gap_end):
                    r = _range(a, b)
                    if r is not None:
                        low, high, cur, _ = r
                        start = opener.start()
                        out.append(Money(float(high), cur, start, b.end, text[start:b.end],
                                         low=float(low), qualifier="range"))
                        floor = b.end
                        i += 2
                        continue
            # X-Y, X to Y
            conn = conn_re.match(text, gap_start, gap_end)
            if conn is not None:
                q_start, _ = _qualifier(text, a.start, floor, lexicon)
                is_to = conn.group().strip()[:1].isalpha()
                revision = is_to and revision_re.search(text, max(floor, q_start - 20), q_start)
                r = _range(a, b)
                if r is not None and not revision:
                    low, high, cur, _ = r
                    out.append(Money(float(high), cur, q_start, b.end, text[q_start:b.end],
                                     low=float(low), qualifier="range"))
                    floor = b.end
                    i += 2
                    continue
                if revision:
                    # "from €50bn to €90bn" is a change, not a range: two amounts. Either may
                    # borrow the currency the other states ("from 1.5 to 2 billion dollars").
                    if a.currency is None:
                        borrowed = _borrowed(a, b)
                        if borrowed is not None:
                            out.append(_single(text, a, borrowed, b.currency, floor, lexicon))  # type: ignore[arg-type]
                            floor = a.end
                    elif b.currency is None and b.scale is not None and _borrowed(b, a) is not None:
                        b.currency = a.currency      # "from €50bn to 90bn"
                        b.bare = False
        if _acceptable(a):
            out.append(_single(text, a, a.amount, a.currency, floor, lexicon))  # type: ignore[arg-type]
            floor = a.end
        i += 1
    return out


def _single(text: str, p: _Part, amount: Decimal, currency: str, floor: int, lex: MoneyLexicon) -> Money:
    start, qual = _qualifier(text, p.start, floor, lex)
    return Money(float(amount), currency, start, p.end, text[start:p.end], qualifier=qual)


def parse_amount(text: str, lexicon: MoneyLexicon) -> Money | None:
    """The one amount that makes up the whole of `text` (ignoring surrounding space), else None.

    Offsets are into `text` as given.
    """
    stripped = text.strip()
    if not stripped:
        return None
    lead = len(text) - len(text.lstrip())
    found = find_amounts(text, lexicon)
    if len(found) == 1 and found[0].start == lead and found[0].end == lead + len(stripped):
        return found[0]
    return None


# --------------------------------------------------------------------------- FX

@dataclass(frozen=True)
class FxTable:
    """EUR reference rates: units of each currency per 1 EUR, on dates, oldest first."""

    rates: Mapping[str, tuple[tuple[dt.date, float], ...]]
    source: str = ""
    _dates: dict[str, list[dt.date]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_dates", {c: [d for d, _ in rows] for c, rows in self.rates.items()})

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(self.rates) | {"EUR"}

    def rate(self, currency: str, on: dt.date) -> float | None:
        """Units of `currency` per EUR on the latest date on or before `on` (else the earliest)."""
        currency = currency.upper()
        if currency == "EUR":
            return 1.0
        rows = self.rates.get(currency)
        if not rows:
            return None
        if isinstance(on, dt.datetime):
            on = on.date()
        i = bisect.bisect_right(self._dates[currency], on) - 1
        return rows[max(i, 0)][1]


def load_fx_table(path: str | Path) -> FxTable:
    """Load config/fx.yaml; raises MoneyConfigError (a ValueError) naming file and key."""
    path = Path(path)
    source = str(path)
    data = _read_yaml(path)
    if not isinstance(data, Mapping):
        raise MoneyConfigError(f"{source}: (top level): expected a mapping with a `rates` key")
    base = data.get("base", "EUR")
    if base != "EUR":
        raise MoneyConfigError(f"{source}: base: only EUR-based tables are supported, got {base!r}")
    rates_in = data.get("rates")
    if not isinstance(rates_in, Mapping) or not rates_in:
        raise MoneyConfigError(f"{source}: rates: expected a mapping of currency -> {{date: rate}}")
    rates: dict[str, tuple[tuple[dt.date, float], ...]] = {}
    for cur, rows in rates_in.items():
        key = f"rates.{cur}"
        if not (isinstance(cur, str) and re.fullmatch(r"[A-Z]{3}", cur)):
            raise MoneyConfigError(f"{source}: {key}: currency keys must be ISO 4217 codes")
        if not isinstance(rows, Mapping) or not rows:
            raise MoneyConfigError(f"{source}: {key}: expected a mapping of date -> rate")
        parsed: list[tuple[dt.date, float]] = []
        for day, rate in rows.items():
            dkey = f"{key}.{day}"
            if isinstance(day, dt.datetime):
                day = day.date()
            elif not isinstance(day, dt.date):
                try:
                    day = dt.date.fromisoformat(str(day))
                except ValueError:
                    raise MoneyConfigError(f"{source}: {dkey}: not an ISO date (YYYY-MM-DD)") from None
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
                raise MoneyConfigError(f"{source}: {dkey}: expected a positive number, got {rate!r}")
            parsed.append((day, float(rate)))
        parsed.sort()
        rates[cur] = tuple(parsed)
    return FxTable(rates=rates, source=source)


def to_eur(amount: float, currency: str, on: dt.date, table: FxTable) -> float | None:
    """`amount` of `currency` in EUR at the latest rate on or before `on` (else the earliest).

    EUR comes back unchanged; an unknown currency gives None.
    """
    rate = table.rate(currency, on)
    if rate is None:
        return None
    return amount if currency.upper() == "EUR" else amount / rate
