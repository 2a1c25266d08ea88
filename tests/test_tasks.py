"""The built-in tasks on the real upstream data: loading, splits, ids, gold answers, prompts,
answer extraction (with the FAIR paper's released mistakes as a measure), and data errors."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fair_tasks
from fair_core.errors import DataError
from fair_core.host import Host
from fair_core.task import PROMPT_FIELDS, Problem, data_root
from fair_tasks import Gsm8k, LogiQA, StrategyQA, Svamp
from fair_tasks.extract import extract_letter, extract_number, extract_yes_no, match_option, parse_number

DATA = data_root()
TASKS = (Gsm8k, Svamp, StrategyQA, LogiQA)


def paper(name: str) -> list[dict]:
    return json.loads((DATA / "fair-reference" / f"Llama-2-7b-chat-hf_{name}_false_round0.json").read_text())


# registration and prompts -------------------------------------------------------------------
def test_the_plugin_registers_the_dataset_task_and_the_four_papers():
    host = Host()
    host.add(fair_tasks, "tasks")
    assert host.problems == []
    assert host.names("tasks") == ["dataset", "gsm8k", "logiqa", "strategyqa", "svamp"]
    task = host.get("tasks", "svamp")(data_dir=None, prompts=None, seed=0)
    assert isinstance(task, Svamp)


@pytest.mark.parametrize("preset", ["default", "paper"])
@pytest.mark.parametrize("cls", TASKS, ids=lambda c: c.name)
def test_prompt_presets_keep_to_the_contract_fields(cls, preset):
    prompts = cls.default_prompts if preset == "default" else cls.presets[preset]
    assert set(prompts) == set(PROMPT_FIELDS)
    for kind, fields in PROMPT_FIELDS.items():
        template = prompts[kind]
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        assert "question" in used and used <= set(fields), kind
        text = template.format(**{field: f"<{field}>" for field in fields}).lower()
        if kind in ("review", "review_feedback"):
            assert "score" in text and "1 to 5" in text and "[4]" in text and "mistake" not in text
            assert "<gold>" in text or "<hint>" in text
        if kind == "explain":
            assert "mistake" in text and "score" not in text and ("<gold>" in text or "<hint>" in text)
        if kind in ("solve", "student"):
            assert "score" not in text and "mistake" not in text
            if preset == "default":
                assert '"the answer is <answer>."' in text


# loading and splits -------------------------------------------------------------------------
@pytest.mark.needs_data
def test_every_gsm8k_gold_solution_extracts_to_its_gold_answer():
    task = Gsm8k(data_dir=DATA)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (7473, 1319)
    assert (train[0].id, train[0].gold, test[-1].id) == ("train-0", "72", "test-1318")
    wrong = [p.id for p in train if task.extract(p.meta["solution"]) != p.gold]
    assert wrong == []


@pytest.mark.needs_data
def test_svamp_split_is_700_300_deterministic_and_disjoint():
    first, again = Svamp(data_dir=DATA, seed=0), Svamp(data_dir=DATA, seed=0)
    train, test = first.load("train"), first.load("test")
    assert (len(train), len(test)) == (700, 300)
    assert [p.id for p in train] == [p.id for p in again.load("train")]
    ids = {p.id for p in train} | {p.id for p in test}
    assert len(ids) == 1000 and not {p.id for p in train} & {p.id for p in test}
    other = {p.id for p in Svamp(data_dir=DATA, seed=1).load("test")}
    assert other != {p.id for p in test}
    chal1 = first.by_question(
        "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars "
        "on each pack How much do you have to pay to buy each pack?"
    )
    assert (chal1.id, chal1.gold) == ("chal-1", "51")


@pytest.mark.needs_data
def test_svamp_misread_mistakes_of_the_paper():
    """Of the 387 SVAMP "mistakes" the paper released, these are correct answers that the paper's
    extraction misread: the student's text, read by ours, gives the gold answer."""
    task = Svamp(data_dir=DATA)
    items = paper("svamp")
    problems = [task.by_question(item["question"]) for item in items]
    assert None not in problems
    assert all(p.gold == item["gold_answer"] for p, item in zip(problems, items))
    misread = [item["id"] for p, item in zip(problems, items) if task.grade(p, item["student_wrong_pred"])[1]]
    assert 0 in misread  # "Answer: ... 290 / 2 = 145 ... 87 / 93 = 0.92": the paper read 0.92
    assert len(misread) == 25


