"""The paper's SVAMP committee outputs as compiled training pairs, for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path


def paper_pairs(paper_dir: Path, prompts: dict[str, str]) -> list[dict]:
    """Rows as the compile stage writes them: each item's learn prompts (``prompts``: a task's
    prompt set) with gpt's feedback and the first accepted rationale; items without one are left out."""
    feedback = json.loads((paper_dir / "Llama-2-7b-chat-hf_svamp_feedback_round0.json").read_text())
    rationale = json.loads((paper_dir / "Llama-2-7b-chat-hf_svamp_rationale_round0.json").read_text())
    return [
        {
            "item_id": str(f["id"]),
            "feedback": {
                "prompt": prompts["learn_feedback"].format(
                    question=f["question"], student_answer=f["student_wrong_pred"]
                ),
                "response": f["gpt_feedback"],
            },
            "rationale": {
                "prompt": prompts["learn_rationale"].format(question=f["question"]),
                "response": r["correct_rationale"][0],
            },
        }
        for f, r in zip(feedback, rationale)
        if r["correct_rationale"]
    ]
