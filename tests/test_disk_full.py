"""A full disk: one line naming the path and the space needed, exit 3, and no answered call paid
twice. The disk is not really filled: the store's transactions fail as SQLite fails on a full disk
("database or disk is full"), through the store's own rollback."""

import signal
import sqlite3
from contextlib import contextmanager

import pytest
from committee_setup import committee_config, paper_mistakes

from fair_core.cli import main
from fair_core.runs.disk import DiskFull, full_at, is_full
from fair_core.runs.store import Store
from fair_core.testing.server import serve_in_thread


class FullDisk:
    """Every store transaction after the first ``after`` calls stored fails for want of space, until
    ``failures`` of them have failed (None: until the end)."""

    def __init__(self, monkeypatch, after: int, failures: int | None):
        self.after, self.left, self.stored, self.failed = after, failures, 0, 0
        real_tx, real_record = Store.tx, Store.record_call
        disk = self

        @contextmanager
        def tx(store):
            with real_tx(store) as db:
                yield db
                if disk.stored >= disk.after and (disk.left is None or disk.left > 0):
                    disk.failed += 1
                    if disk.left is not None:
                        disk.left -= 1
                    raise sqlite3.OperationalError("database or disk is full")

        def record_call(store, key, call):
            real_record(store, key, call)
            disk.stored += 1

        monkeypatch.setattr(Store, "tx", tx)
        monkeypatch.setattr(Store, "record_call", record_call)


def run(config, run_dir, capsys) -> tuple[int, list[str]]:
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        code = main(["run", str(config), "--run-dir", str(run_dir), "--quiet"])
    finally:
        signal.signal(signal.SIGTERM, sigterm)  # `fair run` makes SIGTERM stop it, as Ctrl-C does
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("failures", [5, None], ids=["space-comes-back", "stays-full"])
def test_a_full_disk_mid_committee_is_one_line_and_no_answered_call_is_paid_twice(
    tmp_path, paper_dir, monkeypatch, capsys, failures
):
    mistakes = paper_mistakes(paper_dir, tmp_path, 30)
    with serve_in_thread(latency=0.02) as server:
        # three models: a server fingerprint (model + messages) is then one call of the gateway's
        models = ("solver", "noisy-0.3", "noisy-0.0")
        config = committee_config(tmp_path, server.url, mistakes, models, teacher={"concurrency": 4})
        target = tmp_path / "run"
        with monkeypatch.context() as m:
            disk = FullDisk(m, after=20, failures=failures)
            code, err = run(config, target, capsys)
            stored_before = disk.stored
        assert code == 3 and disk.failed, err
        assert len(err) == 1 and err[0].startswith("fair: error: disk full: cannot write "), err
        assert str(target / "run.sqlite") in err[0] and "more and " in err[0] and "is free there" in err[0]
        answered = set(server.answered)
        with sqlite3.connect(target / "run.sqlite") as db:
            stored = db.execute("SELECT COUNT(*) FROM calls WHERE response IS NOT NULL").fetchone()[0]
        assert stored == stored_before
        if failures is None:  # what was held in memory could not be stored: said, and asked again
            lost = len(answered) - stored
            assert lost > 0 and f"{lost} answered calls could not be stored" in err[0], err
        else:  # space came back before fair exited: every answer it was paid for is stored
            assert stored == len(answered) > 20 and "could not be stored" not in err[0], err
        server.reset_counts()
        code, err = run(config, target, capsys)
        assert code == 0, err
        repaid = set(server.received) & answered
    assert len(repaid) == (lost if failures is None else 0)


def test_full_at_names_the_path_and_the_space_needed(tmp_path):
    with pytest.raises(DiskFull) as error, full_at(tmp_path / "adapter", lambda: 123_456_789):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")
    assert str(error.value).startswith(f"disk full: cannot write {tmp_path / 'adapter'}: it needs about 123.5 MB more")
    with pytest.raises(ValueError), full_at(tmp_path, lambda: 1):
        raise ValueError("not about space")
    assert is_full(OSError(28, "No space left on device")) and not is_full(OSError(13, "Permission denied"))
    assert is_full(sqlite3.OperationalError("database or disk is full"))


@pytest.mark.slow
def test_a_full_disk_while_training_is_one_line_exit_3_and_the_rerun_resumes(tmp_path, paper_dir, monkeypatch, capsys):
    """torch reports a short write as "unexpected pos": the child says where and what it needs in
    one line, exit 3, leaves no half-written checkpoint, and the next run trains from the last whole one."""
    import json

    import torch

    from fair_core.testing.pairs import paper_pairs
    from fair_core.testing.tiny import make_tiny_student
    from fair_core.training.__main__ import main as train_main
    from fair_tasks.prompts import NUMBER

    tiny = make_tiny_student(tmp_path / "tiny")
    run = tmp_path / "run"
    (run / "rounds" / "0").mkdir(parents=True)
    pairs = paper_pairs(paper_dir, NUMBER)[:8]
    (run / "rounds" / "0" / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (run / "config.toml").write_text("[train]\nbatch_size = 2\nmax_steps = 4\nsave_steps = 2\nmax_length = 48\n")
    argv = ["--run-dir", str(run), "--round", "0", "--base", str(tiny)]
    real_save = torch.save

    def save(obj, f, *args, **kwargs):  # the second checkpoint finds the disk full
        if ".step-4.tmp" in str(f):
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    assert train_main(argv) == 3
    err = capsys.readouterr().err.strip().splitlines()  # libraries' progress bars aside, as `fair` turns them off
    checkpoints = run / "rounds" / "0" / "checkpoints"
    assert err[-1].startswith(f"disk full: cannot write {checkpoints / 'step-4'}: it needs about"), err
    assert "is free there" in err[-1] and not any("Traceback" in line for line in err), err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-2"]  # the half-written one is gone
    monkeypatch.setattr(torch, "save", real_save)
    assert train_main(argv) == 0
    progress = [json.loads(line) for line in (run / "rounds" / "0" / "progress.jsonl").read_text().splitlines()]
    assert progress[-1]["type"] == "train_done" and progress[-1]["resumed_from"] == 2


def test_a_full_disk_any_command_meets_is_one_line_exit_3(monkeypatch, capsys, tmp_path):
    import errno

    from fair_core import cli

    def report(args):  # as open() fails when no inode or block is left
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out.json"))

    monkeypatch.setattr(cli, "cmd_report", report)
    assert main(["report", str(tmp_path)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fair: error: disk full: cannot write {tmp_path / 'out.json'}: ")
    assert "is free there; free some space, then rerun" in err[0]
    monkeypatch.setattr(cli, "cmd_report", lambda args: (_ for _ in ()).throw(OSError(errno.EACCES, "denied")))
    with pytest.raises(OSError):
        main(["report", str(tmp_path)])
