"""Final-answer extraction shared by the built-in tasks.

The paper's code reads the first number after "\\nAnswer" (missed when the text starts with
"Answer"), else the last number, and calls StrategyQA "true" when the word appears anywhere.
That misreads correct answers as mistakes, and the mistakes are what FAIR trains on. Here an
answer marker ("The answer is", "Answer:", "final answer", "####", \\boxed{) always wins over
the last-number fallback, its last occurrence counts, and an expression right after a marker
("Answer: 290 / 2 = 145") yields its result. An output that answers and then writes itself a
new exercise ("Question: ...", as a model continuing a few-shot prompt does) is read up to it.
An output commits to no answer (None) where it contradicts itself or stops before concluding,
as a person reading it would say (tests/data/answer_outputs.jsonl holds such outputs).
Every function here returns None rather than raising: model output is arbitrary text.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation, localcontext
from string import ascii_uppercase
from types import SimpleNamespace

# "answer (to the question) is/:/=", "final answer" alone, "####" and LaTeX \boxed{...}.
_ANSWER = r"\banswer\b(?:\s+to\s+(?:the|this)\s+(?:question|problem))?"
_ANSWER_IS = rf"{_ANSWER}\s*(?:is\b|:|=)"
# "final answer" where it announces one ("Final answer: 72", "The final answer is 72"), not in
# prose ("to get the final answer, we add 48 and 24")
_NAMED = r"\bfinal\s+answer\b(?=[\s*_]*(?:is\b|:|=|$))|####|\\boxed\s*\{"
MARKER = re.compile(rf"(?:{_ANSWER_IS}|{_NAMED})", re.I | re.M)
# the explicit ones, which name the answer itself, never a heading over working
STRONG = re.compile(rf"(?:{_ANSWER}\s+is\b|{_NAMED})", re.I | re.M)

_NUMBER = re.compile(
    r"""
    (?<![\w./])                               # not the tail of a word, a number or a date
    (?:(?P<neg>[-\u2212])|(?P<negw>negative)\s+)?  # a minus sign glued to the number ("5 - 3" is not -3)
    (?:[$\u20ac\u00a3\u00a5\u20b9]\s?)?       # currency: $ EUR GBP JPY INR
    (?P<neg2>-)?                              # "$-5"
    (?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)
    (?:/(?P<den>\d+)(?![\d/]))?               # a simple fraction "3/4" (no spaces: "6 / 2" is a division)
    (?P<pct>\s?%)?
