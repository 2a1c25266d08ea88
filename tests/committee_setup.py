"""Building committee runs against the local OpenAI-compatible server."""

import json
from pathlib import Path

from fair_core import config as cfg


def paper_mistakes(paper_dir: Path, out: Path, n: int) -> Path:
    """The first ``n`` of the paper's SVAMP mistakes, as a paper file of our own."""
    items = json.loads((paper_dir / "Llama-2-7b-chat-hf_svamp_false_round0.json").read_text())[:n]
    path = out / "Llama-2-7b-chat-hf_svamp_false_round0.json"
    path.write_text(json.dumps(items))
    return path


def committee_config(
    tmp: Path,
    url: str,
    mistakes: Path,
    models=("solver", "noisy-0.3", "solver"),
    teacher: dict | None = None,
    committee: dict | None = None,
) -> Path:
    data = {
        "stages": ["explain", "solve", "review", "compile"],
        "task": {"name": "svamp", "mistakes_file": str(mistakes)},
        "teachers": [
            {
                "name": f"t{i}",
                "backend": "litellm",
                "model": f"openai/{m}",
                "api_base": url,
                "timeout_s": 60,
                "max_retries": 3,
                "retry_base_s": 0.01,
                "concurrency": 16,
                **(teacher or {}),
            }
            for i, m in enumerate(models)
        ],
        "committee": committee or {},
    }
    path = tmp / "committee.toml"
    path.write_text(cfg.dump(cfg.validate(data)))
    return path
