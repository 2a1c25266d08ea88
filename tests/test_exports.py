"""Exports load in their consumers' own loaders; `fair push` against a mocked hub; a task read
from a hub dataset id and an adapter named by its hub id, resolved offline."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from helpers import REPO, fair

from fair_core import __version__
from fair_core import config as cfg
from fair_core.cli import main
from fair_core.errors import DataError, FairError
from fair_core.runs.store import Store

KINDS = {"feedback", "rationale"}
# LLaMA-Factory's dataset_info.json keys, as its data/README.md documents them
LF_KEYS = {
    "hf_hub_url",
    "ms_hub_url",
    "script_url",
    "cloud_file_name",
    "file_name",
    "formatting",
    "ranking",
    "subset",
    "split",
    "folder",
    "num_samples",
    "columns",
    "tags",
}
LF_COLUMNS = {
    "alpaca": {"prompt", "query", "response", "system", "history"},
    "sharegpt": {"messages", "system", "tools"},
}
LF_TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Round 0 compiled from the paper's recorded committee (replay: no key, a few seconds)."""
    path = tmp_path_factory.mktemp("exports") / "run"
    out = fair(
        "run", REPO / "configs" / "svamp-replay.toml", "--run-dir", path, "--set", "task.train_limit=12", "--quiet"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return path


def pairs(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "rounds" / "0" / "train.jsonl").read_text().splitlines()]


def compiled(run: Path) -> Counter:
    """(kind, prompt, response) of every compiled example: what each export must hold, exactly."""
    return Counter((k, p[k]["prompt"], p[k]["response"]) for p in pairs(run) for k in KINDS)


def export(run: Path, fmt: str, out: Path) -> Path:
    assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 0
    return out


