"""Your own data by config alone: the ``dataset`` task reads files in every format it names, with
their own column names, judges answers of every kind, refuses a bad row with one line, and runs
through the committee, training and evaluation like a built-in task."""

import json
import re
import sqlite3

import pytest
from helpers import fair

from fair_core import config as cfg
from fair_core.config import TaskConfig
from fair_core.errors import ConfigError, DataError
from fair_core.host import Host
from fair_core.task import Problem

QUESTIONS = {  # question -> gold, arithmetic a tiny student gets wrong
    "Tom has 3 apples and buys 4 more. How many apples does he have?": "7",
    "A box holds 12 eggs. How many eggs are in 3 boxes?": "36",
    "Sara had 10 dollars and spent 4. How much money is left?": "6",
    "There are 5 birds and 2 fly away. How many birds are left?": "3",
    "What is 9 times 9?": "81",
    "A class has 14 girls and 13 boys. How many children are in the class?": "27",
    "Ann reads 8 pages a day. How many pages does she read in 5 days?": "40",
    "A rope of 20 metres is cut in 4 equal parts. How long is each part?": "5",
    "Bob had 45 stickers and gave away 15. How many stickers does he have now?": "30",
    "A bus carries 30 people and 12 get off. How many people are still on it?": "18",
}
CHOICES = [
    ("Which planet is the largest?", ["Mars", "Jupiter", "Venus", "Earth", "Pluto"], "B"),
    ("Which animal is a mammal?", ["Shark", "Trout", "Whale"], "Whale"),  # gold as the option's text
    ("What is two plus two?", ["3", "4"], 1),  # gold as a 0-based index
    ("Which gas do plants take in?", ["Oxygen", "Carbon dioxide", "Helium", "Argon"], "b"),
    ("Which colour do blue and yellow make?", ["Red", "Green", "Purple", "Orange"], "B"),
    ("Which ocean is the largest?", ["Atlantic", "Indian", "Pacific", "Arctic"], "(C)"),
    ("Which metal is liquid at room temperature?", ["Iron", "Mercury", "Tin"], "B"),
    ("How many legs does a spider have?", ["6", "8", "10", "12"], "B"),
]
GOLD_LETTERS = ["B", "C", "B", "B", "B", "C", "B", "B"]


def write_csv(path, rows=QUESTIONS):
    lines = ["qid,Problem Text,Solution,Worked"]
    for i, (q, a) in enumerate(rows.items()):
        lines.append(f'p{i},"{q}",{a},"so it is {a}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def write_choices(path):
    with path.open("w") as f:
        for q, options, gold in CHOICES:
            f.write(json.dumps({"prompt": {"text": q}, "opts": options, "label": gold}) + "\n")
    return path


def task(host: Host, **keys):
    return host.task(TaskConfig(name="dataset", **keys))


@pytest.fixture(scope="module")
def host():
    return Host().load_entry_points()


CSV_KEYS = {"answer": "number", "columns": {"question": "Problem Text", "answer": "Solution", "id": "qid"}}
CHOICE_KEYS = {"answer": "choice", "columns": {"question": "prompt.text", "answer": "label", "choices": "opts"}}


# reading ---------------------------------------------------------------------------------------
def test_a_csv_with_its_own_column_names(host, tmp_path):
    t = task(host, path=str(write_csv(tmp_path / "p.csv")), **CSV_KEYS)
    train, test = t.load("train"), t.load("test")
    assert len(train) + len(test) == len(QUESTIONS) and test and train
    assert {p.id for p in train} | {p.id for p in test} == {f"p{i}" for i in range(len(QUESTIONS))}
    by_id = {p.id: p for p in train + test}
    assert by_id["p4"] == Problem("p4", "What is 9 times 9?", "81", {})
    assert t.grade(by_id["p4"], "9 times 9 is 81. The answer is 81.") == ("81", True)
    assert t.grade(by_id["p4"], "The answer is 80.") == ("80", False)


def test_the_hint_column_is_what_teachers_see(host, tmp_path):
    keys = {**CSV_KEYS, "columns": {**CSV_KEYS["columns"], "hint": "Worked"}}
    t = task(host, path=str(write_csv(tmp_path / "p.csv")), **keys)
    p = next(p for p in t.load("train") + t.load("test") if p.id == "p1")
    assert (t.hint(p), p.gold) == ("so it is 36", "36")


def test_a_worked_solution_as_the_answer_is_its_number_and_the_hint(host, tmp_path):
    path = tmp_path / "gsm.jsonl"
    solution = "She has 3 + 4 = 7 apples.\n#### 7"
    path.write_text(json.dumps({"question": "How many apples?", "answer": solution}) + "\n")
    p = task(host, path=str(path), answer="number").load("train")[0]
    assert (p.gold, task(host, path=str(path), answer="number").hint(p)) == ("7", solution)


def test_multiple_choice_golds_as_letters_texts_or_indices(host, tmp_path):
    t = task(host, path=str(write_choices(tmp_path / "mc.jsonl")), test_fraction=0.25, **CHOICE_KEYS)
    problems = {p.id: p for p in t.load("train") + t.load("test")}
    assert [problems[f"row-{i + 1}"].gold for i in range(len(CHOICES))] == GOLD_LETTERS
    planets = problems["row-1"]
    assert planets.question.endswith("Options:\nA. Mars\nB. Jupiter\nC. Venus\nD. Earth\nE. Pluto")
    assert t.grade(planets, "Jupiter is biggest. The answer is B.") == ("B", True)
    assert t.grade(planets, "The answer is E.") == ("E", False)  # a fifth option is read as one
    assert t.grade(planets, "I pick Venus.") == ("C", False)  # an option quoted by its text
    assert t.grade(problems["row-2"], "The answer is C.")[1]


def test_every_file_format_gives_the_same_problems(host, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    rows = [{"qid": f"p{i}", "Problem Text": q, "Solution": a} for i, (q, a) in enumerate(QUESTIONS.items())]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.json").write_text(json.dumps(rows))
    (tmp_path / "p.tsv").write_text(
        "qid\tProblem Text\tSolution\n" + "".join(f"{r['qid']}\t{r['Problem Text']}\t{r['Solution']}\n" for r in rows)
    )
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "p.parquet")
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    expected = task(host, path=str(write_csv(tmp_path / "p.csv")), **CSV_KEYS)
    for name in ("p.jsonl", "p.json", "p.tsv", "p.parquet", "saved"):
        got = task(host, path=str(tmp_path / name), **CSV_KEYS)
        assert got.load("train") == expected.load("train"), name
        assert got.load("test") == expected.load("test"), name


def test_a_spreadsheet_csv_with_a_byte_order_mark_and_semicolons(host, tmp_path):
    text = "qid;Problem Text;Solution\n" + "".join(f'p{i};"{q}";{a}\n' for i, (q, a) in enumerate(QUESTIONS.items()))
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    expected = task(host, path=str(write_csv(tmp_path / "p.csv")), **CSV_KEYS)
    got = task(host, path=str(tmp_path / "excel.csv"), **CSV_KEYS)
    assert (got.load("train"), got.load("test")) == (expected.load("train"), expected.load("test"))


def test_named_splits_of_a_saved_dataset_dict_and_a_test_file(host, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [{"question": q, "answer": a} for q, a in QUESTIONS.items()]
    DatasetDict({"train": Dataset.from_list(rows[:7]), "dev": Dataset.from_list(rows[7:])}).save_to_disk(
        str(tmp_path / "dd")
    )
    t = task(host, path=str(tmp_path / "dd"), test_split="dev", answer="number")
    assert [p.id for p in t.load("train")] == [f"train-{i}" for i in range(1, 8)]
    assert [p.question for p in t.load("test")] == list(QUESTIONS)[7:]
    with pytest.raises(DataError, match=r"has no split 'test': set task.test_split to one of train, dev"):
        task(host, path=str(tmp_path / "dd"), test_split="test").load("train")
    # no test split of its own: a fraction of train
    assert len(task(host, path=str(tmp_path / "dd"), answer="number").load("test")) >= 1
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[3:]))
    two = task(host, path=str(tmp_path / "train.jsonl"), test_path=str(tmp_path / "test.jsonl"), answer="number")
    assert [p.id for p in two.load("test")] == ["test-1", "test-2", "test-3"]
    assert len(two.load("train")) == 7


