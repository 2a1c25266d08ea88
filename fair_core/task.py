"""The task contract: where problems come from, how prompts read, how answers are judged."""

from __future__ import annotations

import os
import string
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Mapping

from .errors import DataError, expect

# The prompt kinds every task writes, with the fields each template may use: those the built-in
# stages render, in pipeline order (each stage declares its own from here in ``Stage.prompts``).
# A plugin's stage brings a default template for a kind of its own instead.
PROMPT_FIELDS: dict[str, tuple[str, ...]] = {
    "student": ("question",),  # the student answers a question (examine, evaluate)
    "explain": ("question", "student_answer", "gold", "hint"),  # with the gold hint
    "solve": ("question",),  # no hint
    "review": ("question", "rationale", "gold", "hint"),
    "review_feedback": ("question", "student_answer", "feedback", "gold", "hint"),
    "learn_feedback": ("question", "student_answer", "gold"),
    "learn_rationale": ("question",),
}


# "gold" is the final answer ("145", "yes"); "hint" the dataset's whole gold field, as the paper
# gives its teachers (GSM8K's worked solution, StrategyQA's facts). A template uses a subset.
CLOSING = "The answer is {answer}."  # the closing sentence a prompt may ask an answer to end with


def check_template(kind: str, template: str, fields: tuple[str, ...]) -> None:
    """A config's template for prompts of ``kind``, refused before anything runs where rendering
    it would fail mid-run: a field the kind does not fill, a lone brace (JSON in a template)."""
    literal = "write a literal brace as {{ or }}"
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as e:
        raise DataError(f"task.prompts.{kind}: {e}: {literal}") from None
    unknown = next((name for name in names if name not in fields), None)
    if unknown is not None:
        has = ", ".join("{" + name + "}" for name in fields)
        raise DataError(f"task.prompts.{kind}: no field {{{unknown}}} (it has {has}): {literal}")


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    gold: str  # canonical gold answer, as the task's extraction would produce it
    meta: Mapping = field(default_factory=dict)


def data_root(explicit: str | Path | None = None) -> Path | None:
    """The local data folder: explicit, else $FAIR_DATA_DIR, else ../shared/data beside the repo."""
    if explicit:
        return Path(explicit)
    if os.environ.get("FAIR_DATA_DIR"):
        return Path(os.environ["FAIR_DATA_DIR"])
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


class Task(ABC):
    """A reasoning task. Subclasses set ``name``, ``hub_id`` and ``default_prompts``."""

    name: ClassVar[str]
    # set by the class, or per instance by a task built from its config (the dataset task, a hub_id)
    hub_id: str
    default_prompts: Mapping[str, str]
    presets: Mapping[str, Mapping[str, str]] = {}  # named prompt sets besides the default
    # The [task] keys besides data_dir, prompts and seed that the constructor takes as keywords
    # (TaskConfig.source); the host refuses the others with a line naming the key.
    source_keys: ClassVar[frozenset[str]] = frozenset()
    # What the cards say of the source data: a hub licence id, the upstream's address, a summary.
    license: str = "unknown"
    upstream: str | None = None
    description: str | None = None

    def __init__(
        self, data_dir: str | Path | None = None, prompts: Mapping[str, str] | str | None = None, seed: int = 0
    ):
        self.data_dir = data_root(data_dir)
        if (data_dir or os.environ.get("FAIR_DATA_DIR")) and not (self.data_dir and self.data_dir.is_dir()):
            raise DataError(
                f"data dir {self.data_dir} does not exist: point task.data_dir or FAIR_DATA_DIR "
                f"at the folder that holds {self.name}/"
            )
        if isinstance(prompts, str):
            named = {"default": self.default_prompts, **self.presets}
            if prompts not in named:
                raise DataError(f"task {self.name} has no prompt preset {prompts!r}: use one of {', '.join(named)}")
            prompts = named[prompts]
        # the kinds a run renders are its stages' (Host.task checks them and adds a plugin's templates)
        self.prompts = {**self.default_prompts, **(prompts or {})}
        self.seed = seed

    @abstractmethod
    def load(self, split: str) -> list[Problem]:
        """Problems of split "train" or "test", in a deterministic order."""

    @abstractmethod
    def extract(self, text: str) -> str | None:
        """The final answer in a model's output, canonicalised; None when there is none. Never raises."""

    def extract_for(self, problem: Problem, text: str) -> str | None:
        """The answer in ``text`` for this problem; tasks whose answers can be quoted from the
        problem itself (an option's text) override it."""
        return self.extract(text)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        return predicted is not None and predicted == gold

    def hint(self, problem: Problem) -> str:
        """The whole gold field a teacher may see as the hint; tasks with a worked solution or
        supporting facts override it."""
        return problem.gold

    def grade(self, problem: Problem, text: str) -> tuple[str | None, bool]:
        """(the answer read from ``text``, whether it is right): how examination, evaluation and
        ``fair eval`` all judge an output, so their accuracies agree."""
        got = self.extract_for(problem, text)
        expect(got is None or isinstance(got, str), f"task {self.name!r}", got, "an answer as a str, or None")
        return got, bool(self.is_correct(got, problem.gold))

    def prompt(self, kind: str, **fields: str) -> str:
        return self.prompts[kind].format(**fields)

    def rationale_target(self, text: str) -> str:
        """A teacher's rationale as the student learns it: stripped and, where the student's
        rationale prompt asks for the closing sentence (CLOSING) and the text does not end with
        one, closed with the answer the reader finds in it: the student learns the format it is
        then asked for, not one its prompt contradicts (a recorded committee wrote to other prompts)."""
        text = text.strip()
        asked = CLOSING.format(answer="<answer>") in self.prompts["learn_rationale"]
        last = text.rsplit("\n", 1)[-1].casefold()
        if not asked or "the answer is" in last:
            return text
        answer = self.extract(text)
        return text if answer is None else text + "\n" + CLOSING.format(answer=answer)