""",
    re.X | re.ASCII,
)
_OPERATOR = re.compile(r"\s*(?:[-+*/\u00d7\u00f7^]|x(?=\s))")
# LaTeX that a model may write its answer in, as plain text: \frac{3}{4} is 3/4, \times and
# \cdot multiply, \div divides, 1{,}000 is 1,000
_LATEX = (
    (re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(\d+)\s*\}"), r"\1/\2"),
    (re.compile(r"\\(?:times|cdot)(?![A-Za-z])"), "\u00d7"),
    (re.compile(r"\\div(?![A-Za-z])"), "\u00f7"),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\*\*"), ""),  # markdown bold: "**72**", "**Answer:** 72"
)
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
# a number written out, first thing after a marker ("The answer is five."); not "one of", not the
# start of a larger one ("two hundred"), which is left unread rather than misread
_WORD = re.compile(
    rf"""[\s*_"'(:=]*(?:(?P<tens>{"|".join(_TENS)})(?:[-\s](?P<unit>{"|".join(_UNITS[1:10])}))?|(?P<small>{"|".join(_UNITS)}))\b
    (?!-|\s+(?:of|that|which|who|way|thing|another|and|or|hundred|thousand|million|billion)\b)""",
    re.I | re.X,
)
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
    if match["neg"] or match["negw"] or match["neg2"]:
        number = -number
    return canonical(number)


def _plain(text: str) -> str:
    for pattern, replacement in _LATEX:
        text = pattern.sub(replacement, text)
    return text


def _word_number(text: str) -> str | None:
    """The number written out in words at the start of ``text`` (zero to ninety-nine), if any."""
    match = _WORD.match(text)
    if not match:
        return None
    if match["small"]:
        return str(_UNITS.index(match["small"].lower()))
    unit = _UNITS.index(match["unit"].lower()) if match["unit"] else 0
    return str(10 * (_TENS.index(match["tens"].lower()) + 2) + unit)


# a line where a model that has answered goes on to write itself a new exercise ("Question: ...",
# "Q2.", "### Instruction:"), as models continuing a few-shot prompt do
_NEW_EXERCISE = re.compile(
    r"\n[ \t]*(?:#{1,4}[ \t]*)?(?:\*\*)?(?:question|q|problem|exercise|instruction|input)"
    r"[ \t]*\d*[ \t]*(?:\*\*)?[ \t]*[:.)]",
    re.I,
)


def _before_new_exercise(read):
    """``read`` (an extractor) applied to the output up to a new exercise the model wrote itself,
    where that part states an answer; else to the whole output (the "Question:" line then
    restated the question before the answer)."""

    @functools.wraps(read)
    def extract(text, *args):
        text = str(text)
        cut = _NEW_EXERCISE.search(text)
        if cut and text[: cut.start()].strip():
            found = read(text[: cut.start()], *args)
            if found is not None:
                return found
        return read(text, *args)

    return extract


def parse_number(text: str) -> str | None:
    """The canonical form of a string that is exactly one number (a gold answer), else None."""
    match = _NUMBER.fullmatch(str(text).strip().rstrip("."))
    return _value(match) if match else None


_FIRST_LINE = re.compile(r"[\s:*_]*([^\n]{0,400})")


def _segment(text: str, start: int) -> str:
    """The first non-empty line after a marker, its colon and bold (the line's first 400
    characters): where the answer the marker announces is written. Bounded, so many markers
    never make extraction quadratic."""
    return _first_line(text, start)[1]


def _first_line(text: str, start: int) -> re.Match[str]:
    """_FIRST_LINE's match at ``start``: there always is one, every part of it may match nothing."""
    match = _FIRST_LINE.match(text, start)
    assert match is not None
    return match


def _number_in(segment: str) -> str | None:
    """The number a marker announces: the first one, or, when that one starts an expression,
    the result after the clause's last "="."""
    end = _CLAUSE_END.search(segment)
    clause = segment[: end.start()] if end else segment
    matches = list(_NUMBER.finditer(clause))
    if not matches:
        word = _word_number(clause)
        if word is not None:
            return word
        clause, matches = segment, list(_NUMBER.finditer(segment))
        if not matches:
            return None
    first = matches[0]
    if "=" in clause and _OPERATOR.match(clause, first.end()):
        after = [m for m in matches if m.start() > clause.rindex("=")]
        if after:
            return _value(after[0])
    return _value(first)


# What a sentence may conclude with: its result, or what follows "so", "therefore" and the like.
_CUE = re.compile(
    r"=|\b(?:so(?!\s+that)|therefore|thus|hence|altogether|in\s+total|in\s+all|which\s+means|"
    r"that\s+means|(?:a|the)\s+total\s+of)\b",
    re.I,
)
# where an output stops without a result: "x = 4" (it never says what x is), "63 - 14" (unworked)
_OPENS = re.compile(r"\W*(?:so|therefore|thus|hence|altogether|in\s+total|in\s+all)\b", re.I)
_UNRESOLVED = re.compile(
    r"^\s*[A-Za-z](?:\s*[-+*/]\s*\d+)?\s*=\s*[-\d.,]+\s*\.?\s*$|^[^=]*\d\s+[-+*/\u00d7\u00f7x]\s+\$?\d[^=]*$"
)
# a heading that may be followed by working ("Answer:\n\nLet's ..."), not by the answer alone
_HEADING = re.compile(r"\banswer\s*[:=]|^[ \t]*#{1,4}[ \t]*(?:final[ \t]+)?answer[ \t]*$", re.I | re.M)
# where the working after a heading starts: what came before it is the answer the model states
_SECTION = re.compile(
    r"^[ \t*#]*(?:explanation|reasoning|justification|rationale|solution|work|steps?)\b[^\n:]{0,20}:", re.I | re.M
)
# an operator followed by a word: the expression is still to be worked out
_UNWORKED = re.compile(
    r"^\s*(?:[*/\u00d7\u00f7+]|-\s)|[A-Za-z]\s*[-+*/\u00d7\u00f7]\s*\d|\d\s*[-+*/\u00d7\u00f7]\s*[A-Za-z]"
)
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?](?=\s|$)|$)", re.M)
_BARE = re.compile(r"\s*[$\u20ac\u00a3]?\s*-?[\d.,/]+\s*%?\s*(?:[A-Za-z]+\s*){0,3}[.!]?\s*$")


def _result(sentence: str, given: frozenset = frozenset()) -> str | None:
    """What one sentence concludes: the number after its last "=", else the last one after its
    last cue word ("so each of the 13 boys gets 1": 1), else its last number; of those, one the
    question does not give where there is one."""
    bare = _bare(sentence)
    matches = list(_NUMBER.finditer(bare))
    if not matches:
        return None
    last = matches[-1].start()
    cues = [m for m in _CUE.finditer(bare) if m.end() <= last]
    if cues and cues[-1][0] == "=":
        first = next(n for n in matches if n.start() >= cues[-1].end())
        if _UNWORKED.search(bare[cues[-1].end() :]):  # "= 2 * Number of pages": an equation, no result
            return None
        return _value(first)
    after = [n for n in matches if not cues or n.start() >= cues[-1].end()]
    new = [n for n in after if _value(n) not in given]
    return _value((new or after)[-1])


def _bare(sentence: str) -> str:
    return re.sub(r"\([^)]*(?:\)|$)", " ", sentence)  # "9 (action figures) - 1", "2,190 (53 x 41"


_NOT_OBJECTS = {
    "more",
    "fewer",
    "less",
    "than",
    "times",
    "each",
    "per",
    "the",
    "and",
    "for",
    "with",
    "from",
    "are",
    "was",
    "were",
    "have",
    "had",
    "left",
    "days",
    "hours",
    "minutes",
}