def test_a_hub_dataset_by_its_id(host, monkeypatch):
    import datasets

    rows = [{"question": q, "answer": a} for q, a in QUESTIONS.items()]
    splits = {"train": rows[:8], "test": rows[8:]}
    hub = datasets.DatasetDict({name: datasets.Dataset.from_list(part) for name, part in splits.items()})
    asked = []

    def load_dataset(name, **options):
        asked.append(name)
        if name != "someone/arithmetic":
            raise ConnectionError("no network in tests")
        return hub

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    t = task(host, hub_id="someone/arithmetic", answer="number")
    assert [p.question for p in t.load("test")] == list(QUESTIONS)[8:] and len(t.load("train")) == 8
    assert t.upstream == "https://huggingface.co/datasets/someone/arithmetic"
    with pytest.raises(DataError, match=r"the hub dataset someone/missing could not be loaded .*check task.hub_id"):
        task(host, hub_id="someone/missing").load("train")


def test_the_fraction_split_is_seeded_and_keeps_a_row_where_it_was(host, tmp_path):
    rows = {f"Question number {i}: what is {i} plus 1?": str(i + 1) for i in range(200)}
    keys = {"answer": "number", "columns": {"question": "Problem Text", "answer": "Solution", "id": "qid"}}
    full = task(host, path=str(write_csv(tmp_path / "a.csv", rows)), test_fraction=0.3, **keys)
    test = {p.id for p in full.load("test")}
    assert 40 <= len(test) <= 80  # about 30% of 200
    fewer = dict(list(rows.items())[:150])  # rows removed at the end: the others keep their split
    part = task(host, path=str(write_csv(tmp_path / "b.csv", fewer)), test_fraction=0.3, **keys)
    assert {p.id for p in part.load("test")} == {i for i in test if int(i[1:]) < 150}
    other = task(host, path=str(write_csv(tmp_path / "a.csv", rows)), test_fraction=0.3, seed=1, **keys)
    assert {p.id for p in other.load("test")} != test