def check_card(folder: Path, fmt: str) -> None:
    """The dataset card reads as the hub reads it, and says where the data came from."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(folder / "README.md")
    assert card.data.license == "mit" and card.data.task_categories == ["text-generation"]
    assert {"fair", "svamp"} <= set(card.data.tags)
    for text in (
        "gpt-3.5-turbo (recorded)",
        "gemini-1.0-pro (recorded)",
        "mixtral-8x7b (recorded)",
        "policy `mean`, threshold 3",
        "Krippendorff's alpha",
        "Fleiss' kappa",
        f"fair {__version__}",
        "licence MIT",
        "cost of the whole run's teacher calls: $0.0000",
        f"Format `{fmt}`",
    ):
        assert text in card.text, text


def check_split(splits: dict[str, list[dict]], run: Path) -> None:
    """Train and validation hold every compiled example once, both kinds each, no item in both."""
    rows = [r for split in splits.values() for r in split]
    assert len(rows) == 2 * len(pairs(run))
    assert all(splits.values()) and {r["kind"] for r in splits["validation"]} == KINDS
    items = {name: {r["item_id"] for r in split} for name, split in splits.items()}
    assert not items["train"] & items["validation"]
    assert Counter(r["kind"] for r in rows) == {"feedback": len(pairs(run)), "rationale": len(pairs(run))}


@pytest.mark.needs_data
def test_compile_writes_its_pairs_alone(run):
    """rounds/N/train.jsonl is what the trainer and every export read; compile writes nothing beside it."""
    assert [p.name for p in (run / "rounds" / "0").iterdir()] == ["train.jsonl"]


# trainable exports ------------------------------------------------------------------------------
@pytest.mark.needs_data
def test_hf_is_a_datasetdict_with_train_and_validation(run, tmp_path):
    import datasets

    out = export(run, "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(out))
    assert isinstance(ds, datasets.DatasetDict) and set(ds) == {"train", "validation"}
    check_split({name: list(split) for name, split in ds.items()}, run)
    assert Counter((r["kind"], r["prompt"], r["completion"]) for s in ds.values() for r in s) == compiled(run)
    # the folder loads as its hub repo will (the card's data_files), and the split is seeded
    hub = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: len(d) for s, d in hub.items()} == {s: len(d) for s, d in ds.items()}
    again = datasets.load_from_disk(str(export(run, "hf", tmp_path / "again")))
    assert again["validation"]["item_id"] == ds["validation"]["item_id"]
    check_card(out, "hf")


@pytest.mark.needs_data
def test_one_compiled_item_exports_a_train_split_alone(tmp_path):
    """One item trains and none validates (a small dataset, a student with one mistake): hf wrote an
    empty validation split, which datasets refused with a traceback."""
    import datasets

    run = tmp_path / "run"
    out = fair(
        "run", REPO / "configs" / "svamp-replay.toml", "--run-dir", run, "--set", "task.train_limit=1", "--quiet"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ds = datasets.load_from_disk(str(export(run, "hf", tmp_path / "hf")))
    assert set(ds) == {"train"}
    assert Counter((r["kind"], r["prompt"], r["completion"]) for r in ds["train"]) == compiled(run)
    check_card(tmp_path / "hf", "hf")


@pytest.mark.needs_data
@pytest.mark.parametrize("fmt", ["messages", "prompt-completion"])
def test_trl_formats_load_with_load_dataset(run, tmp_path, fmt):
    import datasets

    out = export(run, fmt, tmp_path / fmt)
    ds = datasets.load_dataset(
        "json",
        data_files={s: str(out / f"{s}.jsonl") for s in ("train", "validation")},
        cache_dir=str(tmp_path / "cache"),
    )
    check_split({name: list(split) for name, split in ds.items()}, run)
    rows = [r for split in ds.values() for r in split]
    if fmt == "messages":
        assert all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in rows)
        held = Counter((r["kind"], r["messages"][0]["content"], r["messages"][1]["content"]) for r in rows)
    else:  # the run's student is prompted through its chat template: conversational prompt-completion
        assert all(r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant" for r in rows)
        held = Counter((r["kind"], r["prompt"][0]["content"], r["completion"][0]["content"]) for r in rows)
    assert held == compiled(run)
    check_card(out, fmt)


def test_prompt_completion_is_plain_text_for_a_student_without_chat_template():
    from fair_core.results.export import FORMATS
    from fair_core.results.formats import examples, shape

    rows = examples(
        [
            {
                "item_id": "7",
                "feedback": {"prompt": "P1", "response": "R1"},
                "rationale": {"prompt": "P2", "response": "R2"},
            }
        ]
    )
    assert shape(FORMATS["prompt-completion"], rows, chat=False) == [
        {"prompt": "P1", "completion": "R1", "kind": "feedback", "item_id": "7"},
        {"prompt": "P2", "completion": "R2", "kind": "rationale", "item_id": "7"},
    ]


@pytest.mark.needs_data
def test_trl_tokenizes_the_export_as_fair_trains(run, tmp_path):
    """TRL's SFTTrainer prepares the prompt-completion export into fair's own training sequences
    (the same prompt tokens, masked out of the loss, then the response and eos, and the chat
    template's closing newline), and trains and validates on it as exported."""
    pytest.importorskip("trl")
    import datasets
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer
    from trl.data_utils import is_conversational

    from fair_core.testing.tiny import make_tiny_student
    from fair_core.training.data import Encoder

    student = make_tiny_student(tmp_path / "student")
    tok = AutoTokenizer.from_pretrained(student)
    for fmt in ("messages", "prompt-completion"):
        row = json.loads((export(run, fmt, tmp_path / fmt) / "train.jsonl").read_text().splitlines()[0])
        assert is_conversational(row)
    data = datasets.load_dataset(
        "json",
        data_files={s: str(tmp_path / "prompt-completion" / f"{s}.jsonl") for s in ("train", "validation")},
        cache_dir=str(tmp_path / "cache"),
    )
    trainer = SFTTrainer(
        model=str(student),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tok,
        args=SFTConfig(
            output_dir=str(tmp_path / "trl"),
            report_to=[],
            use_cpu=True,
            bf16=False,
            max_length=None,
            max_steps=1,
            eval_strategy="steps",
            eval_steps=1,
            save_strategy="no",
            disable_tqdm=True,
        ),
    )
    encode = Encoder(tok, chat_template=True, max_length=100_000)
    for prepared, row in zip(trainer.train_dataset, data["train"]):
        ours = encode(row["prompt"][0]["content"], row["completion"][0]["content"])
        assert prepared["input_ids"][: len(ours.ids)] == ours.ids
        assert next(i for i, label in enumerate(prepared["labels"]) if label != -100) == ours.n_prompt
    assert trainer.train().global_step == 1 and "eval_loss" in trainer.evaluate()


@pytest.mark.needs_data
@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt"])
def test_llama_factory_formats_match_its_dataset_info_schema(run, tmp_path, fmt):
    out = export(run, fmt, tmp_path / fmt)
    info = json.loads((out / "dataset_info.json").read_text())
    assert set(info) == {"fair_svamp_r0_train", "fair_svamp_r0_validation"}
    splits = {}
    for name, entry in info.items():
        assert set(entry) <= LF_KEYS and entry["formatting"] == fmt
        assert set(entry["columns"]) <= LF_COLUMNS[fmt] and set(entry.get("tags", {})) <= LF_TAGS
        rows = [json.loads(line) for line in (out / entry["file_name"]).read_text().splitlines()]
        assert all(set(entry["columns"].values()) <= set(r) for r in rows)
        splits[name.rsplit("_", 1)[1]] = rows
    check_split(splits, run)
    columns, tags = info["fair_svamp_r0_train"]["columns"], info["fair_svamp_r0_train"].get("tags")
    held = Counter()
    for r in (r for rows in splits.values() for r in rows):
        if fmt == "alpaca":  # LLaMA-Factory's user turn: the instruction, then the input if any, by "\n"
            user = "\n".join(x for x in (r[columns["prompt"]], r[columns["query"]]) if x)
            held[(r["kind"], user, r[columns["response"]])] += 1
        else:
            turns = r[columns["messages"]]
            assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]]
            held[(r["kind"], turns[0][tags["content_tag"]], turns[1][tags["content_tag"]])] += 1
    assert held == compiled(run)
    check_card(out, fmt)