def _concludes(sentence: str, before: str, question: str) -> bool:
    """Whether ``sentence`` draws a conclusion that answers: it opens with one ("So, ..."), is
    what a concluding line announces ("Therefore, the total is:\n\n31 x 6 = 186"), or gets a
    result that names what the question asks for ("308 girls + 318 boys = 626 pupils" for "how
    many pupils"; not "so he has a total of 65 fruit" for "how many peaches")."""
    prior = re.split(r"(?<=[.!?])\s+", before.rstrip().rsplit("\n", 1)[-1])[-1]
    asked = re.findall(r"\bhow\s+(?:many|much)\s+(?:more\s+|fewer\s+|less\s+)?([A-Za-z]+)", question, re.I)
    cues = list(_CUE.finditer(sentence))
    return bool(
        _OPENS.match(sentence)
        or (prior.endswith(":") and _OPENS.match(prior))
        or (cues and _words(sentence[cues[-1].start() :]) & {w.lower() for w in asked})
    )


def _off_topic(sentence: str, question: str | None, before: str = "") -> bool:
    """Whether ``sentence`` counts something the question gives but does not ask about ("87
    oranges" when it asks for bananas) and never what it asks about. A sentence that names
    none of the question's objects ("Therefore, he has 23 x 80 = 1840") is judged with the
    sentence ``before`` it on its line ("... each bookshelf has 80 magazines.")."""
    if not question:
        return False
    objects, asked = _objects(question)
    words = _words(sentence)
    if not words & objects:
        words |= _words(before)
    return bool(asked) and bool(words & (objects - asked)) and not words & asked


def _objects(question: str) -> tuple[set, set]:
    """(what the question counts: "27 books" gives "books", what it asks about of those)."""
    objects = {
        w.lower()
        for w in re.findall(r"\d[\d,.]*\s+(?:(?:more|fewer|less|extra|other)\s+)?([A-Za-z]{3,})", question, re.I)
    } - _NOT_OBJECTS
    wh = list(re.finditer(r"\b(?:how|what|which|who)\b", question, re.I))
    return objects, objects & _words(question[wh[-1].start() :] if wh else "")


def _words(text: str) -> set:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text)}


def _restates(sentence: str, question: str, given: frozenset) -> bool:
    """Whether a cut-off sentence only restates the question: what it computes is a number the
    question gives, or it stops inside one ("Adam could fit 1" of "Adam could fit 10 ...")."""
    found = _result(sentence, given)
    if found in given:
        return True
    tail = re.search(r"((?:[A-Za-z]+\s+){1,3})(\d+)\s*$", sentence)
    return tail is not None and re.search(rf"\b{re.escape(tail[1])}{tail[2]}\d", question, re.I) is not None


def _conclusion(text: str, stated: bool, complete: bool = False, question: str | None = None) -> str | None:
    """The number ``text`` concludes with. Its last sentence that has a number counts when it is
    whole (it ends, or more text follows) or draws a conclusion (a cue); one cut off while
    restating the question ("Melissa scored 12") does not, and then only an earlier sentence
    that draws a conclusion counts. ``stated``: ``text`` follows an answer heading, so a bare
    number there ("Answer: 63") is the answer; ``complete``: more of the output follows ``text``;
    ``question``: its numbers tell a cut-off sentence whose number is new (a result: "Kelly
    needs to give away 78"), which counts, from one that restates the question, which does not.
    Of several results, one that is what the question asks for wins over a later one that is
    something else (see _fits): "2 more kids on Tuesday" over "28 kids over the three days"."""
    results = _results(text, stated, complete, question)  # lazily: most outputs need only the first
    first = next(results, None)
    if first and question and _fits(first[0], first[1], question) is False:
        better = next((value for sentence, value in results if _fits(sentence, value, question)), None)
        if better is not None or not (complete or _ends(text)):  # cut off before it answers
            return better
    return first[1] if first else None


def _results(text: str, stated: bool, complete: bool, question: str | None):
    """(sentence, result) of the sentences that may conclude ``text``, the last first: see _conclusion."""
    given = numbers_in(question) if question else frozenset()
    sentences = [m for m in _SENTENCE.finditer(text) if _NUMBER.search(m[0])]
    ended = complete or _ends(text)
    restated = False  # cut off while restating: only a sentence that opens with a conclusion counts
    for i, m in enumerate(reversed(sentences)):
        sentence = m[0]
        if i == 0 and _UNRESOLVED.match(_bare(sentence)):
            solved = _solved(sentence, text, question)
            if solved is not None:
                yield sentence, solved
            return
        line = text[max(text.rfind("\n", 0, m.start()) + 1, m.start() - 400) : m.start()]  # bounded: no quadratic
        if _off_topic(sentence, question, line):
            continue
        goes_on = i == 0 and text[m.end() :].strip() != ""
        if i == 0 and goes_on and not ended and not _CUE.search(sentence):
            continue  # a statement that the output goes on from and is cut off: no conclusion
        whole = i > 0 or ended or goes_on
        if i == 0 and (whole or ((stated or text.strip() == sentence.strip()) and _BARE.match(sentence))):
            found = _result(sentence, given)
        elif i == 0 and given and question:  # cut off: what it computed counts, what it restated does not
            restated = _restates(sentence, question, given)
            found = None if restated else _result(sentence, given)
        elif (
            _concludes(sentence, text[: m.start()], question or "")  # restated: the question was given
            if restated
            else (
                _CUE.search(sentence)
                or (i == 0 and stated and "\n" not in text[: m.start()] and len(_NUMBER.findall(sentence)) == 1)
            )
        ):
            found = _result(sentence, given)
        else:
            continue
        if found is not None:
            yield sentence, found