def test_free_text_and_pattern_answers(host, tmp_path):
    rows = [
        {"question": "Which city is the capital of France?", "answer": "Paris"},
        {"question": "Name the tallest tower in Paris.", "answer": "The Eiffel Tower"},
        {"question": "What is the code?", "answer": "XK-12"},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = task(host, path=str(path))  # answer kind "text" by default
    problems = {p.question: p for p in text.load("train") + text.load("test")}
    tower = problems["Name the tallest tower in Paris."]
    assert text.grade(tower, "It was built in 1889. The answer is **the Eiffel tower**.") == ("the Eiffel tower", True)
    assert not text.grade(tower, "The answer is the Louvre.")[1]
    coded = task(host, path=str(path), answer=r"regex:code\s+([A-Z]+-\d+)")
    code = next(p for p in coded.load("train") + coded.load("test") if p.gold == "XK-12")
    assert coded.grade(code, "first code AB-1, then the code XK-12 works") == ("XK-12", True)
    assert coded.grade(code, "no idea") == (None, False)


# files as users have them: pandas, spreadsheets, hub exports ----------------------------------
ROWS = [{"question": q, "answer": a} for q, a in QUESTIONS.items()]
JSONL = "".join(json.dumps(r) + "\n" for r in ROWS)
CSV_ROWS = "".join(f'"{r["question"]}",{r["answer"]}\n' for r in ROWS)


@pytest.mark.parametrize(
    "name, content",
    [
        ("wrapped.json", json.dumps({"version": "1.0", "data": ROWS})),  # an object holding the rows
        ("lines.json", JSONL),  # JSON Lines named .json, as datasets' to_json writes it
        ("bom.jsonl", "\ufeff" + JSONL),  # a byte-order mark, as Windows editors write
        ("bom.json", "\ufeff" + json.dumps(ROWS)),
        ("blank-first.csv", "\n\nquestion,answer\n" + CSV_ROWS),  # blank lines above the header
        ("spaced.csv", " question , answer \n" + CSV_ROWS),  # spaces around the header's names
        ("tabs.csv", "question\tanswer\n" + "".join(f"{r['question']}\t{r['answer']}\n" for r in ROWS)),
    ],
    ids=lambda value: value if value.endswith(tuple(".json .jsonl .csv".split())) else "",
)
def test_files_as_tools_and_editors_write_them(host, tmp_path, name, content):
    (tmp_path / "ref.jsonl").write_text(JSONL)
    (tmp_path / name).write_text(content, encoding="utf-8")
    expected = task(host, path=str(tmp_path / "ref.jsonl"), answer="number")
    got = task(host, path=str(tmp_path / name), answer="number")
    assert (got.load("train"), got.load("test")) == (expected.load("train"), expected.load("test"))


def test_a_spreadsheet_cell_over_two_lines_and_pandas_empty_cells(host, tmp_path):
    (tmp_path / "crlf.csv").write_bytes(
        b'question,answer\r\n"Tom has 3 apples\r\nand buys 4. How many?",7\r\n"Why?",8\r\n'
    )
    t = task(host, path=str(tmp_path / "crlf.csv"), answer="number")
    assert {p.id: p.question for p in t.load("train") + t.load("test")}[
        "row-1"
    ] == "Tom has 3 apples\nand buys 4. How many?"
    # a hint that is NaN (json.dumps of pandas' float NaN) or that a row lacks is no hint
    (tmp_path / "nan.jsonl").write_text(
        '{"question": "A?", "answer": 4, "hint": NaN}\n{"question": "B?", "answer": 6}\n'
        '{"question": "C?", "answer": 8, "hint": "so 8"}\n'
    )
    t = task(host, path=str(tmp_path / "nan.jsonl"), answer="number", columns={"hint": "hint"})
    assert {p.question: p.meta for p in t.load("train") + t.load("test")} == {
        "A?": {},
        "B?": {},
        "C?": {"hint": "so 8"},
    }
    (tmp_path / "nan.jsonl").write_text('{"question": "A?", "answer": NaN}\n')
    with pytest.raises(DataError, match=r"nan.jsonl:1: column 'answer' \(the answer\) is empty"):
        task(host, path=str(tmp_path / "nan.jsonl"), answer="number").load("train")


def test_quotes_that_do_not_quote_a_cell(host, tmp_path):
    rows = 'What is 1+1?\t2\n"Hi" she said. How many words?\t3\n'  # a TSV that quotes nothing, as GLUE's
    (tmp_path / "q.tsv").write_text("question\tanswer\n" + rows)
    t = task(host, path=str(tmp_path / "q.tsv"), answer="number")
    assert {p.id: p.question for p in t.load("train") + t.load("test")}["row-2"] == '"Hi" she said. How many words?'
    (tmp_path / "q.csv").write_text("question,answer\n" + rows.replace("\t", ","))
    with pytest.raises(DataError, match=r"q.csv:3: not valid CSV \(.*\): a cell with a quote, a separator or a line"):
        task(host, path=str(tmp_path / "q.csv"), answer="number").load("train")


def test_a_csv_in_a_windows_code_page_names_its_line(host, tmp_path):
    rows = ["question,answer"] + [f"What is {i} plus {i}?,{2 * i}" for i in range(1000)] + ["Caf\u00e9?,5"]
    (tmp_path / "excel.csv").write_bytes("\n".join(rows).encode("cp1252"))  # Excel's "CSV (Comma delimited)"
    with pytest.raises(DataError, match=r"excel.csv:1002: not UTF-8 text: save it as UTF-8 \(Excel: CSV UTF-8\)"):
        task(host, path=str(tmp_path / "excel.csv"), answer="number").load("train")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"question": {"0": "A?"}, "answer": {"0": 4}}, r"holds no list of rows; .*to_json\(orient=\"records\"\)"),
    ],
)
def test_a_json_object_that_is_not_rows_is_one_line(host, tmp_path, data, message):
    (tmp_path / "d.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"d.json: a JSON object that " + message):
        task(host, path=str(tmp_path / "d.json")).load("train")


def test_a_json_object_of_named_splits_is_read_as_its_splits(host, tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"version": 1, "train": ROWS[:7], "dev": ROWS[7:]}))
    t = task(host, path=str(tmp_path / "d.json"), answer="number")
    assert [p.id for p in t.load("train")] == [f"train-{i}" for i in range(1, 8)]
    assert [p.question for p in t.load("test")] == [r["question"] for r in ROWS[7:]]  # dev: the test split
    with pytest.raises(DataError, match=r"has no split 'valid': set task.test_split to one of train, dev"):
        task(host, path=str(tmp_path / "d.json"), answer="number", test_split="valid").load("train")
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    both = task(host, path=str(tmp_path / "train.jsonl"), test_path=str(tmp_path / "d.json"))
    with pytest.raises(DataError, match=r"d.json: a JSON object that holds lists of rows under train, dev; .*a split"):
        both.load("train")


