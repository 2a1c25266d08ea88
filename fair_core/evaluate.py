"""`fair eval`: any student model on any task's split, outside a run."""

from __future__ import annotations

from .config import StudentConfig
from .host import Host
from .student import model_folder


def evaluate_model(host: Host, model: str, task_name: str, split: str = "test", limit: int | None = None,
                   adapter: str | None = None, max_new_tokens: int = 256) -> tuple[float, int]:
    task = host.get("tasks", task_name)()
    problems = task.load(split)[:limit] if limit else task.load(split)
    config = StudentConfig(model=model, max_new_tokens=max_new_tokens)
    factory = host.get("students", config.backend)
    config = config.model_copy(update={"model": model_folder(host, config)})  # a GGUF converts once
    student = factory(config, adapter=adapter)
    try:
        outputs = student.generate([task.prompt("student", question=p.question) for p in problems])
    finally:
        student.close()
    correct = sum(task.is_correct(task.extract(o), p.gold) for o, p in zip(outputs, problems))
    return correct / max(1, len(problems)), len(problems)