def _ends(text: str) -> bool:
    """Whether ``text`` ends as a sentence does, not cut off mid-way."""
    return text.rstrip().rstrip("*_`'\" )]").endswith((".", "!", "?"))


# what a question asks for: "how many more cups of flour" (a comparison: more, cups)
_ASKED = re.compile(
    r"\bhow\s+(?:many|much)\s+(?:(more|fewer|less)\s+)?"
    r"(?!(?:will|do|does|did|is|are|was|were|can|could|should|would|has|have|had|of|than)\b)([A-Za-z]+)",
    re.I,
)
_COMPARES = re.compile(
    r"\b(?:more|fewer|less|difference|than|farther|further|longer|shorter|taller|older|younger)\b", re.I
)
_TOTALS = re.compile(r"\b(?:total|altogether|in\s+all|together|combined|overall)\b", re.I)
# words that may stand between a number and what it counts ("9 full rows", "5 more cups")
_BETWEEN = {"full", "whole", "more", "fewer", "less", "extra", "new", "old", "other", "of", "the"}


def _fits(sentence: str, value: str, question: str) -> bool | None:
    """Whether ``sentence``, whose result is ``value``, gives what the question asks for: for
    "how many more X than Y" a comparison (not a total); else the thing counted right after
    the result ("= 186 pencils" for "how many pencils", not "= 9 full rows"). None: can't tell."""
    asks = _ASKED.search(question)
    if asks is None:
        return None
    if asks[1] or re.search(r"\bthan\b", question[asks.start() :], re.I):
        if _COMPARES.search(sentence):
            return True
        summed = re.search(r"([^=]*)=[^=]*$", _bare(sentence))  # "8 + 11 + 9 = 28": a sum, no difference
        return False if _TOTALS.search(sentence) or (summed and "+" in summed[1] and "-" not in summed[1]) else None
    bare = _bare(sentence)
    at = [n for n in _NUMBER.finditer(bare) if _value(n) == value]
    counted = (
        [w for w in re.findall(r"[A-Za-z]+", bare[at[-1].end() :][:40]) if w.lower() not in _BETWEEN] if at else []
    )
    return _same_word(counted[0], asks[2]) if counted else None


def _same_word(a: str, b: str) -> bool:
    """ "pencil" and "pencils" are one word."""
    a, b = a.lower(), b.lower()
    return a.rstrip("s") == b.rstrip("s")


# "Let x be the number of marbles he has now": a variable, and what it stands for
_LET = re.compile(r"\blet\s+([A-Za-z])\s+(?:be|represent|denote|stand\s+for)\s+([^.;,\n]*)", re.I)
_DEFINES = re.compile(r"\b([A-Za-z])\s+(?:be|represents?|denotes?|stands?\s+for)\b")


def _solved(sentence: str, text: str, question: str | None) -> str | None:
    """ "x = 8" that ends an equation solved for one variable, defined as what the question asks
    for ("Let x be the number of marbles he has now" and "how many marbles"): 8. Else None: an
    x that stands for something else, or one of several unknowns, answers nothing."""
    solved = re.match(r"\s*([A-Za-z])\s*=\s*", _bare(sentence))
    let = _LET.search(text)
    asks = _ASKED.search(question or "")
    if not (solved and let and asks and question):
        return None
    var, means = let[1], let[2]
    if {v.lower() for v in _DEFINES.findall(text)} - {var.lower()} or solved[1].lower() != var.lower():
        return None
    if not any(_same_word(w, asks[2]) for w in re.findall(r"[A-Za-z]+", means)):
        return None
    if (asks[1] or re.search(r"\bthan\b", question[asks.start() :], re.I)) and not _COMPARES.search(means):
        return None
    number = _NUMBER.search(_bare(sentence), solved.end())
    return _value(number) if number else None


def numbers_in(question: str) -> frozenset:
    """The canonical numbers a question states."""
    return frozenset(v for v in map(_value, _NUMBER.finditer(question)) if v is not None)


_OPTION = re.compile(r"^\s*\(?([A-D])\)?[.:)]?(?:\s+|$)")


def _option_value(text: str, stated: str, letter: re.Match) -> str | None:
    """ "Answer: B)" after a list of options the model wrote itself ("B) 1,052 sacks"): B's number."""
    rest = stated[letter.end() :]
    if _NUMBER.search(rest):
        return _conclusion(rest, stated=True)
    line = re.search(rf"^\s*\(?{letter[1]}[.:)]\s*([^\n]*)", text, re.M)
    return _result(line[1]) if line and _NUMBER.search(line[1]) else None