def test_hub_style_choices_with_labels_and_lettered_options(host, tmp_path):
    options = ["Berlin", "Madrid", "Paris", "Rome"]
    rows = [  # ARC: {"text", "label"} with labels "1".."4" on some rows; AQuA: options that carry letters
        {"q": "Capital of France?", "choices": {"text": options, "label": ["1", "2", "3", "4"]}, "key": "3"},
        {"q": "Capital of Spain?", "choices": {"text": options, "label": list("ABCD")}, "key": "B"},
        {"q": "Capital of Italy?", "choices": {"text": options, "label": list("ABCD")}, "key": "D. Rome"},
    ]
    (tmp_path / "arc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for choices in ("choices", "choices.text"):
        t = task(
            host,
            path=str(tmp_path / "arc.jsonl"),
            answer="choice",
            columns={"question": "q", "answer": "key", "choices": choices},
        )
        problems = sorted(t.load("train") + t.load("test"), key=lambda p: p.id)
        assert [p.gold for p in problems] == ["C", "B", "D"], choices
        assert problems[0].meta["options"] == options
    row = {"question": "2 + 19?", "options": ["A)21", "B)24", "C)19", "D)2"], "correct": "A"}
    (tmp_path / "aqua.jsonl").write_text(json.dumps(row) + "\n")
    aqua = task(
        host, path=str(tmp_path / "aqua.jsonl"), answer="choice", columns={"choices": "options", "answer": "correct"}
    )
    p = aqua.load("train")[0]
    assert p.question.endswith("Options:\nA. 21\nB. 24\nC. 19\nD. 2") and p.gold == "A"
    # an option is quoted as whole words: "2" is not in "24", nor in "21 apples"
    read = [aqua.grade(p, out)[0] for out in ("The answer is 24.", "The answer is 21 apples.", "So it is 2.")]
    assert read == ["B", "A", "D"]


def test_golds_that_count_options_from_one(host, tmp_path):
    rows = [  # Social IQa's: answerA..answerC and a label "1".."3"
        {"context": "Why did Sam run?", "answerA": "late", "answerB": "bored", "answerC": "chased", "label": label}
        for label in ("1", "3", "2", "1")
    ]
    (tmp_path / "siqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = {"question": "context", "answer": "label", "choices": ["answerA", "answerB", "answerC"]}
    t = task(host, path=str(tmp_path / "siqa.jsonl"), answer="choice", columns=columns)
    assert [p.gold for p in sorted(t.load("train") + t.load("test"), key=lambda p: p.id)] == ["A", "C", "B", "A"]
    rows[0]["label"] = "0"  # a 0 among them: they count from 0, and a 3 is no option's index
    (tmp_path / "siqa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"siqa.jsonl:2: column 'label' \(the answer\) '3' is not .* its 0-based index"):
        task(host, path=str(tmp_path / "siqa.jsonl"), answer="choice", columns=columns).load("train")


def test_a_list_column_that_pandas_wrote_to_csv(host, tmp_path):
    import pandas as pd

    rows = {
        "question": ["Largest?", "Nearest?"],
        "choices": [["Mars", "Jupiter"], ["Sun", "Earth's moon"]],
        "answer": [1, 1],
    }
    pd.DataFrame(rows).to_csv(tmp_path / "mc.csv", index=False)  # a cell reads ['Sun', "Earth's moon"]
    t = task(host, path=str(tmp_path / "mc.csv"), answer="choice", columns={"choices": "choices"})
    assert [p.meta["options"] for p in sorted(t.load("train") + t.load("test"), key=lambda p: p.id)] == rows["choices"]


def test_option_columns_with_a_gap_are_refused(host, tmp_path):
    (tmp_path / "mmlu.csv").write_text("question,A,B,C,D,answer\nLargest?,Mars,,Venus,,C\n")
    with pytest.raises(DataError, match=r"mmlu.csv:2: column 'B' \(a choice\) is empty but a later one is not"):
        task(host, path=str(tmp_path / "mmlu.csv"), answer="choice", columns={"choices": list("ABCD")}).load("train")
    with pytest.raises(DataError, match=r'no column .A,B,C,D. .*, or to a list of columns \(\["A", "B", "C", "D"\]\)'):
        task(host, path=str(tmp_path / "mmlu.csv"), answer="choice", columns={"choices": "A,B,C,D"}).load("train")


def test_letters_past_d_are_read_without_a_choices_column(host, tmp_path):
    rows = [{"question": f"Q{i}? A) a B) b C) c D) d E) e", "answer": letter} for i, letter in enumerate("ABCDE")]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = task(host, path=str(tmp_path / "mc.jsonl"), answer="choice")
    e = next(p for p in t.load("train") + t.load("test") if p.gold == "E")
    assert t.grade(e, "The answer is E.") == ("E", True)
    fresh = task(host, path=str(tmp_path / "mc.jsonl"), answer="choice")  # review on a resumed run
    assert fresh.extract("The answer is E.") == "E"


@pytest.mark.parametrize(
    "gold, read", [("2,5", "2.5"), ("-0,75", "-0.75"), ("1.234,5", "1234.5"), ("+5", "5"), ("1,234", "1234")]
)
def test_number_golds_in_a_spreadsheets_forms(host, tmp_path, gold, read):
    (tmp_path / "n.csv").write_text(f'question;answer\nHow much?;"{gold}"\n')
    assert task(host, path=str(tmp_path / "n.csv"), answer="number").load("train")[0].gold == read


def test_a_number_glued_to_a_word_is_refused(host, tmp_path):
    (tmp_path / "n.csv").write_text("question,answer\nHow many?,1.5k\n")
    with pytest.raises(DataError, match=r"n.csv:2: column 'answer' \(the answer\) '1.5k' is not a number"):
        task(host, path=str(tmp_path / "n.csv"), answer="number").load("train")


def test_a_saved_dataset_dict_with_validation_tests_on_it(host, tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(ROWS[:7]), "validation": Dataset.from_list(ROWS[7:])}).save_to_disk(
        str(tmp_path / "dd")
    )
    t = task(host, path=str(tmp_path / "dd"), answer="number")
    assert [p.id for p in t.load("test")] == ["validation-1", "validation-2", "validation-3"]
    assert len(t.load("train")) == 7
    held_back = [{"question": "Which?", "answer": None}]  # a hub test split without its answers
    splits = {"train": ROWS[:7], "validation": ROWS[7:], "test": held_back}
    DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()}).save_to_disk(str(tmp_path / "dd2"))
    with pytest.raises(DataError, match=r"dd2's test split has no answers .*: set task.test_split = 'validation' or"):
        task(host, path=str(tmp_path / "dd2"), answer="number").load("train")


def test_split_names_on_one_file_are_refused(host, tmp_path):
    (tmp_path / "p.jsonl").write_text(JSONL)
    with pytest.raises(
        DataError, match=r"p.jsonl is one file, without named splits: remove task.split and task.test_split"
    ):
        task(host, path=str(tmp_path / "p.jsonl"), test_split="validation").load("train")


