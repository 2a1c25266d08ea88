"""Answers read as a person reads them, on outputs of other models and styles (issue 27, part 5).

tests/data/answer_outputs.jsonl holds 129 SVAMP and StrategyQA outputs (real SmolLM2-135M ones and
ones written by hand in other models' styles), labelled by two readers; a seeded 40% was held out
while the reader was developed and measured once at the end. docs/fidelity.md has the figures.
"""

import json

import pytest

from fair_core.task import Problem
from fair_core.testing.labels import OUTPUTS, agrees, outputs
from fair_tasks.strategyqa import StrategyQA
from fair_tasks.svamp import Svamp

TASKS = {"svamp": Svamp(), "strategyqa": StrategyQA()}
# (agreeing, of) as measured: the reader must not fall below them
MEASURED = {
    "dev": {"svamp": (44, 44), "strategyqa": (31, 33)},
    "heldout": {"svamp": (22, 29), "strategyqa": (18, 23)},
}


@pytest.mark.parametrize("part", MEASURED)
def test_outputs_of_other_models_are_read_as_a_person_reads_them(part):
    agree, total = {}, {}
    for row, task, problem, output in outputs(TASKS, part):
        agree[row["task"]] = agree.get(row["task"], 0) + agrees(task, task.grade(problem, output)[0], row["label"])
        total[row["task"]] = total.get(row["task"], 0) + 1
    assert total == {name: of for name, (_, of) in MEASURED[part].items()}
    for name, (need, _) in MEASURED[part].items():
        assert agree[name] >= need, (part, name, agree[name], total[name])


def test_every_output_carries_both_readers_and_the_resolved_label():
    rows = [json.loads(line) for line in OUTPUTS.read_text().splitlines()]
    assert len({r["id"] for r in rows}) == len(rows) == 129
    for r in rows:
        assert {"reader_a", "reader_b", "label", "question", "gold"} <= r.keys()
        assert r["part"] in ("dev", "heldout")
        if r["reader_a"] != r["reader_b"]:
            assert r.get("note"), r["id"]  # every disagreement says how it was resolved
    assert sum(r["part"] == "heldout" for r in rows) == 52


def read(task, question: str, output: str, gold: str = "0") -> str | None:
    return TASKS[task].extract_for(Problem("q", question, gold), output)


MARBLES = "Josh lost 11 marbles. If he had 19 marbles in his collection earlier How many marbles does he have now?"
KIDS = "Julia played tag with 8 kids on monday and 11 kids on tuesday. How many more kids did she play with on tuesday?"


@pytest.mark.parametrize(
    ("question", "output", "expected"),
    [
        # x = N ends an equation solved for what the question asks; an x that stands for anything else answers nothing
        (MARBLES, "Let m be the number of marbles he has now.\nm + 11 = 19\nm = 8", "8"),
        (MARBLES, "Let m be the number of days he played.\nm + 11 = 19\nm = 8", None),
        # cut off mid-computation, or on a bare "The answer is"
        (MARBLES, "He had 19 marbles and lost 11, so now he has 19 -", None),
        (MARBLES, "He had 19 and lost 11, so he has 19 - 11 = 8 marbles.\n\nThe answer is", None),
        # an early answer, then working that concludes another: none; the same one: that one
        (MARBLES, "Answer: 30\n\nExplanation: he had 19 and lost 11, so he has 19 - 11 = 8 marbles.", None),
        pytest.param(
            MARBLES,
            "Answer: 30\n\nHe had 19 and lost 11, so he has 19 - 11 = 8 marbles.",
            None,
            marks=pytest.mark.xfail(
                strict=True, reason="known miss: a bare 'Answer: N' heading whose working has no heading of its own"
            ),
        ),
        (MARBLES, "The answer is 8.\n\nHe had 19 and lost 11, so he has 19 - 11 = 8 marbles.", "8"),
        (MARBLES, "The answer is 8, since 19 - 11 = 8. Note 19 + 11 = 30 is not the answer.", "8"),
        # two different final answers back to back
        (MARBLES, "He has 8 marbles.\n\n#### 30\n#### 8", None),
        # several results: the one the question asks for, not a later total or another count
        (KIDS, "She played with 11 - 8 = 3 more kids on Tuesday. In all she played with 8 + 11 = 19 kids.", "3"),
        (MARBLES, "He has 19 - 11 = 8 marbles. Put in bags of 2, that makes 8 / 2 = 4 full bags.", "8"),
    ],
)
def test_numeric_outputs_of_the_classes_the_reader_missed(question, output, expected):
    assert read("svamp", question, output) == expected


@pytest.mark.parametrize(
    ("question", "output", "expected"),
    [
        # a yes/no answering a question the output asks itself on the way is not the answer
        (
            "Could a llama birth twice during the War in Vietnam?",
            "How long is a llama's gestation? About 11 months. Did the war last long? Yes, about 20 years. "
            "So a llama could birth twice during it.",
            "yes",
        ),
        (
            "Is the Eiffel Tower taller than the Statue of Liberty?",
            "Is the statue over 100 metres? No, about 93. The tower is 330 metres, so yes, it is taller.",
            "yes",
        ),
        # double negation
        ("Can a goldfish live in a bowl?", "It is not impossible for a goldfish to live in a bowl.", "yes"),
        ("Do penguins eat fish?", "It isn't true that penguins don't eat fish; they eat it daily.", "no"),
        # "it is likely that ..." read against a question that asks about a negative
        ("Is salt unimportant in baking bread?", "It is likely that salt matters a great deal in bread.", "no"),
        ("Is salt unimportant in baking bread?", "It is likely that salt is unimportant there.", "yes"),
        # an early answer that the last conclusion on the question's claim reverses
        ("Can dogs swim?", "No.\n\nMost dogs paddle instinctively, so dogs can swim.", None),
        ("Can dogs swim?", "True.\n\nMost breeds paddle well, though some sink. False.", None),
        ("Can dogs swim?", "Yep, most dogs paddle by instinct.", "yes"),
    ],
)
def test_yes_no_outputs_of_the_classes_the_reader_missed(question, output, expected):
    assert read("strategyqa", question, output) == expected