# an output that stops mid-computation ("= 24400 + 9760 +") or right after "The answer is"
_DANGLING = re.compile(rf"(?:\s[-+*/\u00d7\u00f7]|=|{_ANSWER_IS}|{_NAMED})[\s*_:]*\Z", re.I)
# "29564, which is the answer": a conclusion named after it is stated
_NAMED_AFTER = re.compile(r"\bwhich\s+is\s+(?:the|our|my)\s+(?:final\s+)?answer\b", re.I)


def _two_answers(text: str, markers: list[re.Match], found: str) -> bool:
    """Whether the final answer ``found``, at the last of ``markers``, ends a block of marker
    lines, each a line of its own, that states another ("#### 7" then "#### 11"): two final
    answers back to back commit to neither."""
    start = len(text)
    for marker in reversed(markers):
        line = _first_line(text, marker.end())
        if text[text.rfind("\n", 0, marker.start()) + 1 : marker.start()].strip() or text[line.end() : start].strip():
            return False  # a marker inside a sentence, or text between it and the next
        other = _number_in(line[1])
        if other is not None and not numbers_equal(other, found):
            return True
        start = marker.start()
    return False


def _retracted(found: str | None, after: str, question: str | None) -> bool:
    """Whether the working ``after`` a stated answer concludes with a different one ("Answer: 8
    ... so 8 - 3 = 5 more customers left"): the output then contradicts itself and commits to
    neither. Only a whole last sentence that draws a conclusion counts, not a denial ("9, which
    is not the answer") nor one cut off."""
    if found is None or not _ends(after):
        return False
    last = [m[0] for m in _SENTENCE.finditer(after) if _NUMBER.search(m[0])][-1:]
    if not last or re.search(r"\bnot\b", last[0]) or _off_topic(last[0], question):
        return False
    numbers = list(_NUMBER.finditer(last[0]))
    if not (any(c.end() <= numbers[-1].start() for c in _CUE.finditer(last[0])) or _NAMED_AFTER.search(last[0])):
        return False
    given = numbers_in(question) if question else frozenset()
    later = _result(last[0], given)
    return later is not None and later not in given and not numbers_equal(later, found)


@_before_new_exercise
def extract_number(text: str, question: str | None = None) -> str | None:
    """The final numeric answer. At the last explicit marker ("the answer is", "final answer",
    "####", \\boxed) that is followed by a number; else under the last "Answer:" heading, up to
    the working that follows it ("Explanation:"); else the conclusion of the whole text. An
    output cut off before it states an answer has none; with the ``question``, a cut-off
    sentence whose number is not one the question gives is taken as the result it states. An
    output that contradicts itself commits to none: it states an answer and its working then
    concludes another, or it ends on two different final answers."""
    text = _plain(str(text))
    if _DANGLING.search(text):
        return None
    markers = list(STRONG.finditer(text))
    for k in reversed(range(len(markers))):
        found = _number_in(_segment(text, markers[k].end()))
        if found is not None:
            line = _first_line(text, markers[k].end())
            end = _CLAUSE_END.search(text, line.start(1), line.end())
            after = text[end.end() if end else line.end() :]
            if _two_answers(text[: line.end()], markers[: k + 1], found) or _retracted(found, after, question):
                return None
            return found
    headings = list(_HEADING.finditer(text))
    if headings:
        region = text[headings[-1].end() :]
        working = _SECTION.search(region)
        stated = region[: working.start()] if working else region
        letter = _OPTION.match(stated)
        if letter:
            return _option_value(text, stated, letter)
        if _NUMBER.search(stated):
            found = _conclusion(stated, stated=True, complete=working is not None, question=question)
            if working and _retracted(found, region[working.start() :], question):
                return None
            return found
        if (word := _word_number(stated)) is not None:  # "Answer: Five"
            return word
        if working:  # "Answer: more files than apps" then working that ends in a number
            return _conclusion(region[working.end() :], stated=False, question=question)
    return _conclusion(text, stated=False, question=question)


def numbers_equal(predicted: str | None, gold: str) -> bool:
    """Numeric comparison within relative or absolute 1e-6; falls back to string equality."""
    if predicted is None:
        return False
    try:
        return math.isclose(float(predicted), float(gold), rel_tol=1e-6, abs_tol=1e-6)
    except (ValueError, OverflowError):
        return predicted == gold


