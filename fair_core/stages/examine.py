"""examine: the student answers the train split; its wrong answers are the round's mistakes.

Round 0 also scores the untrained student on the test split, the "before" of the report. With
``task.mistakes_file`` (a paper ``*_false_round0.json``), round 0 takes its mistakes from the
file instead of examining, as the paper's recorded runs do.
"""

from __future__ import annotations

from ..errors import expect
from ..paper import mistakes_from, read
from ..runs.events import EvalResult, StageProgress
from ..runs.records import Attempt, Mistake
from ..runs.splits import TRAINED, RunItems, mistakes_path, normal, plan
from ..task import PROMPT_FIELDS, Problem
from .base import Context, Need, Prompt, Stage


def answer(ctx: Context, student, stage: str, split: str, phase: str, problems: list[Problem]) -> list[Attempt]:
    """The student's attempts at ``problems``, stored; those stored already are not redone."""
    done = {a.item_id: a for a in ctx.store.attempts(ctx.round, split, phase)}
    todo = [p for p in problems if p.id not in done]
    progress = [len(done)]

    def tick(n: int) -> None:
        progress[0] += n
        ctx.run.publish(StageProgress(stage, ctx.round, progress[0], len(problems), split))

    tick(0)  # the count is known before the first answer, which may take a while
    batch = ctx.config.student.batch_size  # stored batch by batch: a kill loses one batch at most
    for start in range(0, len(todo), batch):
        ctx.check_cancelled()
        chunk = todo[start : start + batch]
        outputs = student.generate(
            [ctx.task.prompt("student", question=p.question) for p in chunk], tick, stop=ctx.cancelled
        )
        ctx.check_cancelled()  # answers cut short by the interruption are not stored
        expect(
            isinstance(outputs, (list, tuple))
            and len(outputs) == len(chunk)
            and all(isinstance(o, str) for o in outputs),
            f"student backend {ctx.config.student.backend!r}",
            outputs,
            f"a list of {len(chunk)} str",
        )
        attempts = [Attempt(ctx.round, split, p.id, out, *ctx.task.grade(p, out)) for p, out in zip(chunk, outputs)]
        ctx.store.add_attempts(phase, attempts)
        done.update((a.item_id, a) for a in attempts)
    return [done[p.id] for p in problems]


def run_items(ctx: Context) -> RunItems:
    """The run's items (see fair_core.runs.splits), worked out once per round. Only the mistakes-file
    items round 0 uses (the first ``train_limit``) are trained on, so only they leave the test
    split: the file's other items are scored like any item the student never saw."""
    if ctx.items is None:
        t = ctx.config.task
        questions = [x["question"] for x in paper_items(ctx)] if t.mistakes_file else []
        ctx.items = plan(ctx.task, questions, t.train_limit, t.test_limit, 0 if t.mistakes_file else t.train_offset)
    return ctx.items


def train_items(ctx: Context) -> list[Problem]:
    problems = run_items(ctx).train
    ctx.store.set_items("train", problems)
    return problems


def test_items(ctx: Context) -> list[Problem]:
    """The test items scored now: the run's clean test split, less any question a round has
    trained on; the store keeps both, and why each item left out was."""
    items, trained = run_items(ctx), ctx.store.trained()
    rounds = {p.id: trained.get(normal(p.question)) for p in items.test}
    left = {i: f"{TRAINED} in round {r}" for i, r in rounds.items() if r is not None}
    ctx.store.set_left_out({**items.left_out, **left})
    problems = [p for p in items.test if p.id not in left]
    ctx.store.set_items("test", problems)
    return problems


def score(ctx: Context, student, stage: str, phase: str, problems: list[Problem]) -> dict:
    """The student's accuracy on ``problems`` (the test items: see test_items), published."""
    attempts = answer(ctx, student, stage, "test", phase, problems)
    acc = sum(a.correct for a in attempts) / max(1, len(attempts))
    ctx.run.publish(EvalResult(ctx.round, "test", acc, len(attempts), phase))
    return {f"test_accuracy_{phase}": round(acc, 4), "test_items": len(attempts)}


def paper_items(ctx: Context) -> list[dict]:
    """The items of ``task.mistakes_file`` that round 0 trains on: the first ``train_limit``
    after the first ``train_offset``."""
    t = ctx.config.task
    assert t.mistakes_file is not None  # every caller checks that the task names one
    items = read(mistakes_path(t.mistakes_file))[t.train_offset :]
    return items[: t.train_limit] if t.train_limit else items


def load_paper_mistakes(ctx: Context) -> int:
    """Round 0's mistakes from ``task.mistakes_file``, once; returns how many there are."""
    if not ctx.store.count_mistakes(0):
        ctx.store.add_mistakes(mistakes_from(paper_items(ctx), 0, ctx.task.extract))
    return ctx.store.count_mistakes(0)


def run(ctx: Context) -> dict:
    if ctx.round == 0 and ctx.config.task.mistakes_file:
        summary = {"mistakes": load_paper_mistakes(ctx), "source": ctx.config.task.mistakes_file}
        if "evaluate" in ctx.host.pipeline.ordered(ctx.config.stages):
            summary.update(score(ctx, ctx.student(), "examine", "before", test_items(ctx)))
        return summary
    student = ctx.student()
    problems = train_items(ctx)
    attempts = answer(ctx, student, "examine", "train", "before", problems)
    by_id = {p.id: p for p in problems}
    mistakes = [
        Mistake(
            ctx.round,
            a.item_id,
            by_id[a.item_id].question,
            by_id[a.item_id].gold,
            a.output,
            a.answer,
            {"hint": ctx.task.hint(by_id[a.item_id])},
        )
        for a in attempts
        if not a.correct
    ]
    ctx.store.add_mistakes(mistakes)
    summary = {
        "train_accuracy": 1 - len(mistakes) / max(1, len(attempts)),
        "mistakes": len(mistakes),
        "train_items": len(attempts),
    }
    if ctx.round == 0 and "evaluate" in ctx.host.pipeline.ordered(ctx.config.stages):
        summary.update(score(ctx, student, "examine", "before", test_items(ctx)))
    return summary


STAGE = Stage(
    "examine",
    run,
    Need.STUDENT,
    reads="the task's train split (round 0: its test split too), or round 0's task.mistakes_file",
    writes="attempts (train; round 0: test 'before'), mistakes, items, left_out",
    records=(Attempt, Mistake),
    prompts=(Prompt("student", PROMPT_FIELDS["student"]),),  # the student answers a question (evaluate's too)
)
