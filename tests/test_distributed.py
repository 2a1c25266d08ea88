"""Training on several processes: the batches each process gets, and real multi-process runs on
the CPU (torchrun, gloo) compared with one process.

The sharding property runs over the real sampler and accelerate's real ``prepare_data_loader``
and ``skip_first_batches`` in milliseconds; the runs start ``python -m fair_core.training`` on
two ranks of a tiny model and a handful of pairs that need no data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fair_core.errors import DataError
from fair_core.testing.tiny import make_tiny_student
from fair_core.training import command
from fair_core.training.data import LengthGroupedBatches

ROOT = Path(__file__).resolve().parents[1]
# 8 pairs at batch 2: 4 batches, 2 steps an epoch whether one process accumulates 2 batches or
# 2 processes take one each; fp32 and dropout on, so that equal means equal.
SETTINGS = 'batch_size = 2\nepochs = 2\nsave_steps = 2\nmax_length = 48\nlora_dropout = 0.1\nprecision = "fp32"'


def shards(sampler: LengthGroupedBatches, processes: int, skip: int = 0) -> list[list[list[int]]]:
    """Each process's batches of one epoch as accelerate deals them (after ``skip`` at a resume),
    and each process's ``len(loader)``."""
    from accelerate.data_loader import prepare_data_loader, skip_first_batches
    from torch.utils.data import DataLoader

    out = []
    for rank in range(processes):
        plain = DataLoader(range(len(sampler.lengths)), batch_sampler=sampler, collate_fn=list)
        loader = prepare_data_loader(plain, num_processes=processes, process_index=rank, put_on_device=False)
        assert len(loader) == len(sampler) // processes
        out.append(list(skip_first_batches(loader, skip) if skip else loader))
    return out


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 400), min_size=1, max_size=90),
    size=st.integers(1, 9),
    processes=st.integers(1, 8),
    group=st.integers(1, 5),
    seed=st.integers(0, 3),
    epoch=st.integers(0, 3),
)
def test_every_process_gets_len_loader_batches_and_every_pair_once(lengths, size, processes, group, seed, epoch):
    if len(lengths) < processes:
        with pytest.raises(DataError, match="fewer processes"):
            LengthGroupedBatches(lengths, size, seed, group, processes)
        return
    sampler = LengthGroupedBatches(lengths, size, seed, group, processes)
    sampler.epoch = epoch
    per_rank = shards(sampler, processes)
    n = len(sampler) // processes
    assert all(len(batches) == n for batches in per_rank)  # no rank waits for another
    pairs = [i for batches in per_rank for batch in batches for i in batch]
    assert sorted(pairs) == list(range(len(lengths)))  # each pair once per epoch
    assert all(0 < len(batch) <= max(size, 2) for batches in per_rank for batch in batches)
    # one process: batches as full as the sharding allows
    assert len(sampler) == -(-len(lengths) // size) if processes == 1 else len(sampler) % processes == 0
    # a resume part-way through the epoch gets exactly the rest, on every rank
    done = epoch % (n + 1)
    assert shards(sampler, processes, done) == [batches[done:] for batches in per_rank]


def test_the_hang_the_issue_found_is_gone():
    """25 pairs, batch 2, seed 0, 2 processes: accelerate used to drop the round holding the short
    batch while its length counted it, so the resume of the epoch's last step found nothing."""
    sampler = LengthGroupedBatches([10] * 25, 2, seed=0, processes=2)
    per_rank = shards(sampler, 2)
    assert [len(b) for b in per_rank] == [7, 7]
    assert sorted(i for batches in per_rank for b in batches for i in b) == list(range(25))


def test_a_launch_that_accelerate_does_not_see_whole_is_refused(monkeypatch):
    from fair_core.errors import FairError
    from fair_core.training.trainer import check_processes

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FairError, match="ACCELERATE_USE_CPU=1"):
        check_processes(1)
    check_processes(2)
    monkeypatch.delenv("WORLD_SIZE")
    check_processes(1)


