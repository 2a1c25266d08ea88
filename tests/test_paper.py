"""The paper's released data through our run store, and replay parity of the committee."""

import json
import sqlite3

import pytest
from helpers import REPO, fair

SVAMP = [
    "Llama-2-7b-chat-hf_svamp_false_round0.json",
    "Llama-2-7b-chat-hf_svamp_feedback_round0.json",
    "Llama-2-7b-chat-hf_svamp_rationale_round0.json",
]


def test_import_then_export_gives_the_originals(tmp_path, paper_dir):
    run = tmp_path / "run"
    out = fair("import-paper", "--run", run, *[paper_dir / f for f in SVAMP])
    assert out.returncode == 0, out.stderr
    assert "imported 387 items" in out.stdout
    assert fair("export", run, "--format", "paper", "--out", tmp_path / "out").returncode == 0
    for name in SVAMP:
        ours = json.loads((tmp_path / "out" / name).read_text())
        theirs = json.loads((paper_dir / name).read_text())
        assert ours == theirs
        assert [list(x) for x in ours] == [list(x) for x in theirs]  # same keys in the same order
    db = sqlite3.connect(run / "run.sqlite")
    assert db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 387 * 3 * 2
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.slow
def test_export_jsonl_and_hf(tmp_path, paper_dir):
    run = tmp_path / "run"
    fair("import-paper", "--run", run, *[paper_dir / f for f in SVAMP])
    assert fair("export", run, "--format", "jsonl", "--out", tmp_path / "j").returncode == 0
    rows = [json.loads(line) for line in (tmp_path / "j" / "round0.jsonl").read_text().splitlines()]
    assert len(rows) == 387 and rows[0]["item_id"] == "0"
    assert sum(w["accepted"] for r in rows for w in r["writings"] if w["kind"] == "rationale") == 826
    # the training formats (hf among them) hold compiled data, which an import does not make
    out = fair("export", run, "--format", "hf", "--out", tmp_path / "h")
    assert out.returncode == 2 and "run its compile stage first" in out.stderr


@pytest.mark.slow
def test_replay_parity(tmp_path, paper_dir):
    run = tmp_path / "run"
    out = fair(
        "run", REPO / "configs" / "svamp-replay.toml", "--run-dir", run, "--stages", "explain,solve,review", "--quiet"
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(fair("report", run, "--json").stdout)
    assert report["accepted_rationales"] == 826 and report["items_without_rationale"] == 22
    assert report["items"] == 387 and report["failures"] == 0
    db = sqlite3.connect(run / "run.sqlite")
    accepted = {}
    for item, text in db.execute(
        "SELECT v.item_id, w.text FROM verdicts v JOIN writings w ON v.round = w.round "
        "AND v.item_id = w.item_id AND v.kind = w.kind AND v.author = w.teacher "
        "WHERE v.accepted AND v.kind = 'rationale'"
    ):
        accepted.setdefault(item, set()).add(text)
    for x in json.loads((paper_dir / SVAMP[2]).read_text()):
        assert accepted.get(str(x["id"]), set()) == set(x["correct_rationale"]), x["id"]
    # a rerun resumes: nothing is asked again
    again = fair(
        "run", REPO / "configs" / "svamp-replay.toml", "--run-dir", run, "--stages", "explain,solve,review", "--quiet"
    )
    assert again.returncode == 0
    assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 387 * 3 * 4