def test_free_text_answers_with_an_aside_or_boxed(host, tmp_path):
    rows = [{"question": "Capital of France?", "answer": "Paris"}, {"question": "A primary colour?", "answer": "red"}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = task(host, path=str(tmp_path / "t.jsonl"))
    paris, red = sorted(t.load("train") + t.load("test"), key=lambda p: p.id)
    assert t.grade(paris, "The answer is Paris, the capital.")[1]
    assert t.grade(paris, "So the answer is Paris (the capital city).")[1]
    assert t.grade(paris, "The final answer is $\\boxed{\\text{Paris}}$.") == ("Paris", True)
    assert not t.grade(paris, "The answer is Paris, France and Lyon.")[1]
    assert not t.grade(red, "The answer is red, green or blue.")[1]  # a list is not its first item
    (tmp_path / "n.jsonl").write_text('{"question": "How many?", "answer": 1234.0}\n')  # pandas' float column
    n = task(host, path=str(tmp_path / "n.jsonl"))  # numbers left as text, the default
    assert n.grade(n.load("train")[0], "The answer is 1,234.")[1]


# bad input: one line naming the file, row and column ------------------------------------------
@pytest.mark.parametrize(
    "content, message",
    [
        ("qid,Problem Text,Solution\np1,What is 2+2?,four\n", r"bad.csv:2: column 'Solution' \(the answer\) 'four'"),
        ("qid,Problem Text,Solution\np1,What is 2+2?,\n", r"bad.csv:2: column 'Solution' \(the answer\) is empty"),
        ("qid,Problem Text,Solution\np1,,4\n", r"bad.csv:2: column 'Problem Text' \(the question\) is empty"),
        (
            "qid,Problem Text,Answer\np1,What?,4\n",
            r"bad.csv: no column 'Solution' \(its columns: qid, Problem Text, Answer",
        ),
        ("qid,Problem Text,Solution\np1,A?,4\np1,B?,5\n", r"bad.csv:3: id 'p1' is used twice \(also at .*bad.csv:2\)"),
        ('qid,Problem Text,Solution\np1,"A?",4,9\n', r"bad.csv:2: more cells than the header's 3 columns"),
    ],
)
def test_a_bad_csv_row_is_one_line(host, tmp_path, content, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        task(host, path=str(tmp_path / "bad.csv"), **CSV_KEYS).load("train")


@pytest.mark.parametrize(
    "row, message",
    [
        ({"prompt": {"text": {"a": 1}}, "opts": ["x", "y"], "label": "A"}, r"column 'prompt.text' is a dict"),
        ({"prompt": {"text": "Q?"}, "opts": ["x", "y"], "label": None}, r"column 'label' \(the answer\) is empty"),
        (
            {"prompt": {"text": "Q?"}, "opts": ["x", "y"], "label": "C"},
            r"column 'label' \(the answer\) 'C' is not a letter A-B, an option's text",
        ),
        ({"prompt": {"text": "Q?"}, "opts": "x", "label": "A"}, r"1 choices: a multiple-choice item needs 2 to 26"),
        ({"prompt": {"text": "Q?"}, "opts": [["x"], "y"], "label": "A"}, r"column 'opts' \(the choices\) is a list"),
    ],
)
def test_a_bad_jsonl_row_is_one_line(host, tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"prompt": {"text": "Fine?"}, "opts": ["a", "b"], "label": "A"}) + "\n" + json.dumps(row)
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: " + message):
        task(host, path=str(path), **CHOICE_KEYS).load("train")


def test_sources_and_keys_that_cannot_work_are_refused(host, tmp_path):
    with pytest.raises(DataError, match="needs one source: task.path"):
        task(host)
    with pytest.raises(DataError, match="task.test_path goes with task.path: with task.hub_id, name its test split"):
        task(host, hub_id="someone/data", test_path="test.jsonl")
    with pytest.raises(DataError, match=r"missing.csv does not exist: fix task.path"):
        task(host, path=str(tmp_path / "missing.csv")).load("train")
    (tmp_path / "empty.csv").write_text("question,answer\n\n")
    with pytest.raises(DataError, match=r"empty.csv: no rows \(is it empty, or only a header\?\)"):
        task(host, path=str(tmp_path / "empty.csv")).load("train")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "train.jsonl").write_text(JSONL)
    with pytest.raises(DataError, match=r"files: not a datasets.save_to_disk folder .*: for a folder of files, set "):
        task(host, path=str(tmp_path / "files")).load("train")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"cannot tell the format of .*data.xlsx from its name: use one of .jsonl"):
        task(host, path=str(tmp_path / "data.xlsx")).load("train")
    with pytest.raises(
        ConfigError, match=r"task 'svamp' takes no task.path: remove it, or set task.name = \"dataset\""
    ):
        host.task(TaskConfig(name="svamp", path="x.csv"))
    with pytest.raises(ConfigError, match=r"task.answer: unknown answer kind: use one of number, yes-no"):
        cfg.validate({"task": {"name": "dataset", "path": "x", "answer": "numbers"}})
    with pytest.raises(ConfigError, match=r"task.answer: is not a valid regular expression"):
        cfg.validate({"task": {"name": "dataset", "path": "x", "answer": "regex:(("}})


def test_fair_data_shows_a_config_and_names_a_bad_row(tmp_path):
    csv = write_csv(tmp_path / "p.csv")
    config = tmp_path / "mine.toml"
    config.write_text(
        f'[task]\nname = "dataset"\npath = "{csv}"\nanswer = "number"\nlicense = "cc-by-4.0"\n'
        'columns = {question = "Problem Text", answer = "Solution", id = "qid"}\n'
    )
    out = fair("data", config, "--show", "1")
    assert out.returncode == 0, out.stderr
    assert "task dataset, answers read as number, licence cc-by-4.0" in out.stdout
    assert "dataset train:" in out.stdout and "dataset test:" in out.stdout
    csv.write_text(csv.read_text().replace(",7,", ",seven,"))
    bad = fair("data", config)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"fair: error: {csv}:2: column 'Solution' (the answer) 'seven' is not a number"
    ]


# through the whole loop ------------------------------------------------------------------------
def run_config(tmp_path, url, student, task_keys, golds):
    data = {
        "task": {"name": "dataset", **task_keys},
        "teachers": [{"name": f"t{i}", "model": "openai/key", "api_base": url} for i in range(3)],
        "student": {"model": str(student), "max_new_tokens": 8, "batch_size": 8},
        "train": {"epochs": 1, "batch_size": 4, "max_length": 192, "target_modules": ["q_proj", "v_proj"]},
    }
    path = tmp_path / "run.toml"
    path.write_text(cfg.dump(cfg.validate(data)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "choice"])
def test_own_data_runs_through_committee_training_and_evaluation(tmp_path, kind):
    from fair_core.testing.server import answer_key, serve_in_thread
    from fair_core.testing.tiny import make_tiny_student

    if kind == "csv":
        keys = {"path": str(write_csv(tmp_path / "p.csv")), "license": "cc-by-4.0", **CSV_KEYS}
        key = QUESTIONS
    else:
        keys = {"path": str(write_choices(tmp_path / "mc.jsonl")), "test_fraction": 0.25, **CHOICE_KEYS}
        key = {q: gold for (q, _, _), gold in zip(CHOICES, GOLD_LETTERS)}
    student = make_tiny_student(tmp_path / "student")
    run = tmp_path / "run"
    with serve_in_thread(behaviours={"key": answer_key(key)}) as server:
        config = run_config(tmp_path, server.url, student, keys, key)
        out = fair("run", config, "--run-dir", run, "--quiet")
        assert out.returncode == 0, out.stderr[-2000:]
        assert server.requests > 0
    report = json.loads(fair("report", run, "--json").stdout)
    assert [s["status"] for s in report["stages"]] == ["done"] * 7
    assert report["items"] > 0 and report["accepted_rationales"] > 0
    assert report["accuracy_before"] is not None and report["accuracy_after"] is not None
    assert (run / "rounds" / "0" / "adapter" / "adapter_config.json").exists()
    db = sqlite3.connect(run / "run.sqlite")
    golds = {gold for (gold,) in db.execute("SELECT gold FROM items")}
    assert golds <= set(key.values())  # the golds the task read, letters for the choices
    trained = (run / "rounds" / "0" / "train.jsonl").read_text()
    assert "The answer is" in trained
    if kind == "csv":  # the card takes the task's licence and names the student; the estimate works on it
        exported = fair("export", run, "--format", "hf", "--out", tmp_path / "out")
        assert exported.returncode == 0, exported.stderr
        card = (tmp_path / "out" / "README.md").read_text()
        assert "license: cc-by-4.0" in card and str(student) in card
        estimate = fair("estimate", config, "--run-dir", run)
        assert estimate.returncode == 0, estimate.stderr