CONFIGS = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_accelerate_configs_are_what_fair_supports(path):
    """accelerate's own reader takes each example; FSDP ones are FSDP2, DeepSpeed ones leave the
    micro-batch size and the clip to fair, which fills them into the plugin accelerate builds."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin

    from fair_core.config import TrainConfig
    from fair_core.training.trainer import fill_deepspeed

    config = load_config_from_file(str(path))
    assert config.num_processes == 8 * config.num_machines and not config.use_cpu
    if config.distributed_type == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
        assert "fsdp_transformer_layer_cls_to_wrap" not in config.fsdp_config  # any model's own layers
    else:
        assert config.distributed_type == "DEEPSPEED"
        ds = config.deepspeed_config
        plugin = DeepSpeedPlugin(zero_stage=ds["zero_stage"], zero3_save_16bit_model=ds.get("zero3_save_16bit_model"))
        fill_deepspeed(plugin.deepspeed_config, TrainConfig(batch_size=4, max_grad_norm=0.5))
        assert plugin.get_value("train_micro_batch_size_per_gpu") == 4 and plugin.get_value("gradient_clipping") == 0.5
        # ZeRO-3 gathers the weights into one file for the outputs
        assert ds["zero_stage"] == 2 or plugin.get_value("zero_optimization.stage3_gather_16bit_weights_on_model_save")
    if config.num_machines > 1:
        assert config.main_process_ip and config.machine_rank == 0


def test_the_launch_ends_with_the_cause_of_the_process_that_failed(tmp_path):
    """A process that left its message (fair's own, or a traceback's last line) is quoted; one that
    died without one (killed, or exited on its own) is named with how it ended, not with torch's
    advice to enable tracebacks."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from fair_core.training import launch

    said = tmp_path / "error.json"
    said.write_text(json.dumps({"message": "base model /x not found: pass a folder", "timestamp": 1}))
    nothing = str(tmp_path / "none.json")

    def failed(*failures: tuple[int, int, str]) -> ChildFailedError:
        return ChildFailedError("train", {r: ProcessFailure(r, 100 + r, code, f) for r, code, f in failures})

    assert launch.cause(failed((0, -15, nothing), (1, 2, str(said)))) == ("base model /x not found: pass a folder", 2)
    message, status = launch.cause(failed((1, -9, nothing)))
    assert status == 1 and message.startswith("training process 1 was killed by SIGKILL")
    # a process that lost its peer to the kill fails too, as seen at the same moment: the kill is the cause
    lost = tmp_path / "lost.json"
    lost.write_text(json.dumps({"message": "RuntimeError: Connection closed by peer", "timestamp": 1}))
    message, status = launch.cause(failed((0, 1, str(lost)), (1, -9, nothing)))
    assert message.startswith("training process 1 was killed by SIGKILL")
    message, status = launch.cause(failed((0, -15, nothing), (3, 1, nothing)))
    assert status == 1 and message.startswith("training process 3 stopped with exit status 1 without a message")


def test_an_accelerate_config_goes_through_accelerate_launch():
    path = "configs/accelerate/fsdp2.yaml"
    argv = command("r", 0, "b", config_file=path)
    assert argv[1:6] == ["-m", "fair_core.training.launch", "--config_file", path, "--module"]


# -- real runs on two CPU processes ---------------------------------------------------------------


def make_run(root: Path, n: int, train: str) -> Path:
    """A run folder whose round 0 has ``n`` small pairs (no data needed)."""

    def row(i: int) -> dict:
        prompt = f"Tom has {i} apples and buys {i + 3}. How many?"
        return {
            "item_id": str(i),
            "feedback": {"prompt": prompt, "response": "Add. " * (1 + i % 3)},
            "rationale": {"prompt": prompt, "response": f"{2 * i + 3}."},
        }

    rows = [row(i) for i in range(n)]
    (root / "rounds" / "0").mkdir(parents=True)
    (root / "rounds" / "0" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "config.toml").write_text(f"[train]\n{train}\n")
    return root


ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]),
    "OMP_NUM_THREADS": "1",
}


