"""Answer reading on the labelled set (tests/data/answer_labels.jsonl): fair's reader against
the paper's own extraction and Hugging Face's math-verify, on the same real Llama-2-7b outputs.

Prints agreement with the human labels per task, and how many correct answers each reader calls
a mistake. math-verify reads numbers only, so it is scored on SVAMP alone.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "plugins")]

from fair_core.testing.labels import FILES, labelled  # noqa: E402
from fair_tasks.extract import numbers_equal  # noqa: E402
from fair_tasks.strategyqa import StrategyQA  # noqa: E402
from fair_tasks.svamp import Svamp  # noqa: E402


def paper_number(text: str) -> str | None:
    """The paper's reading: the first number after the first "\\nAnswer" or "Therefore, the
    answer is", else the last number in the text."""
    text = text.strip()
    for marker in ("\nAnswer", "Therefore, the answer is"):
        if marker in text:
            found = re.findall(r"-?\d[\d,]*\.?\d*", text.split(marker, 1)[1])
            return found[0].replace(",", "").rstrip(".") if found else None
    found = re.findall(r"-?\d[\d,]*\.?\d*", text)
    return found[-1].replace(",", "").rstrip(".") if found else None


def paper_yes_no(text: str) -> str | None:
    """The paper's reading: "true" anywhere is a yes, else "false" anywhere a no."""
    lower = text.lower()
    return "yes" if "true" in lower else "no" if "false" in lower else None


def math_verify_number(text: str) -> str | None:
    from math_verify import parse

    for value in parse(text):
        try:
            return str(float(value))
        except (TypeError, ValueError):
            continue
    return None


def same(task: str, got: str | None, label: str | None) -> bool:
    if got is None or label is None:
        return got is label
    return numbers_equal(got, label) if task == "svamp" else got == label


def main() -> None:
    readers = {
        "fair": None,
        "paper": {"svamp": paper_number, "strategyqa": paper_yes_no},
        "math-verify": {"svamp": math_verify_number},
    }
    scores: dict = {}
    for row, task, problem, output in labelled({"svamp": Svamp(), "strategyqa": StrategyQA()}):
        gold = problem.gold
        for name, fns in readers.items():
            if fns is not None and row["task"] not in fns:
                continue
            got = task.extract_for(problem, output) if fns is None else fns[row["task"]](output)
            s = scores.setdefault((name, row["task"]), [0, 0, 0])
            s[0] += same(row["task"], got, row["label"])
            s[1] += 1
            s[2] += (
                row["label"] is not None and same(row["task"], row["label"], gold) and not same(row["task"], got, gold)
            )
    print(f"{'reader':12} {'task':10} {'agreement':>10} {'correct read as mistakes':>26}")
    for (name, task), (agree, n, wrong) in scores.items():
        print(f"{name:12} {task:10} {agree / n:>9.1%} {wrong:>12} of {n}")
    ours = {t: scores[("fair", t)] for t in FILES}
    print("RESULT " + " ".join(f"{t}_agreement={a / n:.3f}" for t, (a, n, _) in ours.items()))


if __name__ == "__main__":
    main()