@pytest.mark.needs_data
def test_strategyqa_pools_train_and_dev_and_maps_the_paper_items():
    task = StrategyQA(data_dir=DATA)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (2061, 229)
    assert not {p.id for p in train} & {p.id for p in test}
    assert {p.gold for p in train + test} == {"yes", "no"}
    items = paper("strategyQA")
    problems = [task.by_question(item["question"]) for item in items]
    assert None not in problems
    golds = {"true.": "yes", "false.": "no"}
    assert all(p.gold == golds[item["gold_answer"].split("\t")[0].strip()] for p, item in zip(problems, items))
    # the paper's "true anywhere" reading marked these correct answers as mistakes
    # (and read nothing in outputs that state their conclusion without the words "true"/"false")
    assert sum(task.grade(p, item["student_wrong_pred"])[1] for p, item in zip(problems, items)) == 80


@pytest.mark.needs_data
def test_logiqa_reads_the_eight_line_format():
    task = LogiQA(data_dir=DATA)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (651, 651)
    first = train[0]
    assert (first.id, first.gold, test[-1].id) == ("Eval-0", "A", "Test-650")
    assert first.meta["options"][0].startswith("The blood pressure of the descendants")
    assert "\nA. The blood pressure" in first.question and "\nD. The blood pressure of Yoruba" in first.question
    assert all(len(p.meta["options"]) == 4 and p.gold in "ABCD" for p in train + test)
    quoted = "Answer: " + first.meta["options"][3].lower()  # the whole option, case aside
    assert task.extract(quoted) is None and task.extract_for(first, quoted) == "D"


def hub_copy(task) -> dict[str, list[dict]]:
    """The task's data in its hub dataset's schema (as the paper's code reads it), split the hub's way."""
    problems = task.load("train") + task.load("test")
    if isinstance(task, Gsm8k):
        return {
            split: [{"question": p.question, "answer": p.meta["solution"]} for p in task.load(split)]
            for split in ("train", "test")
        }
    if isinstance(task, Svamp):
        rows = [
            {
                "ID": p.id,
                "Body": p.meta["body"],
                "Question": p.meta["query"],
                "Equation": p.meta["equation"],
                "Answer": p.gold,
                "Type": p.meta["type"],
                "question_concat": p.question,
            }
            for p in problems
        ]
        return {"train": rows[::2], "test": rows[1::2]}
    if isinstance(task, StrategyQA):
        rows = [
            {"qid": p.id, "question": p.question, "answer": p.gold == "yes", "facts": " ".join(p.meta["facts"])}
            for p in problems
        ]
        return {"train": rows[::3], "test": [r for i, r in enumerate(rows) if i % 3]}
    rows = {
        split: [
            {
                "context": p.meta["context"],
                "query": p.meta["query"],
                "options": p.meta["options"],
                "correct_option": "ABCD".index(p.gold),
            }
            for p in task.load(split)
        ]
        for split in ("train", "test")
    }
    return {"train": rows["train"][:5], "validation": rows["train"], "test": rows["test"]}


@pytest.mark.needs_data
@pytest.mark.parametrize("cls", TASKS, ids=lambda c: c.name)
def test_the_hub_copy_gives_the_same_problems_and_splits(cls, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    local = cls(data_dir=DATA)
    hub = datasets.DatasetDict({split: datasets.Dataset.from_list(rows) for split, rows in hub_copy(local).items()})
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: calls.append(args) or hub)
    remote = cls(data_dir=tmp_path)  # an empty folder: the task goes to the hub
    for split in ("train", "test"):
        by_id = {p.id: p for p in local.load(split)}
        assert sorted(p.id for p in remote.load(split)) == sorted(by_id)
        assert all((p.question, p.gold) == (by_id[p.id].question, by_id[p.id].gold) for p in remote.load(split))
    assert calls == [(cls.hub_id,)]


