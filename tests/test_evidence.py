"""What an ablation's arms differ in, and how their difference is tested: a size-matched control
for review, training targets in the format the student's prompt asks for, seeds as the unit."""

import random

import pytest

from fair_core.runs.records import Writing
from fair_core.stages.compile import size_matched
from fair_core.stats import seed_interval, welch
from fair_tasks.svamp import Svamp


def committee(items=10, teachers=("a#1", "b#1", "c#1")):
    writings = [
        Writing(0, f"i{i}", k, t, f"{k} {t} {i}")
        for i in range(items)
        for t in teachers
        for k in ("feedback", "rationale")
    ]
    # review kept one rationale on items 0-3, two on 4-5, none on 6-9
    kept = {(w.item_id, w.kind, w.author) for w in writings if w.kind == "feedback"}
    kept |= {(f"i{i}", "rationale", "a#1") for i in range(6)} | {(f"i{i}", "rationale", "b#1") for i in (4, 5)}
    return writings, kept


def test_size_matched_keeps_as_many_items_and_rationales_drawn_from_every_teacher():
    writings, kept = committee()
    draws = [size_matched(writings, kept, random.Random(seed)) for seed in range(20)]
    for drawn in draws:
        rationales = [k for k in drawn if k[1] == "rationale"]
        assert len(rationales) == 8 and len({k[0] for k in rationales}) == 6
        assert {k for k in drawn if k[1] == "feedback"} == {k for k in kept if k[1] == "feedback"}
    assert size_matched(writings, kept, random.Random(3)) == draws[3]  # seeded: the same draw again
    seen = {k for drawn in draws for k in drawn if k[1] == "rationale"}
    assert {k[2] for k in seen} == {"a#1", "b#1", "c#1"} and {k[0] for k in seen} == {f"i{i}" for i in range(10)}


def test_an_item_without_feedback_to_pair_is_never_drawn():
    writings, kept = committee()
    kept -= {("i9", "feedback", t) for t in ("a#1", "b#1", "c#1")}
    assert all(k[0] != "i9" for s in range(20) for k in size_matched(writings, kept, random.Random(s)))


@pytest.mark.parametrize(
    "prompts, text, target",
    [
        (None, " 3 + 4 = 7 apples.\n", "3 + 4 = 7 apples.\nThe answer is 7."),  # asked for, missing: closed
        (None, "3 + 4 = 7.\nSo the answer is 7.", "3 + 4 = 7.\nSo the answer is 7."),  # already there
        (None, "I cannot tell.", "I cannot tell."),  # no answer read: nothing to close with
        ("paper", " 3 + 4 = 7 apples.\n", "3 + 4 = 7 apples."),  # the paper's prompt asks for no closing
    ],
)
def test_a_rationale_is_trained_in_the_format_its_prompt_asks_for(prompts, text, target):
    assert Svamp(prompts=prompts).rationale_target(text) == target


def test_seeds_are_the_unit_of_the_interval_and_the_test():
    low, high = seed_interval([1.0, 2.0, 3.0])  # 2 +- t(0.975, 2) * 1 / sqrt(3)
    assert low == pytest.approx(2 - 2.4841, abs=1e-3) and high == pytest.approx(2 + 2.4841, abs=1e-3)
    assert seed_interval([1.0]) is None
    test = welch([1.0, 1.1, 0.9], [2.0, 2.2, 1.8])
    assert test["difference"] == pytest.approx(1.0) and test["p_value"] < 0.01 and test["seeds"] == [3, 3]
    assert welch([1.0, 1.1, 0.9], [1.0, 1.1, 0.9])["p_value"] == 1.0
    # an untrained student has no seed: a fixed point against the other arm's seeds
    assert welch([1.0, 1.1, 0.9], [5.0])["p_value"] < 0.01
