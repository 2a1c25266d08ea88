"""docs/events.md against the code: every event, every record and field, the exit codes."""

import ast
import re
from dataclasses import fields

from helpers import REPO, fair

from fair_core.cli import EXIT_CODES
from fair_core.runs.events import EVENT_TYPES

DOC = (REPO / "docs" / "events.md").read_text()


def progress_records() -> dict[str, set[str]]:
    """The keys of each progress.jsonl record type, read from the code that writes them: the dict
    literals with a "type" in the trainer; the rates they spread in come from Meter.rates."""
    rates = set()
    for node in ast.walk(ast.parse((REPO / "fair_core" / "training" / "progress.py").read_text())):
        if isinstance(node, ast.Dict):
            rates |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
    records = {}
    for node in ast.walk(ast.parse((REPO / "fair_core" / "training" / "trainer.py").read_text())):
        if isinstance(node, ast.Dict):
            keys = dict(zip([k.value if isinstance(k, ast.Constant) else None for k in node.keys], node.values))
            if "type" in keys:
                spreads = None in keys  # **meter.rates(...)
                records[keys["type"].value] = {k for k in keys if k} | (rates if spreads else set())
    return records


def test_every_event_and_field_is_documented():
    assert len(EVENT_TYPES) >= 11
    for name, cls in EVENT_TYPES.items():
        assert f"### `{name}`" in DOC, name
        for f in ["type", *(f.name for f in fields(cls))]:
            assert f"`{f}`" in DOC, (name, f)


def test_every_progress_record_and_key_is_documented():
    records = progress_records()
    assert set(records) == {"train_step", "train_resumed", "train_done"}
    assert "tokens_per_second" in records["train_step"] and "merged" in records["train_done"]
    section = DOC.split("## Training progress")[1].split("\n## ")[0]
    for name, keys in records.items():
        assert f"### `{name}`" in section, name
        part = section.split(f"### `{name}`")[1].split("\n### ")[0]
        for key in keys:
            assert f"`{key}`" in part, (name, key)


def test_exit_codes_match_the_help():
    assert EXIT_CODES in DOC
    assert EXIT_CODES in fair("run", "--help").stdout


def test_readme_links_the_scripting_doc():
    readme = (REPO / "README.md").read_text()
    assert "docs/events.md" in readme and "fair completion" in readme and "--events -" in readme


def test_the_architecture_doc_names_every_module_in_its_folder_and_layer():
    """A module added to fair_core without a place in the layers would hide which layer it is in."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    layers = doc[doc.index("## Layers") : doc.index("## Where each kind of change goes")]
    core = REPO / "fair_core"
    for path in core.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        name = path.relative_to(core).with_suffix("").as_posix()
        assert f"`{name}`" in layers, name


def test_the_architecture_docs_layers_are_those_lint_imports_checks():
    """The numbered layers in docs/architecture.md, top to bottom, are the layers of the import
    contract in pyproject.toml (a folder written `runs/`, a module in one `runs/rundir`)."""
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (core,) = [c for c in contracts if c["type"] == "layers" and c["containers"] == ["fair_core"]]
    doc = (REPO / "docs" / "architecture.md").read_text()
    layers = doc[doc.index("## Layers") : doc.index("## Where each kind of change goes")]
    items = re.findall(r"^\d+\. (.*?)(?=^\d+\. |\n\n)", layers, re.M | re.S)
    assert len(items) == len(core["layers"])
    for item, layer in zip(items, core["layers"]):
        for name in (n.strip() for n in layer.split(":")):
            written = name.replace(".", "/")
            assert f"`{written}`" in item or f"`{written}/`" in item, (name, item)


def test_every_import_path_the_docs_promise_resolves():
    """Third parties write the paths these pages name: a module moved inside fair_core keeps its old
    path as a re-export of the same objects (fair_core.events, fair_core.records)."""
    import importlib

    import fair_core.events
    import fair_core.records
    from fair_core.runs import events, records

    pages = ("README.md", "docs/api.md", "docs/plugin-authoring.md")
    paths = {p for page in pages for p in re.findall(r"\bfair_core(?:\.\w+)+", (REPO / page).read_text())}
    assert "fair_core.events" in paths and "fair_core.records" in paths
    for path in paths:
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):  # the longest module prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            break
    assert fair_core.events.StageFinished is events.StageFinished
    assert fair_core.records.Writing is records.Writing