def alone(run: Path, tiny: Path) -> None:
    """``python -m fair_core.training`` alone, in a process of its own as fair runs it (accelerate's
    state is one per process, and the settings here differ from other tests')."""
    done = subprocess.run(command(run, 0, tiny), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr


def torchrun(
    run: Path, tiny: Path, fsdp: int = 0, script: list[str] | None = None, merge: bool = False
) -> tuple[list[str], dict]:
    """argv and environment of ``python -m fair_core.training`` on 2 ranks under torchrun: DDP
    over gloo on the CPU, or FSDP of version ``fsdp`` through tests/gloo_as_gpu.py (accelerate
    enables FSDP only for GPU-like devices); ``script``: a script of tests/ and its own arguments
    that runs it instead under DDP."""
    env = ENV.copy()
    if fsdp:
        env |= {
            "ACCELERATE_USE_FSDP": "true",
            "FSDP_VERSION": str(fsdp),
            "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",  # the layers the model names
        }
        head = [str(ROOT / "tests" / "gloo_as_gpu.py")]
    else:
        env["ACCELERATE_USE_CPU"] = "1"
        head = [str(ROOT / "tests" / script[0]), *script[1:]] if script else ["-m", "fair_core.training"]
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return argv + head + command(run, 0, tiny, merge=merge)[3:], env


def ranks(
    run: Path, tiny: Path, *, fsdp: int = 0, script: list[str] | None = None, merge: bool = False
) -> subprocess.CompletedProcess:
    argv, env = torchrun(run, tiny, fsdp, script, merge)
    # the limit only turns a hang (what this file guards against) into a failure
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def progress(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]


def adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(out / "adapter" / "adapter_model.safetensors")


def same(got: dict, want: dict, atol: float) -> bool:
    return got.keys() == want.keys() and all(torch.allclose(got[k], want[k], atol=atol) for k in got)


def resume_from(out: Path, step: int) -> None:
    """Leave ``out`` as a kill after checkpoint ``step`` would have: later checkpoints and the
    outputs gone."""
    for p in (out / "checkpoints").iterdir():
        if int(p.name.removeprefix("step-")) > step:
            shutil.rmtree(p)
    shutil.rmtree(out / "adapter")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny) -> Path:
    """8 pairs in one process accumulating 2 batches a step: what 2 ranks must reproduce."""
    run = make_run(tmp_path_factory.mktemp("one") / "run", 8, SETTINGS + "\ngrad_accum = 2")
    alone(run, tiny)
    return run / "rounds" / "0"


@pytest.mark.slow
def test_two_ranks_equal_one_process_accumulating(tmp_path, tiny, one_process):
    run = make_run(tmp_path / "run", 8, SETTINGS)
    done = ranks(run, tiny)
    assert done.returncode == 0, done.stderr
    out = run / "rounds" / "0"
    got, want = progress(out), progress(one_process)
    assert [r["type"] for r in got].count("train_done") == 1
    losses = [[r["loss"] for r in p if r["type"] == "train_step"] for p in (got, want)]
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], abs=1e-5)
    assert same(adapter(out), adapter(one_process), atol=1e-6)


@pytest.fixture(scope="module")
def odd(tmp_path_factory, tiny) -> tuple[Path, dict, dict]:
    """9 pairs at batch 2 on 2 ranks, uninterrupted: the round's folder, train_done, the adapter."""
    run = make_run(tmp_path_factory.mktemp("odd") / "run", 9, SETTINGS)
    done = ranks(run, tiny)
    assert done.returncode == 0, done.stderr
    out = run / "rounds" / "0"
    return out, progress(out)[-1], adapter(out)