def test_the_example_config_reads_its_data_and_estimates():
    out = fair("data", "configs/my-data.toml", "--show", "0")
    assert out.returncode == 0, out.stderr
    assert "task dataset, answers read as number, licence cc0-1.0" in out.stdout
    counts = [int(line.split(": ")[1].split()[0]) for line in out.stdout.splitlines() if line.startswith("dataset ")]
    assert sum(counts) == 24 and all(counts)
    estimate = fair("estimate", "configs/my-data.toml", "--mistakes", "18")
    assert estimate.returncode == 0, estimate.stderr
    assert "216 calls on 18 mistakes" in estimate.stdout


def test_a_question_from_several_columns_and_answers_with_aliases(host, tmp_path):
    rows = [
        {"passage": "Paris is the capital of France.", "query": "What is the capital of France?", "ans": ["Paris"]},
        {"passage": "The Thames flows through London.", "query": "Which river?", "ans": ["Thames", "River Thames"]},
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = task(host, path=str(path), columns={"question": ["passage", "query"], "answer": "ans"})
    problems = {p.id: p for p in t.load("train") + t.load("test")}
    river = problems["row-2"]
    assert river.question == "The Thames flows through London.\n\nWhich river?"
    assert river.gold == "Thames"  # the first answer is the one the prompts show
    assert t.grade(river, "The answer is the River Thames.") == ("the River Thames", True)
    assert t.grade(river, "The answer is Thames.")[1] and not t.grade(river, "The answer is Seine.")[1]
    with pytest.raises(DataError, match=r"qa.jsonl: no column 'context'"):
        task(host, path=str(path), columns={"question": ["context", "query"], "answer": "ans"}).load("train")
    path.write_text(json.dumps({**rows[0], "ans": ["Paris", {"x": 1}]}) + "\n")
    with pytest.raises(DataError, match=r"qa.jsonl:1: column 'ans' \(the answer\) is a list with an item that is not"):
        task(host, path=str(path), columns={"question": "query", "answer": "ans"}).load("train")


def test_a_hub_configuration_is_passed_to_the_hub(host, monkeypatch):
    import datasets

    rows = [{"question": q, "answer": a} for q, a in QUESTIONS.items()]
    asked = []

    def load_dataset(path, **options):  # datasets' own signature: the configuration is `name`
        asked.append((path, options))
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert len(task(host, hub_id="someone/math", hub_config="main", answer="number").load("train")) >= 1
    assert asked == [("someone/math", {"name": "main"})]
    with pytest.raises(DataError, match="task.hub_config names a configuration of task.hub_id"):
        task(host, path="x.csv", hub_config="main")


# files other people have: what a review of the reader found --------------------------------------
@pytest.mark.parametrize("gold, read", [("1e+20", "100000000000000000000"), ("1.5E-05", "0.000015"), ("2.5e3", "2500")])
def test_number_golds_in_scientific_notation(host, tmp_path, gold, read):
    """As Python and pandas write a float (json.dumps(1e20) is 1e+20) and spreadsheets a small one."""
    (tmp_path / "n.csv").write_text(f"question,answer\nHow much?,{gold}\n")
    (tmp_path / "n.jsonl").write_text(json.dumps({"question": "How much?", "answer": float(gold)}) + "\n")
    for name in ("n.csv", "n.jsonl"):
        assert task(host, path=str(tmp_path / name), answer="number").load("train")[0].gold == read, name


def test_yes_no_golds_that_pandas_wrote_as_floats(host, tmp_path):
    """A 0/1 label column with an empty cell is float in pandas: 1.0 and 0.0 in JSON, CSV and Parquet."""
    import pandas as pd

    frame = pd.DataFrame({"question": ["Is it?", "Is it not?", "Maybe?"], "label": [1.0, 0.0, 1.0]})
    frame.to_json(tmp_path / "yn.json", orient="records")
    frame.to_csv(tmp_path / "yn.csv", index=False)
    for name in ("yn.json", "yn.csv"):
        t = task(host, path=str(tmp_path / name), answer="yes-no", columns={"answer": "label"})
        golds = {p.question: p.gold for p in t.load("train") + t.load("test")}
        assert golds == {"Is it?": "yes", "Is it not?": "no", "Maybe?": "yes"}, name


def test_a_jsonl_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"question": "A?", "answer": 1}\n{"question": "Caf\xe9?", "answer": 2}\n')
    config = tmp_path / "mine.toml"
    config.write_text(f'[task]\nname = "dataset"\npath = "{path}"\nanswer = "number"\n')
    out = fair("data", config)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"fair: error: {path}:2: not UTF-8 text: save it as UTF-8"]


def test_an_empty_json_file_has_no_rows(host, tmp_path):
    (tmp_path / "empty.json").write_text("\n")
    with pytest.raises(DataError, match=r"empty.json: no rows \(is it empty, or only a header\?\)"):
        task(host, path=str(tmp_path / "empty.json")).load("train")


def test_a_csv_header_that_names_a_column_twice_is_refused(host, tmp_path):
    """csv.DictReader keeps the last of two same-named cells: the gold would silently be the other."""
    (tmp_path / "twice.csv").write_text("question,answer,answer\nWhat is 1+1?,2,3\nWhat is 2+2?,4,5\n")
    with pytest.raises(DataError, match=r"twice.csv:1: the header names column 'answer' twice: rename one"):
        task(host, path=str(tmp_path / "twice.csv"), answer="number").load("train")


