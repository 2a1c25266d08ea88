"""Hostile inputs: files nested deep enough to exhaust the stack, configs that are not UTF-8, and
paper items of the wrong type are one line naming the file (and item), exit 2, never a traceback
and never a record stored."""

import json
import sqlite3

import pytest
from helpers import fair

from fair_core import paper
from fair_core.errors import ConfigError, DataError
from fair_core.inputs import MAX_DEPTH, parse_json
from fair_tasks.base import read_json, read_jsonl
from fair_tasks.gsm8k import Gsm8k
from fair_tasks.svamp import Svamp

DEEP = 100_000
ITEM = {"id": 1, "question": "2+2?", "gold_answer": "4", "student_wrong_pred": "5", "student_wrong_final_answer": "5"}


def one_line(out, *words):
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fair: error: "), out.stderr[-2000:]
    assert all(w in lines[0] for w in words), lines[0]


def test_parse_json_refuses_deep_nesting_with_file_and_line():
    for text in ("[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP):
        with pytest.raises(DataError, match=r"^f\.json: nested more than 100 levels deep"):
            parse_json(text, "f.json")
    with pytest.raises(DataError, match=r"^f\.jsonl:7: nested more than"):  # under the stack limit, still refused
        parse_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "f.jsonl", 7)
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f.json")  # as deep as allowed


def test_task_readers_refuse_deep_files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * DEEP + "]" * DEEP)
    with pytest.raises(DataError, match=r"deep\.json: nested"):
        read_json(deep)
    (tmp_path / "svamp").mkdir()
    (tmp_path / "svamp" / "SVAMP.json").write_text("[" * DEEP + "]" * DEEP)
    with pytest.raises(DataError, match=r"SVAMP\.json: nested"):
        Svamp(data_dir=tmp_path).load("train")
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"question": "q"}\n' + '{"a":' * DEEP + "1" + "}" * DEEP + "\n")
    with pytest.raises(DataError, match=r"lines\.jsonl:2: nested"):
        read_jsonl(lines)
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text("[" * DEEP + "]" * DEEP + "\n")
    (tmp_path / "gsm8k" / "test.jsonl").write_text("")
    with pytest.raises(DataError, match=r"train\.jsonl:1: nested"):
        Gsm8k(data_dir=tmp_path).load("train")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"question": {"text": "2+2?"}}, ["item 1 (id 2)", 'question is {"text": "2+2?"}, not text']),
        ({"gold_answer": None}, ["item 1 (id 2)", "gold_answer is null, not text or a number"]),
        ({"student_wrong_pred": ["5"]}, ["item 1 (id 2)", "student_wrong_pred is"]),
        ({"id": True}, ["item 1 (id true)", "id is true, not a number or text"]),
    ],
)
def test_a_paper_item_of_the_wrong_type_is_refused_with_the_item_named(tmp_path, change, words):
    path = tmp_path / "x_svamp_false_round0.json"
    path.write_text(json.dumps([ITEM, {**ITEM, "id": 2, **change}]))
    with pytest.raises(DataError) as error:
        paper.read(path)
    assert str(path) in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_a_number_for_an_answer_is_read_as_its_text(tmp_path):
    path = tmp_path / "x_svamp_false_round0.json"
    path.write_text(json.dumps([{**ITEM, "gold_answer": 4, "student_wrong_final_answer": None}]))
    assert paper.read(path)[0]["gold_answer"] == "4"


def test_a_bad_teacher_text_in_a_paper_file_stores_nothing(tmp_path):
    false = tmp_path / "x_svamp_false_round0.json"
    false.write_text(json.dumps([ITEM]))
    feedback = tmp_path / "x_svamp_feedback_round0.json"
    feedback.write_text(json.dumps([{**ITEM, "gpt_feedback": "fine", "gem_feedback": {"text": "x"}}]))
    out = fair("import-paper", "--run", tmp_path / "run", false, feedback)
    one_line(out, str(feedback), "item 0 (id 1): gem_feedback is", "not text")
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    assert db.execute("SELECT (SELECT COUNT(*) FROM mistakes) + (SELECT COUNT(*) FROM writings)").fetchone() == (0,)


def test_deep_or_mistyped_files_on_the_command_line_are_one_line(tmp_path):
    deep = tmp_path / "x_svamp_false_round0.json"
    deep.write_text("[" * DEEP + "]" * DEEP)
    one_line(fair("import-paper", "--run", tmp_path / "run", deep), f"paper file {deep}: nested more than 100")
    config = tmp_path / "mistakes.toml"
    config.write_text(
        f'stages = ["explain"]\n[task]\nname = "svamp"\nmistakes_file = "{deep}"\n'
        '[[teachers]]\nname = "t"\nbackend = "litellm"\nmodel = "openai/x"\napi_base = "http://127.0.0.1:9/v1"\n'
    )
    one_line(fair("estimate", config, "--run-dir", tmp_path / "est"), str(deep), "nested more than 100")


@pytest.mark.parametrize(
    "text, words",
    [
        ("a = " + "[" * DEEP + "]" * DEEP + "\n", ["nests arrays or tables more than 100 deep"]),
        ("a = " + "{b=" * 5000 + "1" + "}" * 5000 + "\n", ["nests arrays or tables more than 100 deep"]),
        ("a = " + "[" * 200 + "]" * 200 + "\n", ["nests arrays or tables more than 100 deep"]),
    ],
    ids=["arrays", "tables", "under-the-stack"],
)
def test_a_deeply_nested_config_is_one_line(tmp_path, text, words):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        from fair_core import config

        config.load(path)
    assert str(path) in str(error.value) and all(w in str(error.value) for w in words)


def test_a_config_that_is_not_utf8_is_one_line_for_run_and_tui(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('stages = ["explain"]\n# café\n'.encode("latin-1"))
    words = (str(path), "line 2 is not UTF-8 text (byte 0xe9)", "save it as UTF-8")
    one_line(fair("run", path, "--run-dir", tmp_path / "run"), *words)
    one_line(fair("tui", path), *words)
    assert not (tmp_path / "run").exists()


def test_a_deep_adapter_config_is_one_line(tmp_path):
    from fair_core.errors import FairError
    from fair_core.student import adapter_config

    (tmp_path / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FairError, match=r"is not a LoRA adapter folder \(.*nested more than 100 levels"):
        adapter_config(tmp_path)
    (tmp_path / "adapter_config.json").write_text("[1, 2]")
    with pytest.raises(FairError, match=r"its adapter_config.json is no JSON object"):
        adapter_config(tmp_path)