# extraction ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, answer",
    [
        ("The answer is 1,234.", "1234"),
        ("It costs $1,234.50 in total.", "1234.5"),
        ("The temperature fell to -7 degrees.", "-7"),
        ("The answer is 3/4.", "0.75"),
        ("That is 1/3 of it.", "0.333333"),
        ("Melissa scored 12", None),  # cut off: no answer stated
        ("Answer: Julia played with 5 kids on Monday and 15", None),
        ("Answer: 63\n\nExplanation: he sold 154 - 42 = 112", "63"),  # stated, then working
        ("Answer:\nThey bought 290 / 2 = 145 apples.\nThen they ate", "145"),
        ("The discount is 25%.", "25"),
        ("Answer: 51.0", "51"),
        ("#### 72", "72"),
        ("x = 3 and 4. Final answer: 12", "12"),
        ("The answer is 5. Then 5 + 3 = 8", "5"),  # the marker wins over the last number
        ("The answer is 9. Check: the answer is 7", "7"),  # its last occurrence counts
        ("Answer: 412 - 90 = 322\n\nExplanation: he lost 412 - 20 = 392", "322"),
        ("The answer is 8 because 5 + 3 = 8", "8"),
        ("The answer is 5 since 10 = 2 * 5", "5"),
        ("\\boxed{42}", "42"),
        ("The answer is $\\frac{3}{4}$.", "0.75"),  # LaTeX, as math-tuned models write it
        ("\\boxed{-\\dfrac{10}{4}}", "-2.5"),
        ("Answer: 3 \\times 4 = 12", "12"),
        ("The answer is 1{,}000.", "1000"),
        ("The answer is forty-two.", "42"),  # written out, right after a marker
        ("He has 5 left. So the answer is: Three", "3"),
        ("Answer: seventeen apples", "17"),
        ("The answer is two hundred.", None),  # a larger one: left unread rather than misread
        ("The answer is one of 3 and 4.", "3"),
        ("The answer is negative 3.", "-3"),
        # a model that answers, then writes itself a new exercise: its answer is the first one
        ("The answer is 72 clips.\n\nQuestion: Tom has 5 apples and eats 3. How many?\nThe answer is 2.", "72"),
        ("48 + 24 = 72.\n\n### Instruction:\nA baker has 5 cakes. The answer is 5", "72"),
        ("Let me restate it.\nQuestion: how many apples are there?\nAnswer: 8", "8"),  # a restatement
        ("The answer is:\n\n72", "72"),  # on the line after the marker
        ("**72**", "72"),
        ("# Answer\n\n72", "72"),
        ("To get the final answer, we add 48 and 24 to get 72.", "72"),  # "final answer" in prose
        ("5 - 3 = 2", "2"),
        ("no number here", None),
        ("", None),
    ],
)
def test_extract_number(text, answer):
    assert extract_number(text) == answer


@pytest.mark.parametrize(
    "question, text, answer",
    [
        # cut off inside a number the question gives: a restatement, no answer
        ("Tom fits 10 cars on each shelf. How many shelves?", "Answer:\nLet's see.\n\nTom fits 1", None),
        # cut off restating, after a result that names what is asked: that result
        (
            "There are 30 girls and 31 boys and 3 teachers. How many pupils are there?",
            "There are 30 girls + 31 boys = 61 pupils.\n\nThere are 3",
            "61",
        ),
        # ... but not after an intermediate that names something else
        (
            "Ann has 13 pears and 52 plums. Bo has 10 fewer pears. How many pears does Bo have?",
            "Ann has 13 pears and 52 plums, so she has a total of 65 fruit.\nBo has 10",
            None,
        ),
        # a conclusion about the thing not asked for, judged with the sentence before it
        (
            "He has 27 books and 80 magazines on each of 23 shelves. How many books does he have?",
            "Therefore, he has 23 x 27 = 621 books.\n\nEach shelf has 80 magazines. Therefore, he has 23 x 80 = 1840",
            "621",
        ),
    ],
)
def test_extract_number_knowing_the_question(question, text, answer):
    assert extract_number(text, question) == answer


def test_a_denied_qualifier_is_a_no():
    """ "Were they directly responsible?" answered "while it is impossible to directly attribute
    it to them, they contributed": the conclusion denies what the question hangs on."""
    task = StrategyQA(data_dir=None)
    text = (
        "True or False: They directly caused it.\n\nExplanation:\nThey were always around. While it is "
        "impossible to directly attribute it to them, they certainly contributed to it."
    )
    assert task.extract_for(Problem("1", "Were they directly responsible for it?", "no"), text) == "no"
    assert task.extract_for(Problem("1", "Were they responsible for it?", "no"), text) == "yes"


def test_canonical_gold_and_tolerant_comparison():
    assert [parse_number(s) for s in ("51.0", "1,000", "-0", "3/4", "2.50", "abc")] == [
        "51",
        "1000",
        "0",
        "0.75",
        "2.5",
        None,
    ]
    task = Svamp(data_dir=None)
    assert task.is_correct("51.0000001", "51") and task.is_correct("0.3333333", "0.333333")
    assert not task.is_correct("52", "51") and not task.is_correct(None, "51")