# yes/true/false anywhere ("not true", "isn't true", "not entirely false" are negated; "yep" is a
# yes, "nope" a no); "no" only where it stands as an answer, before punctuation or the end of a
# line ("No, ...", "is no."), never in "no evidence".
_YES_NO = re.compile(
    r"""(?:(not|(?<=\w)n't)\s+(?:\w+ly\s+)?)?\b(true|false|yes|yep|yup|yeah)\b"""
    r"""|\b(no|nope)(?=[ \t]*(?:[.,;:!?)"'*]|$))""",
    re.I | re.M,
)
# right after a marker, the first word decides, "no" included ("Answer: No because ...").
_LEAD = re.compile(r"""[\s"'*(\[]*(?:(not)\s+(?:\w+ly\s+)?)?(yes|no|true|false)\b""", re.I)
# "true or false" or "yes/no", quoted or not: an echo of the instruction, never an answer
_EITHER = re.compile(r"""\b(?:true|false|yes|no)["'*]*(?:,?\s+or\s+|\s*/\s*)["'*]*(?:true|false|yes|no)\b""", re.I)
# a sentence that draws the conclusion, where the model states none in so many words
_CONCLUDES = re.compile(
    r"""^\W*(?:therefore|thus|hence|so|overall|in\s+conclusion|in\s+summary|as\s+a\s+result|
    based\s+on\b[^,]*,|for\s+(?:these|this|all\s+these)\s+reasons?,)|,\s*so\s|\bI\s+(?:believe|think|conclude)\b|
    \bit(?:\s+i|')s\s+(?:reasonable\s+to\s+conclude|(?:not\s+)?(?:highly\s+|very\s+)?(?:unlikely|likely|possible|impossible|(?:un)?reasonable))\b""",
    re.I | re.X,
)
_CONCESSION = re.compile(
    r"^\W*(?:(?:overall|therefore|thus|so|however),?\s+)?(?:while|although|though|even\s+though|whereas)\b[^,]*,", re.I
)
_NEGATION = re.compile(
    r"\b(?:not|never|cannot|unlikely|impossible|neither|nor|none|fail(?:s|ed)?\s+to|rather\s+than|instead\s+of)\b|n't\b",
    re.I,
)
# a negation of a negative, which cancel: "not impossible", "not unreasonable", "would not fail to"
_DOUBLE = re.compile(
    r"(?:\bnot|n't)\s+(?:\w+\s+){0,2}?(?:impossible|unlikely|un(?:reasonable|common|usual|heard|known|true|able|safe)|"
    r"fail(?:s|ed)?\s+to)\b",
    re.I,
)
# a question that asks about a negative ("Is viscosity unimportant ...?", "... be unfamiliar with ...?")
_UN_WORD = re.compile(r"\bun(?!der|it|ivers|iq|if|ion|til|less)[a-z]{4,}\b", re.I)
_UNDECIDED = re.compile(
    r"\b(?:undecided|it\s+depends|difficult\s+to\s+say|hard\s+to\s+say|cannot\s+be\s+determined|"
    r"impossible\s+to\s+(?:say|determine|know))\b",
    re.I,
)
_ASKS = re.compile(r"\W*(?:please|justify|explain|provide|answer|give|explanation\s*:|reasoning\s*:)", re.I)
_STATEMENT_ECHO = re.compile(r"\btrue\s+or\s+false\s*:", re.I)
_CLAUSE = re.compile(r"[^.!?\n]+[.!?]?")


def _yes_no(match: re.Match) -> str:
    negated, word = match[1], next(g for g in match.groups()[1:] if g).lower()
    says_yes = word in ("yes", "true", "yep", "yup", "yeah")
    if negated and word in ("true", "false"):  # "not true" is a no
        says_yes = not says_yes
    return "yes" if says_yes else "no"


# an answer given without yes or no, at the start of the output: "Probably not.", "Certainly!"
_HEDGE = re.compile(
    r"""[\W_]*(?:
        (?P<no>(?:probably|definitely|certainly|most\s+likely|absolutely)\s+not|not\s+(?:likely|really|at\s+all)
            |nope|I\s+don'?t\s+think\s+so|unlikely)\b(?=[\s*_"')]*(?:[.!,;]|$))
        |(?:certainly|absolutely|definitely|of\s+course|indeed|yep|yup)\b(?=[\s*_"')]*(?:[.!;]|$))
    )""",
    re.I | re.X,
)


@_before_new_exercise
def extract_yes_no(text: str, question: str | None = None) -> str | None:
    """ "yes"/"no": the first decisive word after the last answer marker that has one, else the
    first one in the text, else the polarity of its conclusion (see _polarity, which reads
    the ``question``'s qualifier); "True or False" echoed from a prompt is not decisive. With
    the ``question``: a yes/no that answers a question the output asks itself on the way is
    not its answer, and one the output's last conclusion reverses ("Yes. ... So he was not a
    daredevil.") leaves it committed to none."""
    original = str(text)
    text = _EITHER.sub(lambda m: " " * len(m[0]), original)
    ends = [marker.end() for marker in MARKER.finditer(text)]
    # a later marker with nothing after it leaves earlier ones only the text up to it
    for start, stop in reversed(list(zip(ends, ends[1:] + [len(text)]))):
        found = _LEAD.match(text, start, stop) or _YES_NO.search(text, start, stop)
        if found:
            return _yes_no(found)
    hedge = _HEDGE.match(text)
    if hedge:
        return "no" if hedge["no"] else "yes"
    found = next((m for m in _YES_NO.finditer(text) if not _answers_own_question(text, m.start(), question)), None)
    if not found:
        return _polarity(original, question)
    answer = _yes_no(found)
    last = _last_verdict(text[found.end() :], question)
    return None if last is not None and last != answer else answer  # "Yes. ... So he was not": none