@pytest.mark.slow
def test_an_odd_pair_count_finishes_on_two_ranks_and_resumes_mid_epoch(tmp_path, tiny, odd):
    """9 pairs at batch 2 on 2 ranks: 6 batches (3 of one pair), 3 steps an epoch; a resume from
    step 4 skips the first step of the second epoch on both ranks (where runs used to spin).

    Checkpoints step-4 and step-6 are there and rank 1 alone cannot read step-6: both ranks
    resume from step-4 (each falling back on its own, they resumed 2 steps apart and waited for
    each other for ever). One process cannot resume what two wrote, and says so."""
    first, done, trained = odd
    assert [r["type"] for r in progress(first)].count("train_done") == 1
    assert done["step"] == 6 and done["pairs"] == 9
    run = tmp_path / "run"
    shutil.copytree(first.parents[1], run)
    out = run / "rounds" / "0"
    resume_from(out, 6)
    one = subprocess.run(command(run, 0, tiny), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert one.returncode == 2
    assert "written by 2 training processes and this run has 1" in one.stderr.strip().splitlines()[-1]
    again = ranks(run, tiny, script=["rank_faults.py", "unreadable:6"])
    assert again.returncode == 0, again.stderr
    assert "cannot read" in again.stderr and "trying the one before" in again.stderr
    done = progress(out)[-1]
    assert done["resumed_from"] == 4 and done["step"] == 6
    assert same(adapter(out), trained, atol=1e-6)


@pytest.mark.slow
def test_kill_9_of_one_rank_then_resume_matches_uninterrupted(tmp_path, tiny, odd):
    """A resume with --merge: only the first process merges, and the others must not wait for it
    (their wait timed out while an 8B model was merged: NCCL's limit is 10 minutes)."""
    import psutil

    run = make_run(tmp_path / "run", 9, SETTINGS)
    out = run / "rounds" / "0"
    argv, env = torchrun(run, tiny)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (out / "checkpoints" / "step-2").is_dir() and proc.poll() is None:
            time.sleep(0.01)
        workers = [c for c in psutil.Process(proc.pid).children() if "fair_core.training" in c.cmdline()]
        assert len(workers) == 2
        workers[-1].send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=900)
    assert proc.returncode != 0 and not (out / "adapter").exists()
    # with --merge, which the first process does alone: the others do not wait for it
    again = ranks(run, tiny, script=["rank_faults.py", "late-merge"], merge=True)
    assert again.returncode == 0, again.stderr
    assert (out / "merged" / "model.safetensors").is_file()
    done, (_, want, trained) = progress(out)[-1], odd
    assert done["type"] == "train_done" and done["resumed_from"] in (2, 4) and done["step"] == 6
    assert done["loss"] == pytest.approx(want["loss"], abs=1e-6)
    assert same(adapter(out), trained, atol=1e-6)


@pytest.mark.slow
def test_fsdp2_lora_on_two_ranks_saves_the_adapter_one_process_trains(tmp_path, tiny, one_process):
    """FSDP2 over gloo, fair's code unchanged: the adapter is whole (not the empty one FSDP1 saved)
    and equals one process's; a resume restores the optimizer's state (the result is the same),
    from the checkpoint before a damaged one (DCP's error, a BaseException, crashed every process)."""
    run = make_run(tmp_path / "run", 8, SETTINGS)
    out = run / "rounds" / "0"
    first = ranks(run, tiny, fsdp=2)
    assert first.returncode == 0, first.stderr
    trained = adapter(out)
    assert len(trained) == 2 * 2 * 2 and all(v.abs().sum() > 0 for v in trained.values())  # 2 layers, q and v, A and B
    assert same(trained, adapter(one_process), atol=1e-5)
    # a checkpoint holds the adapter and its optimizer state, not the sharded frozen base
    held = sum(f.stat().st_size for f in (out / "checkpoints" / "step-2").rglob("*") if f.is_file())
    assert held < (tiny / "model.safetensors").stat().st_size / 2
    # the newest checkpoint has lost a process's shard: both processes resume from the one before
    resume_from(out, 4)
    (out / "checkpoints" / "step-4" / "trainable" / "__1_0.distcp").write_bytes(b"")
    again = ranks(run, tiny, fsdp=2)
    assert again.returncode == 0, again.stderr
    assert "checkpoint step-4 cannot be read" in again.stderr
    assert progress(out)[-1]["resumed_from"] == 2
    assert same(adapter(out), trained, atol=1e-6)


@pytest.mark.slow
def test_a_launch_accelerate_sees_as_one_process_stops_with_one_line_and_exit_2(tmp_path, tiny):
    """accelerate launch --multi_gpu on a CPU: each process would train alone into the same
    folder. Every rank refuses; the launch ends with that line and exit 2, not torchrun's block."""
    run = make_run(tmp_path / "run", 4, SETTINGS)
    argv = command(run, 0, tiny, launcher="accelerate")
    argv[3:3] = ["--multi_gpu", "--num_processes", "2"]
    done = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 2, done.stderr
    assert "accelerate sees 1" in done.stderr.strip().splitlines()[-1]
    assert not (run / "rounds" / "0" / "progress.jsonl").exists()


