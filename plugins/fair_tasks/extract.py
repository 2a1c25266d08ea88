"""Final-answer extraction shared by the built-in tasks.

The paper's code reads the first number after "\\nAnswer" (missed when the text starts with
"Answer"), else the last number, and calls StrategyQA "true" when the word appears anywhere.
That misreads correct answers as mistakes, and the mistakes are what FAIR trains on. Here an
answer marker ("The answer is", "Answer:", "final answer", "####", \\boxed{) always wins over
the last-number fallback, its last occurrence counts, and an expression right after a marker
("Answer: 290 / 2 = 145") yields its result. Every function here returns None rather than
raising: model output is arbitrary text.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation, localcontext

# "answer (to the question) is/:/=", "final answer" alone, "####" and LaTeX \boxed{...}.
_ANSWER_IS = r"\banswer\b(?:\s+to\s+(?:the|this)\s+(?:question|problem))?\s*(?:is\b|:|=)"
MARKER = re.compile(rf"(?:{_ANSWER_IS}|\bfinal\s+answer\b|####|\\boxed\s*\{{)", re.I)

_NUMBER = re.compile(r"""
    (?<![\w./])                               # not the tail of a word, a number or a date
    (?P<neg>[-\u2212])?                       # a minus sign glued to the number ("5 - 3" is not -3)
    (?:[$\u20ac\u00a3\u00a5\u20b9]\s?)?       # currency: $ EUR GBP JPY INR
    (?P<neg2>-)?                              # "$-5"
    (?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)
    (?:/(?P<den>\d+)(?![\d/]))?               # a simple fraction "3/4" (no spaces: "6 / 2" is a division)
    (?P<pct>\s?%)?
""", re.X | re.ASCII)
_OPERATOR = re.compile(r"\s*(?:[-+*/\u00d7\u00f7^]|x(?=\s))")
_CLAUSE_END = re.compile(r"\.(?=\s|$)|[;!?]")
_DECIMALS = Decimal("0.000001")


def canonical(value: Decimal) -> str:
    """Integers without ".0"; other numbers as a short decimal (6 places at most)."""
    with localcontext() as ctx:
        ctx.prec = max(28, len(str(value)) + 8)
        if value == value.to_integral_value():
            value = value.to_integral_value()
        else:
            value = value.quantize(_DECIMALS).normalize()
        text = format(value, "f")
    return "0" if text in ("-0", "0") else text


def _value(match: re.Match) -> str | None:
    try:
        number = Decimal(match["num"].replace(",", ""))
        if match["den"]:
            den = Decimal(match["den"])
            if den == 0:
                return None
            with localcontext() as ctx:
                ctx.prec = max(28, len(match["num"]) + 12)
                number = number / den
    except InvalidOperation:
        return None
    if match["neg"] or match["neg2"]:
        number = -number
    return canonical(number)


def parse_number(text: str) -> str | None:
    """The canonical form of a string that is exactly one number (a gold answer), else None."""
    match = _NUMBER.fullmatch(str(text).strip().rstrip("."))
    return _value(match) if match else None


_FIRST_LINE = re.compile(r"\s*([^\n]{0,400})")


def _segment(text: str, start: int) -> str:
    """The first non-empty line after a marker (its first 400 characters): where the answer
    the marker announces is written. Bounded, so many markers never make extraction quadratic."""
    return _FIRST_LINE.match(text, start)[1]


def _number_in(segment: str) -> str | None:
    """The number a marker announces: the first one, or, when that one starts an expression,
    the result after the clause's last "="."""
    end = _CLAUSE_END.search(segment)
    clause = segment[:end.start()] if end else segment
    matches = list(_NUMBER.finditer(clause))
    if not matches:
        clause, matches = segment, list(_NUMBER.finditer(segment))
        if not matches:
            return None
    first = matches[0]
    if "=" in clause and _OPERATOR.match(clause, first.end()):
        after = [m for m in matches if m.start() > clause.rindex("=")]
        if after:
            return _value(after[0])
    return _value(first)


def extract_number(text: str) -> str | None:
    """The final numeric answer: at the last marker that is followed by a number, else the
    last number in the text."""
    text = str(text)
    for marker in reversed(list(MARKER.finditer(text))):
        found = _number_in(_segment(text, marker.end()))
        if found is not None:
            return found
    for match in reversed(list(_NUMBER.finditer(text))):
        found = _value(match)
        if found is not None:
            return found
    return None


