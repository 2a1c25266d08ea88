"""examine: the student answers the train split; its wrong answers are the round's mistakes.

Round 0 also scores the untrained student on the test split, the "before" of the report. With
``task.mistakes_file`` (a paper ``*_false_round0.json``), round 0 takes its mistakes from the
file instead of examining, as the paper's recorded runs do.
"""

from __future__ import annotations

from pathlib import Path

from ..events import EvalResult, StageProgress
from ..paper import mistakes_from, read
from ..records import Attempt, Mistake
from ..task import Problem, data_root
from . import Context


def answer(ctx: Context, student, stage: str, split: str, phase: str, problems: list[Problem]) -> list[Attempt]:
    """The student's attempts at ``problems``, stored; those stored already are not redone."""
    done = {a.item_id: a for a in ctx.store.attempts(ctx.round, split, phase)}
    todo = [p for p in problems if p.id not in done]
    progress = [len(done)]

    def tick(n: int) -> None:
        progress[0] += n
        ctx.run.publish(StageProgress(stage, ctx.round, progress[0], len(problems)))

    batch = ctx.config.student.batch_size  # stored batch by batch: a kill loses one batch at most
    for start in range(0, len(todo), batch):
        ctx.check_cancelled()
        chunk = todo[start:start + batch]
        outputs = student.generate([ctx.task.prompt("student", question=p.question) for p in chunk], tick,
                                   stop=ctx.cancelled)
        ctx.check_cancelled()  # answers cut short by the interruption are not stored
        attempts = []
        for p, out in zip(chunk, outputs):
            got = ctx.task.extract_for(p, out)
            attempts.append(Attempt(ctx.round, split, p.id, out, got, ctx.task.is_correct(got, p.gold)))
        ctx.store.add_attempts(phase, attempts)
        done.update((a.item_id, a) for a in attempts)
    return [done[p.id] for p in problems]


def load_split(ctx: Context, split: str) -> list[Problem]:
    problems = ctx.task.load(split)
    limit = ctx.config.task.train_limit if split == "train" else ctx.config.task.test_limit
    problems = problems[:limit] if limit else problems
    ctx.store.add_items(split, problems)
    return problems


def score(ctx: Context, student, stage: str, phase: str) -> dict:
    attempts = answer(ctx, student, stage, "test", phase, load_split(ctx, "test"))
    acc = sum(a.correct for a in attempts) / max(1, len(attempts))
    ctx.run.publish(EvalResult(ctx.round, "test", acc, len(attempts), phase))
    return {f"test_accuracy_{phase}": acc, "test_items": len(attempts)}


def load_paper_mistakes(ctx: Context) -> int:
    """Round 0's mistakes from ``task.mistakes_file``, once; returns how many there are."""
    if not ctx.store.mistakes(0):
        path = Path(ctx.config.task.mistakes_file)
        if not path.exists() and data_root():
            path = data_root() / path
        items = read(path)[: ctx.config.task.train_limit]  # the limit caps the mistakes taken
        ctx.store.add_mistakes(mistakes_from(items, 0, ctx.task.extract))
    return len(ctx.store.mistakes(0))


def run(ctx: Context) -> dict:
    if ctx.round == 0 and ctx.config.task.mistakes_file:
        summary = {"mistakes": load_paper_mistakes(ctx), "source": ctx.config.task.mistakes_file}
        if "evaluate" in ctx.config.stages:
            summary.update(score(ctx, ctx.extras["student"](), "examine", "before"))
        return summary
    student = ctx.extras["student"]()
    problems = load_split(ctx, "train")
    attempts = answer(ctx, student, "examine", "train", "before", problems)
    by_id = {p.id: p for p in problems}
    mistakes = [Mistake(ctx.round, a.item_id, by_id[a.item_id].question, by_id[a.item_id].gold, a.output,
                        a.answer) for a in attempts if not a.correct]
    ctx.store.add_mistakes(mistakes)
    summary = {"train_accuracy": 1 - len(mistakes) / max(1, len(attempts)), "mistakes": len(mistakes)}
    if ctx.round == 0 and "evaluate" in ctx.config.stages:
        summary.update(score(ctx, student, "examine", "before"))
    return summary