def test_choices_as_labelled_objects_or_a_mapping_of_letters(host, tmp_path):
    rows = [  # ARC's own JSONL: question.stem, question.choices [{text, label}], answerKey
        {
            "question": {
                "stem": "Largest?",
                "choices": [{"text": "Mars", "label": "A"}, {"text": "Jupiter", "label": "B"}],
            },
            "answerKey": "B",
        },
        {
            "question": {
                "stem": "Hottest?",
                "choices": [{"text": "Venus", "label": "1"}, {"text": "Pluto", "label": "2"}],
            },
            "answerKey": "1",
        },
    ]
    (tmp_path / "arc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = {"question": "question.stem", "choices": "question.choices", "answer": "answerKey"}
    t = task(host, path=str(tmp_path / "arc.jsonl"), answer="choice", columns=columns)
    problems = {p.id: p for p in t.load("train") + t.load("test")}
    assert [problems["row-1"].gold, problems["row-2"].gold] == ["B", "A"]
    assert problems["row-1"].meta["options"] == ["Mars", "Jupiter"]
    mapping = {"question": "Largest?", "options": {"A": "Mars", "B": "Jupiter", "C": "Venus"}, "answer": "C"}
    (tmp_path / "map.jsonl").write_text(json.dumps(mapping) + "\n")
    t = task(host, path=str(tmp_path / "map.jsonl"), answer="choice", columns={"choices": "options"})
    p = t.load("train")[0]
    assert (p.gold, p.meta["options"]) == ("C", ["Mars", "Jupiter", "Venus"])
    (tmp_path / "bools.jsonl").write_text(json.dumps({**mapping, "options": [True, False]}) + "\n")
    with pytest.raises(
        DataError, match=r"column 'options' \(the choices\) is a list \(.*\): expected a list of options"
    ):
        task(host, path=str(tmp_path / "bools.jsonl"), answer="choice", columns={"choices": "options"}).load("train")


@pytest.mark.parametrize(
    "line, message",
    [
        ("columns = {question = []}", r"task.columns.question: is an empty list: name the column that holds it"),
        ("columns = {choices = []}", r"task.columns.choices: is an empty list: name the column that holds it"),
        (r"answer = 'regex:\d*'", r"task.answer: the pattern matches empty text, .*: make it match one character"),
    ],
)
def test_columns_and_patterns_that_read_nothing_are_refused(tmp_path, line, message):
    """An empty list of question columns made every question empty; a pattern that matches empty
    text reads every output's answer as none (its last match is the empty one at the end)."""
    (tmp_path / "d.jsonl").write_text(JSONL)
    config = tmp_path / "mine.toml"
    config.write_text(f'[task]\nname = "dataset"\npath = "{tmp_path / "d.jsonl"}"\n{line}\n')
    out = fair("data", config)
    assert out.returncode == 2, out.stdout
    assert len(out.stderr.strip().splitlines()) == 1 and re.search(message, out.stderr), out.stderr


@pytest.mark.parametrize(
    "template, message",
    [
        ("Q: {questio}", r"task.prompts.student: no field \{questio\} \(it has \{question\}\): "),
        ('Q: {question} as JSON {"a": 1}', r"task.prompts.student: no field \{\"a\"\} .*write a literal brace as"),
        ("Q: {question", r"task.prompts.student: .*expected '\}' before end of string.*literal brace as \{\{ or \}\}"),
        ("Q: {}", r"task.prompts.student: no field \{\} "),
    ],
)
def test_a_prompt_template_that_cannot_render_is_refused_before_the_run(tmp_path, template, message):
    """Rendering it failed mid-run with a KeyError traceback, after the student was examined."""
    (tmp_path / "d.jsonl").write_text(JSONL)
    config = tmp_path / "mine.toml"
    config.write_text(
        cfg.dump(
            cfg.validate(
                {"task": {"name": "dataset", "path": str(tmp_path / "d.jsonl"), "prompts": {"student": template}}}
            )
        )
    )
    out = fair("data", config)
    assert out.returncode == 2, out.stdout
    assert len(out.stderr.strip().splitlines()) == 1 and re.search(message, out.stderr), out.stderr


def test_answer_aliases_that_pandas_wrote_to_csv(host, tmp_path):
    """A list column of answers in a CSV cell (pandas' to_csv writes ['Paris', 'Paris, France']) is
    the answers, as the same column read from Parquet; a cell of numbers in brackets stays text."""
    import pandas as pd

    frame = pd.DataFrame(
        {"question": ["Capital of France?", "Largest ocean?"], "answer": [["Paris", "Paris, France"], ["Pacific"]]}
    )
    frame.to_csv(tmp_path / "qa.csv", index=False)
    frame.to_parquet(tmp_path / "qa.parquet")
    for name in ("qa.csv", "qa.parquet"):
        t = task(host, path=str(tmp_path / name))
        problems = {p.question: p for p in t.load("train") + t.load("test")}
        france = problems["Capital of France?"]
        assert (france.gold, france.meta["answers"]) == ("Paris", ["Paris", "Paris, France"]), name
        assert problems["Largest ocean?"].gold == "Pacific", name
        assert t.grade(france, "The answer is Paris, France.")[1], name
    (tmp_path / "pairs.csv").write_text('question,answer\nWhich pair?,"[1, 2]"\n')
    assert task(host, path=str(tmp_path / "pairs.csv")).load("train")[0].gold == "[1, 2]"


def test_a_test_split_that_is_the_train_split_is_refused(host, tmp_path):
    """The same rows in both splits: tested on what it trained on (test_path) or a confusing
    'id used twice (also at the same row)' (test_split)."""
    from datasets import Dataset, DatasetDict

    (tmp_path / "p.jsonl").write_text(JSONL)
    with pytest.raises(DataError, match=r"task.test_path names the file task.path names: name the test rows' own file"):
        task(host, path=str(tmp_path / "p.jsonl"), test_path=str(tmp_path / ".." / tmp_path.name / "p.jsonl")).load(
            "train"
        )
    DatasetDict({"train": Dataset.from_list(ROWS[:7]), "dev": Dataset.from_list(ROWS[7:])}).save_to_disk(
        str(tmp_path / "dd")
    )
    with pytest.raises(DataError, match=r"task.test_split 'train' is the train split too: name another split"):
        task(host, path=str(tmp_path / "dd"), test_split="train").load("train")
    with pytest.raises(DataError, match=r"task.test_split 'dev' is the train split too: name another split"):
        task(host, path=str(tmp_path / "dd"), split="dev", test_split="dev").load("train")


def test_split_names_on_a_folder_of_one_split_are_refused(host, tmp_path):
    """A save_to_disk folder of one Dataset has no split to name: task.split was silently ignored."""
    from datasets import Dataset

    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "one"))
    for keys in ({"split": "validation"}, {"test_split": "test"}):
        with pytest.raises(
            DataError, match=r"one is one split, without named splits: remove task.split and task.test_split"
        ):
            task(host, path=str(tmp_path / "one"), **keys).load("train")