def _answers_own_question(text: str, at: int, question: str | None) -> bool:
    """Whether the yes/no at ``at`` answers a question the output asks itself on the way ("Was he
    alive in 1907? Yes, ..."), not the task's own (a restatement shares most of its words)."""
    asked = re.search(r"([^.!?\n]*)\?[\s\"'*]*$", text[max(0, at - 300) : at])
    if not asked or not question:
        return False
    return not _restates_claim(asked[1], question)


def _restates_claim(sentence: str, question: str) -> bool:
    """Whether ``sentence`` speaks of the question's own claim: it has most of its words."""
    own = _content(question)
    return len(own & _content(sentence)) >= 0.6 * len(own)


def _content(text: str) -> set:
    return {w for w in _words(text) if len(w) > 3} - {"there", "that", "this", "with", "would", "could", "have"}


def _last_verdict(text: str, question: str | None) -> str | None:
    """The answer the end of ``text`` gives: a closing "False." or the polarity of a last
    sentence that draws a conclusion on the question's own claim ("So children can indeed be
    hurt" for "Can children be hurt ...?"); None where it ends with neither."""
    clauses = [m[0].strip() for m in _CLAUSE.finditer(_EITHER.sub(" ", text)) if m[0].strip()]
    if not clauses:
        return None
    lead = re.fullmatch(r"""[\W_]*(?:(not)\s+)?(yes|no|true|false)[\W_]*""", clauses[-1], re.I)
    if lead:
        return _yes_no(lead)
    if not (_CONCLUDES.search(clauses[-1]) and question and _restates_claim(clauses[-1], question)):
        return None
    return _polarity(clauses[-1], question)


# words that make a question's claim strong: "directly responsible", "only", "always"
_QUALIFIER = re.compile(r"\b(?:directly|solely|only|entirely|completely|exclusively|always|ever)\b", re.I)


def _polarity(text: str, question: str | None = None) -> str | None:
    """For an output that names no answer: the polarity of the sentence that draws its
    conclusion ("it is unlikely that ..." is a no; "while X, Y" is read from Y, unless X denies
    the qualifier the question hangs on: "directly" in "were they directly responsible?" and
    "while it is impossible to directly attribute it to them, ..."), or, after an echoed "True
    or False: <statement>", of its last sentence. A negated negative is a yes ("it is not
    impossible"); where the question asks about a negative ("Is viscosity unimportant ...?"), a
    conclusion that does not repeat that word speaks of its opposite ("it is likely that
    viscosity matters": a no). Otherwise none: a hint or a list of facts asserts nothing."""
    echo = list(_STATEMENT_ECHO.finditer(text))
    after = text[text.find("\n", echo[-1].end()) + 1 :] if echo and "\n" in text[echo[-1].end() :] else ""
    text = _EITHER.sub(" ", text)
    sentences = [m[0].strip() for m in _CLAUSE.finditer(text) if m[0].strip()]
    concluding = [s for s in sentences if _CONCLUDES.search(s)]
    said = [m[0].strip() for m in _CLAUSE.finditer(after) if m[0].strip() and not _ASKS.match(m[0])]
    chosen = (concluding or said)[-1:]
    if not chosen or _UNDECIDED.search(text[text.rfind(chosen[0]) :]):
        return None
    if question and any(
        re.search(rf"{_NEGATION.pattern}\W+(?:\w+\W+){{0,3}}{re.escape(q[0])}\b", chosen[0], re.I)
        for q in _QUALIFIER.finditer(question)
    ):
        return "no"
    main = _CONCESSION.sub("", chosen[0])
    says = "no" if _NEGATION.search(_DOUBLE.sub(" ", main)) else "yes"  # "not impossible" is a yes
    denied = [w for w in _UN_WORD.findall(question or "") if w.lower() not in main.lower()]
    return ("yes" if says == "no" else "no") if denied else says  # "unimportant?": "it matters" is a no


_LETTER_MARKER = re.compile(
    rf"(?:{_ANSWER_IS}|{_NAMED}"
    r"|\b(?:(?:best|correct|right|closest|most\s+\w+)\s+)?(?:option|choice|answer)\s+(?:is|would\s+be|should\s+be)\b"
    r"|\bI\s+(?:would\s+|will\s+)?(?:choose|select|pick|go\s+with)\b)",
    re.I | re.M,
)
_REJECTED = re.compile(r"[\s*]*(?:is\s+)?(?:wrong|incorrect|false|not\b)", re.I)


