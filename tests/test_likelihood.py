"""The references' measures (fair_core.results.likelihood) on stored scorings.

The margin within teachers exists for one confound: an arm that trained on more of one teacher's
rationales finds every text of that teacher likelier, right or wrong, so where that teacher wrote
more of the right references than the wrong ones, the plain margin rises for style alone.
"""

from __future__ import annotations

import pytest

from fair_core.results import likelihood

# (item, author, correct, score) under one student: on each item one teacher is right, another wrong
TEXTS = [
    ("1", "gpt#1", True, -1.0),
    ("1", "mistral#1", False, -1.6),
    ("2", "gpt#1", True, -1.2),
    ("2", "gemini#1", False, -1.5),
    ("3", "gemini#1", True, -0.9),
    ("3", "mistral#1", False, -1.1),
    ("4", "mistral#1", True, -1.3),
]


def scoring(texts) -> dict:
    """A stored scoring as likelihood.score writes it: per item and per text."""
    items: dict[str, dict[str, list[float]]] = {}
    for item, _, correct, score in texts:
        items.setdefault(item, {"correct": [], "wrong": []})["correct" if correct else "wrong"].append(score)
    return {
        "items": {i: {k: sum(v) / len(v) if v else None for k, v in parts.items()} for i, parts in items.items()},
        "texts": [{"item": i, "author": a, "correct": c, "score": s} for i, a, c, s in texts],
    }


def test_a_liking_for_one_teacher_moves_the_margin_but_not_the_margin_within_teachers():
    base = scoring(TEXTS)
    # the same student, but trained on more of gpt's rationales: all of gpt's texts gain 0.4
    likes_gpt = scoring([(i, a, c, s + 0.4 * a.startswith("gpt")) for i, a, c, s in TEXTS])
    plain = likelihood.margins(base), likelihood.margins(likes_gpt)
    within = likelihood.margins_within_teachers(base), likelihood.margins_within_teachers(likes_gpt)
    assert set(plain[0]) == set(within[0]) == {"1", "2", "3"}  # item 4 has no wrong text
    assert plain[1]["1"] == pytest.approx(plain[0]["1"] + 0.4)  # gpt wrote item 1's right text
    assert within[1] == pytest.approx(within[0])
    # by hand: item 1, gpt's right text less gpt's mean, mistral's wrong one less mistral's mean
    gpt, mistral = (-1.0 - 1.2) / 2, (-1.6 - 1.1 - 1.3) / 3
    assert within[0]["1"] == pytest.approx((-1.0 - gpt) - (-1.6 - mistral))


def test_a_change_in_right_against_wrong_within_a_teacher_still_shows():
    # the student now finds mistral's right text likelier and its wrong ones less likely
    better = scoring([(i, a, c, s + (0.3 if c else -0.3) * a.startswith("mistral")) for i, a, c, s in TEXTS])
    before, after = likelihood.margins_within_teachers(scoring(TEXTS)), likelihood.margins_within_teachers(better)
    assert after["1"] > before["1"] and after["3"] > before["3"]
