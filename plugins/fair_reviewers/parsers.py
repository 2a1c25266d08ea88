"""Score parsers: a reviewer's reply in, a score 1..5 (or None) out. Both never raise."""

from __future__ import annotations

import re

from fair_core.review import SCALE

_DIGITS = re.compile(r"[0-9]+")
_STRICT = re.compile(r"\s*([1-5])\s*")


def _score(literal: str) -> int | None:
    """The integer a literal spells (Python's int() rules, as the paper used), if it is on the scale."""
    try:
        value = int(literal)
    except ValueError:  # not an integer, or too many digits for int()
        return None
    return value if value in SCALE else None


def brackets(text: str) -> list[str]:
    """What each bracketed span on one line holds, shortest first: "[4]", "[4/5]", "[Score: 4]". The
    paper's pattern, r"\\[(.*?)\\]" (its "." stops at a newline, so a "[" and a "]" on different lines
    do not pair), read in linear time: a reply of "[" without "]" made the pattern quadratic (50,000
    of them took 17 s, a hostile megabyte hours)."""
    spans = []
    for line in text.split("\n"):
        end = 0
        while (start := line.find("[", end)) >= 0 and (end := line.find("]", start)) >= 0:
            spans.append(line[start + 1 : end])
            end += 1
    return spans


def paper(text: str) -> int | None:
    """The FAIR paper's rule. The last bracketed span decides: inside it, "a/b" reads a (which must
    be an integer), otherwise the last run of digits ("[3.5]" reads 5, "[Score]" nothing). With no
    bracket at all, the last run of digits in the whole reply counts, so "4 out of 5" reads 5.
    The result counts only when it is in 1..5."""
    if not isinstance(text, str):
        return None
    spans = brackets(text)
    if spans:
        inside = spans[-1]
        if "/" in inside:
            return _score(inside.split("/", 1)[0])
        text = inside
    digits = _DIGITS.findall(text)
    return _score(digits[-1]) if digits else None


def strict(text: str) -> int | None:
    """Only the format the review prompt asks for: the last bracketed span must hold a single digit
    1..5, spaces allowed ("[4]", "[ 4 ]"); "[4/5]", "[3.5]", "[05]" or a bare "4" read nothing."""
    if not isinstance(text, str):
        return None
    spans = brackets(text)
    match = _STRICT.fullmatch(spans[-1]) if spans else None
    return int(match.group(1)) if match else None
