"""`fair eval`: any student model on any task's split, outside a run."""

from __future__ import annotations

from .config import StudentConfig, TaskConfig
from .host import Host
from .splits import plan
from .stats import accuracy
from .student import load, model_folder


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