def numbers_equal(predicted: str | None, gold: str) -> bool:
    """Numeric comparison within relative or absolute 1e-6; falls back to string equality."""
    if predicted is None:
        return False
    try:
        return math.isclose(float(predicted), float(gold), rel_tol=1e-6, abs_tol=1e-6)
    except (ValueError, OverflowError):
        return predicted == gold


# yes/true/false anywhere ("not true", "not entirely false" are negated); "no" only where it
# stands as an answer, before punctuation or the end of a line ("No, ...", "is no."), never in
# "no evidence".
_YES_NO = re.compile(r"""\b(?:(not)\s+(?:\w+ly\s+)?)?(true|false|yes)\b|\b(no)(?=[ \t]*(?:[.,;:!?)"'*]|$))""", re.I | re.M)
# right after a marker, the first word decides, "no" included ("Answer: No because ...").
_LEAD = re.compile(r"""[\s"'*(\[]*(?:(not)\s+(?:\w+ly\s+)?)?(yes|no|true|false)\b""", re.I)
_EITHER = re.compile(r"\b(?:true\s+or\s+false|false\s+or\s+true|yes\s+or\s+no|no\s+or\s+yes)\b", re.I)


def _yes_no(match: re.Match) -> str:
    negated, word = match[1], next(g for g in match.groups()[1:] if g).lower()
    says_yes = word in ("yes", "true")
    if negated and word in ("true", "false"):  # "not true" is a no
        says_yes = not says_yes
    return "yes" if says_yes else "no"


def extract_yes_no(text: str) -> str | None:
    """"yes"/"no": the first decisive word after the last answer marker that has one, else the
    first one in the text; "True or False:" echoed from a prompt is not decisive."""
    text = _EITHER.sub(lambda m: " " * len(m[0]), str(text))
    ends = [marker.end() for marker in MARKER.finditer(text)]
    # a later marker with nothing after it leaves earlier ones only the text up to it
    for start, stop in reversed(list(zip(ends, ends[1:] + [len(text)]))):
        found = _LEAD.match(text, start, stop) or _YES_NO.search(text, start, stop)
        if found:
            return _yes_no(found)
    found = _YES_NO.search(text)
    return _yes_no(found) if found else None


_LETTER_MARKER = re.compile(
    rf"(?:{_ANSWER_IS}|\bfinal\s+answer\b|\bcorrect\s+(?:option|choice)\s+is\b|####|\\boxed\s*\{{)", re.I)
_LETTER = re.compile(
    r"\(([A-Da-d])\)"                                   # (b)
    r"|\b(?i:option|choice)\s*\(?([A-Da-d])\b"          # option B, Choice (c)
    r"|(?<![\w'])([A-D])(?![\w'])")                     # a bare capital letter
_LEADING_LETTER = re.compile(r"\s*\(?([A-Da-d])(?:\)|[.:](?!\w)|\s*$)")


def _letter(match: re.Match) -> str:
    return next(g for g in match.groups() if g).upper()


def extract_letter(text: str) -> str | None:
    """An option letter "A".."D": after the last answer marker that names one, else a letter
    the text opens with ("B.", "(b)"), else the only letter the text names as an option."""
    text = str(text)
    for marker in reversed(list(_LETTER_MARKER.finditer(text))):
        found = _LETTER.search(_segment(text, marker.end()))
        if found:
            return _letter(found)
    leading = _LEADING_LETTER.match(text)
    if leading:
        return leading[1].upper()
    named = {_letter(m) for m in _LETTER.finditer(text) if not m[3]}
    return named.pop() if len(named) == 1 else None


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def match_option(text: str, options: list[str]) -> str | None:
    """The letter of the one option whose text the answer quotes (after the last marker if
    there is one, else anywhere); None when none or several match."""
    text = str(text)
    markers = list(_LETTER_MARKER.finditer(text))
    where = _normal(text[markers[-1].end():] if markers else text)
    hits = [i for i, option in enumerate(options) if _normal(option) and _normal(option) in where]
    return "ABCD"[hits[0]] if len(hits) == 1 and hits[0] < 4 else None