def test_parquet_decimal_and_date_columns_are_single_values(host, tmp_path):
    """As SQL and Spark export money and dates: they were refused as 'a Decimal: expected a single value'."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "question": ["How much?", "When?"],
            "amount": pa.array([decimal.Decimal("5.00"), decimal.Decimal("-1.25")], pa.decimal128(10, 2)),
            "day": [datetime.date(2020, 1, 31), datetime.date(1999, 12, 1)],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    number = task(host, path=str(tmp_path / "d.parquet"), answer="number", columns={"answer": "amount"})
    assert sorted(p.gold for p in number.load("train") + number.load("test")) == ["-1.25", "5"]
    text = task(host, path=str(tmp_path / "d.parquet"), columns={"answer": "day"})
    assert sorted(p.gold for p in text.load("train") + text.load("test")) == ["1999-12-01", "2020-01-31"]


def test_a_relative_data_path_is_found_beside_the_config(tmp_path):
    """A config and its CSV in one folder, run from anywhere: the path was read from the working
    directory only. Found there, it is made absolute, so the run dir's copy of the config finds it too."""
    folder = tmp_path / "project"
    folder.mkdir()
    write_csv(folder / "p.csv")
    (folder / "mine.toml").write_text(
        '[task]\nname = "dataset"\npath = "p.csv"\nanswer = "number"\n'
        'columns = {question = "Problem Text", answer = "Solution", id = "qid"}\n'
    )
    out = fair("data", folder / "mine.toml", "--show", "0")  # from the repository, not the project's folder
    assert out.returncode == 0, out.stderr
    assert cfg.load(folder / "mine.toml").task.path == str(folder / "p.csv")
    here = fair("data", "mine.toml", "--show", "0", cwd=folder)  # from the folder itself: the same file
    assert (here.returncode, here.stdout) == (0, out.stdout), here.stderr
    with pytest.MonkeyPatch.context() as patch:  # found from the working directory: as written, as before
        patch.chdir(folder)
        assert cfg.load(folder / "mine.toml").task.path == "p.csv"
    (folder / "mine.toml").write_text('[task]\nname = "dataset"\npath = "nowhere.csv"\n')
    assert cfg.load(folder / "mine.toml").task.path == "nowhere.csv"  # found nowhere: as written, for the data folder


def test_a_trailing_comma_names_its_line_and_column(host, tmp_path):
    """A JSON Lines file written as an array's items ("{...},"), a JSON array with a trailing comma."""
    (tmp_path / "d.jsonl").write_text('{"question": "A?", "answer": 1},\n')
    with pytest.raises(DataError, match=r"d.jsonl:1: not valid JSON \(Extra data at column 32\)$"):
        task(host, path=str(tmp_path / "d.jsonl")).load("train")
    (tmp_path / "d.json").write_text('[\n {"question": "A?", "answer": 1},\n]\n')
    with pytest.raises(DataError, match=r"d.json:3: not valid JSON \(Expecting value at column 1\)$"):
        task(host, path=str(tmp_path / "d.json")).load("train")


def test_an_alpaca_file_whose_input_is_often_empty(host, tmp_path):
    """Alpaca's instruction/input/output, as LLaMA-Factory reads it: an empty input is no paragraph,
    not a bad row; a row whose every question column is empty is."""
    rows = [
        {"instruction": "What is 2 + 2?", "input": "", "output": "4"},
        {"instruction": "Add the numbers.", "input": "3 and 5", "output": "8"},
    ]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    columns = {"question": ["instruction", "input"], "answer": "output"}
    t = task(host, path=str(tmp_path / "alpaca.json"), answer="number", columns=columns)
    assert sorted(p.question for p in t.load("train") + t.load("test")) == [
        "Add the numbers.\n\n3 and 5",
        "What is 2 + 2?",
    ]
    rows.append({"instruction": " ", "input": "", "output": "1"})
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    with pytest.raises(
        DataError, match=r"alpaca.json item 2: columns 'instruction', 'input' \(the question\) are all empty"
    ):
        task(host, path=str(tmp_path / "alpaca.json"), answer="number", columns=columns).load("train")


def test_a_dotted_column_may_index_a_list(host, tmp_path):
    """Chat-format rows (OpenAI's messages, ShareGPT's conversations): the question is the first
    turn's text, the answer the second's."""
    rows = [
        {"messages": [{"role": "user", "content": f"What is {i} + {i}?"}, {"role": "assistant", "content": str(2 * i)}]}
        for i in range(4)
    ]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = {"question": "messages.0.content", "answer": "messages.1.content"}
    t = task(host, path=str(tmp_path / "chat.jsonl"), answer="number", columns=columns)
    assert sorted((p.question, p.gold) for p in t.load("train") + t.load("test"))[0] == ("What is 0 + 0?", "0")
    with pytest.raises(DataError, match=r"chat.jsonl: no column 'messages.2.content'"):
        task(host, path=str(tmp_path / "chat.jsonl"), columns={"question": "messages.2.content"}).load("train")


def test_a_json_file_of_one_row(host, tmp_path):
    """One row as datasets' to_json writes it (JSON Lines named .json): one object. It was refused as
    'a JSON object that holds no list of rows'."""
    (tmp_path / "one.json").write_text(json.dumps(ROWS[0]) + "\n")
    problems = task(host, path=str(tmp_path / "one.json"), answer="number").load("train")
    assert [(p.id, p.question, p.gold) for p in problems] == [("row-1", ROWS[0]["question"], ROWS[0]["answer"])]


def test_a_csv_cell_longer_than_the_csv_modules_limit(host, tmp_path):
    """A long passage (200 kB) in one cell: Python's csv refuses cells over 128 KiB by default, and the
    row was refused as 'not valid CSV', with advice on quoting."""
    passage = "word " * 40_000 + "How many words?"
    (tmp_path / "long.csv").write_text(f'question,answer\n"{passage}",40000\nShort?,1\n')
    (tmp_path / "long.tsv").write_text(f"question\tanswer\n{passage}\t40000\nShort?\t1\n")
    for name in ("long.csv", "long.tsv"):
        t = task(host, path=str(tmp_path / name), answer="number")
        assert max(len(p.question) for p in t.load("train") + t.load("test")) == len(passage.strip()), name