@pytest.mark.needs_data
def test_committee_exports_carry_a_card(run, tmp_path):
    for fmt in ("jsonl", "paper"):
        check_card(export(run, fmt, tmp_path / fmt), fmt)
    rows = [json.loads(line) for line in (tmp_path / "jsonl" / "round0.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all("writings" in r for r in rows)  # the nested per-mistake records
    writings = [w for r in rows for w in r["writings"]]
    assert {tuple(sorted(w)) for w in writings} == {("accepted", "kind", "reviews", "teacher", "text")}
    assert {w["teacher"] for w in writings} == {"gpt", "gemini", "mistral"}  # each writing's author, by this key


@pytest.mark.needs_data
def test_an_out_that_is_a_file_is_one_line(run, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for fmt in ("hf", "jsonl", "merged"):
        for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
            assert main(["export", str(run), "--format", fmt, "--out", str(out)]) == 2
            err = capsys.readouterr().err
            assert err == f"fair: error: --out {out}: {tmp_path / 'afile'} is a file, not a folder: pass a folder\n"
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.needs_data
def test_a_run_not_compiled_says_so_in_one_line(run, tmp_path, capsys):
    stale = tmp_path / "run"
    shutil.copytree(run, stale)
    store = Store(stale / "run.sqlite")
    store.mark_stale(0, ["compile"])  # as a changed threshold leaves it
    store.close()
    for fmt in ("hf", "messages", "alpaca"):
        assert main(["export", str(stale), "--format", fmt, "--out", str(tmp_path / fmt)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "run its compile stage first" in err
        assert not (tmp_path / fmt).exists()


# the formats -------------------------------------------------------------------------------------
def card_formats() -> list:
    from fair_core.results.export import FORMATS

    return [f for f in FORMATS.values() if f.note is not None]


@pytest.mark.needs_data
@pytest.mark.parametrize("fmt", card_formats(), ids=lambda f: f.name)
def test_every_format_with_a_card_is_written_with_its_note(run, tmp_path, fmt):
    out = export(run, fmt.name, tmp_path / "out")
    card = (out / "README.md").read_text()
    assert f"({fmt.name})" in card and f"Format `{fmt.name}`: {fmt.note}\n" in card
    assert len(list(out.iterdir())) > 1  # the data beside its card


@pytest.mark.needs_data
def test_a_format_added_to_the_registry_is_offered_and_written(run, tmp_path, monkeypatch):
    """A format is one object: added to FORMATS alone, the CLI offers it and the card describes it."""
    from functools import partial

    from fair_core.results.export import FORMATS, save_jsonl, trainable
    from fair_core.results.formats import Format

    text = Format(
        "text",
        "one string per example.",
        partial(trainable, save=save_jsonl),
        shaper=lambda row, chat: {"text": row["prompt"] + row["response"]},
    )
    monkeypatch.setitem(FORMATS, "text", text)
    out = export(run, "text", tmp_path / "text")
    assert "Format `text`: one string per example." in (out / "README.md").read_text()
    rows = [json.loads(line) for name in ("train", "validation") for line in (out / f"{name}.jsonl").open()]
    assert Counter((r["kind"], r["text"]) for r in rows) == Counter((k, p + r) for k, p, r in compiled(run).elements())


def test_an_unknown_format_is_one_line(tmp_path):
    from fair_core.results.export import export as write

    with pytest.raises(FairError, match=r"^no export format 'csv': use one of paper, jsonl, hf, .*, gguf$"):
        write(tmp_path, "csv", tmp_path / "out")


# the hub ------------------------------------------------------------------------------------------
class FakeApi:
    """HfApi as `fair push` uses it; records the calls and what the uploaded folder held."""

    calls: list = []
    fail: Exception | None = None

    def create_repo(self, repo_id, **kwargs):
        if FakeApi.fail:
            raise FakeApi.fail
        FakeApi.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{'datasets/' if kwargs['repo_type'] == 'dataset' else ''}{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        FakeApi.calls.append(("upload_folder", repo_id, {**kwargs, "files": files, "folder": folder}))
        if (folder / "dataset_dict.json").is_file():
            import datasets

            FakeApi.calls[-1][2]["rows"] = {s: len(d) for s, d in datasets.load_from_disk(str(folder)).items()}


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    FakeApi.calls, FakeApi.fail = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi


@pytest.mark.needs_data
def test_push_dataset_is_private_by_default_with_its_card(run, hub, capsys):
    assert main(["push", str(run), "--repo", "someone/fair-svamp"]) == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/datasets/someone/fair-svamp"
    (_, repo, create), (_, repo2, upload) = hub.calls
    assert repo == repo2 == "someone/fair-svamp"
    assert create == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["repo_type"] == "dataset" and {"README.md", "dataset_dict.json"} <= set(upload["files"])
    assert b"license: mit" in upload["files"]["README.md"]
    assert sum(upload["rows"].values()) == 2 * len(pairs(run)) and upload["rows"]["validation"]
    hub.calls = []
    assert main(["push", str(run), "--repo", "someone/fair-svamp", "--public"]) == 0
    assert hub.calls[0][2]["private"] is False


@pytest.mark.needs_data
def test_push_adapter_and_model_with_model_cards_leave_the_run_as_it_was(run, hub, tmp_path):
    trained = tmp_path / "run"
    shutil.copytree(run, trained)
    adapter = trained / "rounds" / "0" / "adapter"
    adapter.mkdir()
    settings = {"peft_type": "LORA", "r": 8, "base_model_name_or_path": "/home/me/.cache/fair/smol"}
    (adapter / "adapter_config.json").write_text(json.dumps(settings))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "README.md").write_text("peft's own card")
    config = cfg.load(trained / "config.toml")
    base = "HuggingFaceTB/SmolLM2-135M-Instruct"
    (trained / "config.toml").write_text(
        cfg.dump(config.model_copy(update={"student": config.student.model_copy(update={"model": base})}))
    )
    assert main(["push", str(trained), "--repo", "someone/fair-adapter", "--what", "adapter"]) == 0
    (_, _, create), (_, _, upload) = hub.calls
    assert create["repo_type"] == "model" and create["private"] is True
    files = upload["files"]
    assert files["adapter_model.safetensors"] == b"weights"
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base  # loadable elsewhere
    card = files["README.md"].decode()
    assert "library_name: peft" in card and f"base_model: {base}" in card
    assert "AutoPeftModelForCausalLM.from_pretrained('someone/fair-adapter')" in card
    assert json.loads((adapter / "adapter_config.json").read_text()) == settings  # the run's copy untouched
    assert (adapter / "README.md").read_text() == "peft's own card"
    merged = trained / "rounds" / "0" / "merged"  # with train.merge = true
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    hub.calls = []
    assert main(["push", str(trained), "--repo", "someone/fair-model", "--what", "model"]) == 0
    upload = hub.calls[1][2]
    assert upload["repo_type"] == "model" and set(upload["files"]) == {"config.json", "README.md"}
    assert "library_name: transformers" in upload["files"]["README.md"].decode()


@pytest.mark.needs_data
def test_push_failures_are_one_line(run, hub, capsys):
    from huggingface_hub.errors import LocalTokenNotFoundError

    cases = [
        (["--what", "model"], "train.merge=true"),
        (["--what", "adapter"], "no trained LoRA adapter"),
        (["--repo", "not a repo"], "not a hub repo id"),
    ]
    for extra, words in cases:
        args = ["push", str(run), "--repo", "someone/x", *extra]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    for error, words in (
        (LocalTokenNotFoundError("Token is required"), "HF_TOKEN"),
        (ConnectionError("Name or service not known"), "check the network"),
    ):
        hub.fail = error
        assert main(["push", str(run), "--repo", "someone/x"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert not hub.calls


def test_an_adapter_is_found_by_its_hub_id_in_the_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from fair_core.stats import accuracy
    from fair_core.student import local_adapter
    from fair_core.testing.tiny import into_hub_cache

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    snapshot = into_hub_cache(folder, tmp_path / "cache", "someone/fair-adapter")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    assert constants.HF_HUB_OFFLINE  # nothing here reaches the hub
    assert Path(local_adapter("someone/fair-adapter")) == snapshot
    assert local_adapter(str(folder)) == str(folder)
    with pytest.raises(FairError, match="adapter someone/missing is not a local folder, and the hub repo"):
        local_adapter("someone/missing")
    seen = {}

    def evaluate_model(host, model, task, split, limit, adapter, max_new_tokens):
        seen["adapter"] = adapter
        return accuracy(1, 2)

    monkeypatch.setattr("fair_core.results.evaluate.evaluate_model", evaluate_model)
    assert main(["eval", "--student", "x", "--task", "svamp", "--adapter", "someone/fair-adapter"]) == 0
    assert Path(seen["adapter"]) == snapshot


@pytest.mark.needs_data
def test_a_task_reads_its_splits_from_a_hub_dataset_id(monkeypatch, data_dir):
    import datasets

    from fair_core.host import get_host
    from fair_tasks.svamp import Svamp

    records = json.loads((data_dir / "svamp" / "SVAMP.json").read_text())
    mirror = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(records[:700]), "test": datasets.Dataset.from_list(records[700:])}
    )
    asked = []

    def load_dataset(name, **options):
        asked.append((name, options))
        if name != "someone/svamp-mirror":
            raise ConnectionError("no network in tests")
        return mirror

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    config = cfg.validate({"task": {"name": "svamp", "hub_id": "someone/svamp-mirror"}})
    task = get_host().task(config.task)  # as a run builds it
    local = Svamp()
    assert [p.id for p in task.load("train")] == [p.id for p in local.load("train")]  # local data present, unused
    assert [p.question for p in task.load("test")] == [p.question for p in local.load("test")]
    assert asked == [("someone/svamp-mirror", {})]
    with pytest.raises(DataError, match="the hub dataset someone/gone could not be loaded .*check task.hub_id"):
        Svamp(hub_id="someone/gone").load("train")