@functools.cache
def _letter_patterns(last: str) -> SimpleNamespace:
    """The letter readers for options A..``last``; four options (LogiQA's) unless a task has more."""
    up, low = f"A-{last}", f"a-{last.lower()}"
    return SimpleNamespace(
        letter=re.compile(
            rf"\(([{up}{low}])\)"  # (b)
            rf"|\b(?i:option|choice)\s*\(?([{up}{low}])\b"  # option B, Choice (c)
            rf"|(?<![\w'])([{up}])(?![\w'])"  # a bare capital letter
        ),
        # a letter standing alone right after a marker, lower case too: "Answer: b", "is **C**."
        lone=re.compile(rf"[\s*_(]*([{up}{low}])(?:[.):]|[\s*_]*$)"),
        # a verdict on one option: "C is correct", "B is the best choice", "Therefore, C."
        verdict=re.compile(
            rf"(?<![\w'])\(?([{up}])\)?\s+is\s+(?:the\s+)?(?:correct|right|best|most\s+\w+|answer)\b"
            rf"|\b(?i:therefore|thus|hence|so),?\s+\(?([{up}])\)?(?:[.!]|\s*$)",
            re.M,
        ),
        leading=re.compile(rf"[\s*#]*\(?([{up}{low}])(?:\)|[.:](?!\w)|\s*$)"),
    )


def _letter(match: re.Match) -> str:
    return next(g for g in match.groups() if g).upper()


@_before_new_exercise
def extract_letter(text: str, options: int = 4) -> str | None:
    """An option letter, "A".."D" for four ``options``: after the last answer marker that names one
    ("the answer is", "the best option is", "I would choose"), else the last verdict on one ("C is
    correct"), else a letter the text opens with ("B.", "(b)") unless it rejects it ("A. is
    wrong"), else the only letter the text names as an option."""
    text = str(text)
    read = _letter_patterns(ascii_uppercase[max(1, min(options, 26)) - 1])
    for marker in reversed(list(_LETTER_MARKER.finditer(text))):
        segment = _segment(text, marker.end())
        found = read.lone.match(segment) or read.letter.search(segment)
        if found:
            return _letter(found)
    verdicts = list(read.verdict.finditer(text))
    if verdicts:
        return _letter(verdicts[-1])
    leading = read.leading.match(text)
    if leading and not _REJECTED.match(text, leading.end()):
        return leading[1].upper()
    named = {_letter(m) for m in read.letter.finditer(text) if not m[3]}
    return named.pop() if len(named) == 1 else None


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def match_option(text: str, options: list[str], words: bool = False) -> str | None:
    """The letter of the one option whose text the answer quotes (after the last marker if
    there is one, else anywhere); None when none or several match. ``words``: an option is
    quoted only as whole words, so "2" is not in "24" nor "cat" in "category"."""
    text = str(text)
    markers = list(_LETTER_MARKER.finditer(text))
    pad = " " if words else ""
    where = pad + _normal(text[markers[-1].end() :] if markers else text) + pad
    hits = [i for i, option in enumerate(options) if _normal(option) and f"{pad}{_normal(option)}{pad}" in where]
    return ascii_uppercase[hits[0]] if len(hits) == 1 and hits[0] < 26 else None


_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normal_text(text: str) -> str:
    """A free-text answer as compared with the gold one: case, accents' forms, punctuation,
    articles and spacing do not make two answers different ("The Eiffel Tower." = "eiffel tower")."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return " ".join(_ARTICLES.sub(" ", re.sub(r"[^\w\s]", " ", text)).split())


@_before_new_exercise
def extract_text(text: str) -> str | None:
    """A free-text final answer: the rest of the sentence after the last answer marker ("The
    answer is Paris."), what \\boxed{} holds, else the last line that says anything; markdown,
    quotes and LaTeX's \\text{} taken off."""
    text = str(text)
    markers = list(MARKER.finditer(text))
    found = (
        _segment(text, markers[-1].end())
        if markers
        else next((line for line in reversed(text.splitlines()) if line.strip()), "")
    )
    if markers and markers[-1][0].endswith("{"):
        found = _braced(found)
    found = re.sub(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}", r"\1", found)
    found = re.split(r"(?<=[^\d\s])\.(?:\s|$)", found, maxsplit=1)[0]  # the sentence, not "3.5"
    found = found.strip().strip("*_`\"'“”‘’$ ").rstrip(".!").strip()
    return found or None


def _braced(text: str) -> str:
    """``text`` up to the brace that closes one opened just before it."""
    depth = 1
    for i, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[:i]
    return text


# what may follow a free-text answer without being part of it: a remark in brackets ("Paris (the
# capital)"), an apposition ("Paris, the capital of France"), a dash ("Paris - the capital")
_ASIDE = re.compile(
    r"\s\(|,\s+(?:the|a|an|which|who|whose|where|as|because|since|i\.e\.|e\.g\.)\s|\s[-\u2013\u2014]\s", re.I
)


def free_answer(text: str) -> str:
    """A free-text answer without an aside that follows it: "Paris, the capital" is "Paris"."""
    aside = _ASIDE.search(str(text))
    return str(text)[: aside.start()] if aside and aside.start() > 0 else str(text)


def extract_pattern(text: str, pattern: re.Pattern) -> str | None:
    """The last match of ``pattern`` in ``text`` (its first group where it has groups)."""
    matches = list(pattern.finditer(str(text)))
    if not matches:
        return None
    found = matches[-1][1] if pattern.groups else matches[-1][0]
    return found.strip() if found and found.strip() else None