@pytest.mark.parametrize(
    "text, answer",
    [
        ("True. Genghis Khan had more children.", "yes"),
        ("No, it is not.", "no"),
        ("The answer is no. Yes, it is true that he lived.", "no"),
        ("It is true that it rains, but the answer is false.", "no"),
        ("True or False: X is Y.\nExplanation: not true.", "no"),  # an echoed "True or False" is no answer
        ("There is no evidence for it, so true.", "yes"),  # "no evidence" is not an answer
        ("Answer: No because the dates differ, though it is true that", "no"),
        ('the answer to the question is "true", but there is no proof', "yes"),
        ("Answer: not false", "yes"),
        ("I cannot tell.", None),
        ("Probably not.", "no"),
        ("I don't think so.", "no"),
        ("Unlikely, because llamas are slow.", "no"),
        ("Absolutely!", "yes"),
        ("Certainly, many believe it, but no.", "no"),  # an opener, not an answer
        ("Yes/No: No", "no"),  # the prompt's "Yes/No" echoed
        ("No, llamas cannot.\n\nQuestion: Is the sky blue?\nAnswer: Yes", "no"),
    ],
)
def test_extract_yes_no(text, answer):
    assert extract_yes_no(text) == answer


@pytest.mark.parametrize(
    "text, answer",
    [
        ("B", "B"),
        ("(b) because the context says so", "B"),
        ("I pick option C.", "C"),
        ("Answer: B", "B"),
        ("A. The blood pressure is high", "A"),
        ("The correct option is D, since", "D"),
        ("Option A fails. The answer is (c).", "C"),
        ("Option A fails and option C holds", None),  # two options named, no marker: undecided
        ("A man said nothing useful", None),
        ("The best option is B", "B"),
        ("The answer should be C", "C"),
        ("I would choose B because it follows.", "B"),
        ("After weighing them, C is correct.", "C"),
        ("C is the most reasonable choice.", "C"),
        ("Therefore, C.", "C"),
        ("A. is wrong because it assumes too much. B is correct.", "B"),
        ("**B. The company will lose money.**", "B"),
        ("Answer: a", "A"),
        ("The answer is:\n\n**C**", "C"),
        ("The answer is a cat", None),
        ("The answer is B.\n\nQuestion: Which follows?\nThe answer is A.", "B"),
    ],
)
def test_extract_letter(text, answer):
    assert extract_letter(text) == answer


def test_match_option_needs_exactly_one_quoted_option():
    options = ["Some people like peppers.", "All people like peppers.", "No one", "Southerners"]
    assert match_option("Answer: 'All people like peppers'", options) == "B"
    assert match_option("Answer: some people like peppers, all people like peppers", options) is None
    assert match_option("nothing quoted", options) is None


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_extractors_never_raise(text):
    number = extract_number(text)
    assert number is None or parse_number(number) == number
    assert extract_yes_no(text) in (None, "yes", "no")
    assert extract_letter(text) in (None, "A", "B", "C", "D")
    assert match_option(text, ["a", text[:5], "", "d d"]) in (None, "A", "B", "C", "D")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-(10**12), 10**12),
    st.sampled_from(["The answer is {}.", "#### {}", "Answer: ${}", "so in total {} apples"]),
)
def test_integers_round_trip(n, template):
    assert extract_number(template.format(f"{n:,}")) == str(n)


# data errors --------------------------------------------------------------------------------
def test_a_missing_data_dir_is_one_line(tmp_path):
    with pytest.raises(DataError) as error:
        Gsm8k(data_dir=tmp_path / "nowhere")
    assert "\n" not in str(error.value) and "nowhere" in str(error.value)


def test_no_local_files_and_no_hub_is_one_line(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError) as error:
        Svamp(data_dir=tmp_path).load("train")
    message = str(error.value)
    assert "\n" not in message
    assert "svamp" in message and str(tmp_path / "svamp") in message and "FAIR_DATA_DIR" in message


def test_a_corrupt_json_line_names_file_and_line(tmp_path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    good = json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"})
    (folder / "train.jsonl").write_text(good + "\n{not json\n")
    (folder / "test.jsonl").write_text(good + "\n")
    with pytest.raises(DataError, match=r"train\.jsonl:2: not valid JSON"):
        Gsm8k(data_dir=tmp_path).load("test")
    (folder / "train.jsonl").write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(DataError, match=r"train\.jsonl:1: .*####"):
        Gsm8k(data_dir=tmp_path).load("train")


def test_unreadable_and_truncated_files_are_data_errors(tmp_path):
    (tmp_path / "svamp").mkdir()
    (tmp_path / "svamp" / "SVAMP.json").write_bytes(b"\xff\xfe[")
    with pytest.raises(DataError, match=r"SVAMP\.json:1: not UTF-8 text: save it as UTF-8"):
        Svamp(data_dir=tmp_path).load("train")
    (tmp_path / "logiqa").mkdir()
    (tmp_path / "logiqa" / "Eval.txt").write_text("\na\ncontext\nquery\nA.1\nB.2\n")
    (tmp_path / "logiqa" / "Test.txt").write_text("")
    with pytest.raises(DataError, match=r"Eval\.txt:6: the file ends inside an item"):
        LogiQA(data_dir=tmp_path).load("train")
