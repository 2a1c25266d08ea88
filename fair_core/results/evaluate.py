"""`fair eval`: any student model on any task's split, or on a run's references, outside a run."""

from __future__ import annotations

from pathlib import Path

from ..config import StudentConfig, TaskConfig
from ..config import load as load_config
from ..errors import FairError
from ..host import Host
from ..runs.splits import plan
from ..stats import accuracy, bootstrap_ci
from ..student import load, model_folder
from . import likelihood


def evaluate_model(
    host: Host,
    model: str,
    task_config: TaskConfig,
    split: str = "test",
    limit: int | None = None,
    adapter: str | None = None,
    max_new_tokens: int = 256,
) -> dict:
    """The student's accuracy (see fair_core.stats.accuracy) on ``split``, its answers read as a
    run reads them (Task.grade)."""
    task = host.task(task_config)
    chosen = plan(task, train_limit=limit, test_limit=limit)  # a test question also in train is left out
    problems = chosen.test if split == "test" else chosen.train
    config = StudentConfig(model=model, max_new_tokens=max_new_tokens)
    student = load(host, config, (model_folder(host, config), adapter))  # a GGUF converts once
    try:
        outputs = student.generate([task.prompt("student", question=p.question) for p in problems])
    finally:
        student.close()
    return accuracy(sum(task.grade(p, o)[1] for o, p in zip(outputs, problems)), len(problems))


def score_references(host: Host, model: str, run: str | Path, adapter: str | None = None) -> dict:
    """The student's teacher-forced scores of a run's rationales (fair_core.results.likelihood) under
    that run's prompts and student settings: per measure, the mean over items and its 95%
    bootstrap interval over items."""
    if not (Path(run) / "run.sqlite").is_file():
        raise FairError(f"{run} is not a run directory (no run.sqlite): pass the folder of a run with a solve stage")
    config = load_config(Path(run) / "config.toml")
    refs = likelihood.read(Path(run), host.task(config.task))
    student_config = config.student.model_copy(update={"model": model, "adapter": None})
    student = load(host, student_config, (model_folder(host, student_config), adapter))
    try:
        scored = likelihood.score(student, refs)
    finally:
        student.close()
    out = {"references": scored["references"], "texts": len(refs)}
    for name, of in likelihood.METRICS.items():
        values = list(of(scored).values())
        mean = round(sum(values) / len(values), 4) if values else None
        out[name] = {"items": len(values), "mean": mean, "ci95": bootstrap_ci(values)}
    return out
