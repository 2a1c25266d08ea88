"""Final-answer extraction shared by the built-in tasks.

The paper's code reads the first number after "\\nAnswer" (missed when the text starts with
"Answer"), else the last number, and calls StrategyQA "true" when the word appears anywhere.
That misreads correct answers as mistakes, and the mistakes are what FAIR trains on. Here an
answer marker ("The answer is", "Answer:", "final answer", "####", \\boxed{) always wins over
the last-number fallback, its last occurrence counts, and an expression right after a marker
("Answer: 290 / 2 = 145") yields its result. An output that answers and then writes itself a
new exercise ("Question: ...", as a model continuing a few-shot prompt does) is read up to it.
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
    match = _FIRST_LINE.match(text, start)
    assert match is not None  # every part of the pattern may match nothing
    return match[1]


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
        return _value(next(n for n in matches if n.start() >= cues[-1].end()))
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
    needs to give away 78"), which counts, from one that restates the question, which does not."""
    given = numbers_in(question) if question else frozenset()
    sentences = [m for m in _SENTENCE.finditer(text) if _NUMBER.search(m[0])]
    ended = complete or text.rstrip().rstrip("*_`'\" )]").endswith((".", "!", "?"))
    restated = False  # cut off while restating: only a sentence that opens with a conclusion counts
    for i, m in enumerate(reversed(sentences)):
        sentence = m[0]
        if i == 0 and _UNRESOLVED.match(_bare(sentence)):
            return None
        line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
        if _off_topic(sentence, question, line):
            continue
        whole = i > 0 or ended or text[m.end() :].strip() != ""
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
            return found
    return None


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


@_before_new_exercise
def extract_number(text: str, question: str | None = None) -> str | None:
    """The final numeric answer. At the last explicit marker ("the answer is", "final answer",
    "####", \\boxed) that is followed by a number; else under the last "Answer:" heading, up to
    the working that follows it ("Explanation:"); else the conclusion of the whole text. An
    output cut off before it states an answer has none; with the ``question``, a cut-off
    sentence whose number is not one the question gives is taken as the result it states."""
    text = _plain(str(text))
    for marker in reversed(list(STRONG.finditer(text))):
        found = _number_in(_segment(text, marker.end()))
        if found is not None:
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
            return _conclusion(stated, stated=True, complete=working is not None, question=question)
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


# yes/true/false anywhere ("not true", "not entirely false" are negated); "no" only where it
# stands as an answer, before punctuation or the end of a line ("No, ...", "is no."), never in
# "no evidence".
_YES_NO = re.compile(
    r"""\b(?:(not)\s+(?:\w+ly\s+)?)?(true|false|yes)\b|\b(no)(?=[ \t]*(?:[.,;:!?)"'*]|$))""", re.I | re.M
)
# right after a marker, the first word decides, "no" included ("Answer: No because ...").
_LEAD = re.compile(r"""[\s"'*(\[]*(?:(not)\s+(?:\w+ly\s+)?)?(yes|no|true|false)\b""", re.I)
# "true or false" or "yes/no", quoted or not: an echo of the instruction, never an answer
_EITHER = re.compile(r"""\b(?:true|false|yes|no)["'*]*(?:,?\s+or\s+|\s*/\s*)["'*]*(?:true|false|yes|no)\b""", re.I)
# a sentence that draws the conclusion, where the model states none in so many words
_CONCLUDES = re.compile(
    r"""^\W*(?:therefore|thus|hence|so|overall|in\s+conclusion|in\s+summary|as\s+a\s+result|
    based\s+on\b[^,]*,|for\s+(?:these|this|all\s+these)\s+reasons?,)|,\s*so\s|\bI\s+(?:believe|think|conclude)\b|
    \bit(?:\s+i|')s\s+(?:reasonable\s+to\s+conclude|(?:highly\s+|very\s+)?(?:unlikely|likely|possible|impossible|not\s+possible))\b""",
    re.I | re.X,
)
_CONCESSION = re.compile(
    r"^\W*(?:(?:overall|therefore|thus|so|however),?\s+)?(?:while|although|though|even\s+though|whereas)\b[^,]*,", re.I
)
_NEGATION = re.compile(r"\b(?:not|never|cannot|unlikely|impossible|neither|nor|none)\b|n't\b", re.I)
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
    says_yes = word in ("yes", "true")
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
    the ``question``'s qualifier); "True or False" echoed from a prompt is not decisive."""
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
    found = _YES_NO.search(text)
    return _yes_no(found) if found else _polarity(original, question)


# words that make a question's claim strong: "directly responsible", "only", "always"
_QUALIFIER = re.compile(r"\b(?:directly|solely|only|entirely|completely|exclusively|always|ever)\b", re.I)


def _polarity(text: str, question: str | None = None) -> str | None:
    """For an output that names no answer: the polarity of the sentence that draws its
    conclusion ("it is unlikely that ..." is a no; "while X, Y" is read from Y, unless X denies
    the qualifier the question hangs on: "directly" in "were they directly responsible?" and
    "while it is impossible to directly attribute it to them, ..."), or, after an echoed "True
    or False: <statement>", of its last sentence. Otherwise none: a hint or a list of facts
    asserts nothing."""
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
    return "no" if _NEGATION.search(main) else "yes"


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