@pytest.mark.slow
def test_fsdp2_full_fine_tuning_on_two_ranks_equals_one_process(tmp_path, tiny):
    """And resumes from the checkpoint before one that lost a process's shard of the weights."""
    from safetensors.torch import load_file

    full = SETTINGS + '\nmethod = "full"\nmax_steps = 2'
    one = make_run(tmp_path / "one", 8, full + "\ngrad_accum = 2")
    alone(one, tiny)
    two = make_run(tmp_path / "two", 8, full.replace("save_steps = 2", "save_steps = 1"))
    done = ranks(two, tiny, fsdp=2)
    assert done.returncode == 0, done.stderr
    got, want = (load_file(r / "rounds" / "0" / "model" / "model.safetensors") for r in (two, one))
    base = load_file(tiny / "model.safetensors")
    assert got.keys() == want.keys() == base.keys()
    assert any(not torch.equal(got[k], base[k]) for k in got)
    assert all(torch.allclose(got[k], want[k], atol=1e-5) for k in got)
    out = two / "rounds" / "0"
    shutil.rmtree(out / "model")
    (out / "checkpoints" / "step-2" / "pytorch_model_fsdp_0" / "__1_0.distcp").write_bytes(b"")
    again = ranks(two, tiny, fsdp=2)
    assert again.returncode == 0, again.stderr
    assert "checkpoint step-2 cannot be read" in again.stderr and progress(out)[-1]["resumed_from"] == 1
    resumed = load_file(out / "model" / "model.safetensors")
    assert all(torch.allclose(resumed[k], got[k], atol=1e-6) for k in got)


@pytest.mark.slow
def test_fsdp1_is_refused_with_the_reason(tmp_path, tiny):
    run = make_run(tmp_path / "run", 4, SETTINGS)
    done = ranks(run, tiny, fsdp=1)
    assert done.returncode != 0 and "FSDP version 1 is not supported" in done.stderr
    assert not (run / "rounds" / "0" / "progress.jsonl").exists()


SHARED = """
import json
import sys
from pathlib import Path

from accelerate import Accelerator

from fair_core.errors import FairError
from fair_core.training.trainer import check_shared

acc = Accelerator()
root = Path(sys.argv[1])
said = []
for folder in (root, root / f"machine-{acc.process_index}"):  # one filesystem, then one each
    folder.mkdir(exist_ok=True)
    try:
        check_shared(acc, folder)
        said.append("shared")
    except FairError as e:
        said.append(str(e))
(root / f"rank-{acc.process_index}.json").write_text(json.dumps(said))
"""


@pytest.mark.slow
def test_processes_that_do_not_share_the_run_folder_are_refused(tmp_path):
    """Two ranks on one machine, each given a folder of its own as another machine's disk would
    be: both stop with the line; given the same folder, both go on."""
    script = tmp_path / "shared.py"
    script.write_text(SHARED)
    env = {**ENV, "ACCELERATE_USE_CPU": "1"}
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    done = subprocess.run([*argv, str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    for rank in (0, 1):
        together, apart = json.loads((tmp_path / f"rank-{rank}.json").read_text())
        assert together == "shared"
        assert apart.startswith("1 of the 2 training processes cannot see") and f"machine-{rank}:" in apart
    assert not [p for p in tmp_path.rglob(".*")]  # the mark is gone


def test_a_tracker_that_is_not_installed_is_said_once_not_once_a_process(monkeypatch, caplog):
    from fair_core.training.trainer import installed_trackers

    for rank, said in (("1", 0), ("0", 1)):
        monkeypatch.setenv("RANK", rank)  # set by torchrun in each process it starts
        caplog.clear()
        assert installed_trackers(["no-such-tracker"]) == []
        assert caplog.text.count("report_to 'no-such-tracker' skipped") == said
