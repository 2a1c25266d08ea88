"""The parts of ``benchmarks/gpu_check.sh`` that read better in Python. Each subcommand keeps a
record under ``WORK/summary/`` for the closing ``summary``:

    targets LOG NAME RC [--tiny]  read train.py's output (kept in LOG; RC its exit status) and check
                                  the GPU targets: memory_ratio <= 0.6, full fine-tuning MFU >= 40%.
                                  A miss prints "TARGET MISSED: ..." and is no failure; exit 1 only
                                  when a run that exited 0 printed no RESULT line
    vllm WORK                     the "vllm" student backend against "hf" on a tiny local model:
                                  greedy answers to the same prompts, time and agreement
    fsdp WORK                     two processes under `accelerate launch` with FSDP2
                                  (configs/accelerate/fsdp2.yaml), through the project's launcher,
                                  LoRA and full: exactly one train_done, an adapter of trained
                                  LoRA weights, a model that differs from the base; FSDP1 refused
    summary WORK SECONDS          the figures as a row and notes for docs/benchmarks.md

vLLM and FSDP print one "skipped: ..." line and exit 0 where they cannot run (no vllm, one GPU).
No part downloads anything: the models are built locally (fair_core.testing.tiny).
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

MFU_TARGET = 40.0  # %, full fine-tuning
MEMORY_RATIO_TARGET = 0.6  # ours / the paper's layout, peak memory


def record(work: Path, name: str, data: dict) -> None:
    folder = work / "summary"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data))


def number(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


# -- targets ---------------------------------------------------------------------------------


def parse_train_output(text: str) -> dict:
    """The figures of benchmarks/train.py's output: the RESULT line's key=value pairs, and what
    the "ours:" and "paper:" lines say (real tokens/s, MFU, peak memory)."""
    lines = text.splitlines()
    result_lines = [line for line in lines if line.startswith("RESULT")]
    out: dict = {"result": None}
    if result_lines:
        out["result"] = {k: v for k, v in re.findall(r"(\w+)=(\S+)", result_lines[-1])}
    for side in ("ours", "paper"):
        found = [line for line in lines if re.match(rf"\s*{side}:", line)]
        if not found:
            continue
        line = found[-1]
        out[side] = {
            "tokens_per_s": number(r"([\d.]+) real tokens/s", line),
            "mfu": number(r"MFU ([\d.]+)%", line),
            # "peak memory allocated by torch N MiB" (GPU), "peak resident memory of its process N MiB" (CPU)
            "peak_mib": number(r"peak\b[^,;()\d]*([\d.]+) MiB", line),
            "step_mib": number(r"step memory ([\d.]+) MiB", line),
        }
    where = [line for line in lines if line.startswith("model ")]
    if where:
        out["setup"] = where[-1].split(";")[0]
    return out


def targets(log: Path, name: str, rc: int, tiny: bool) -> int:
    work = log.parent
    text = log.read_text(errors="replace") if log.is_file() else ""
    figures = parse_train_output(text)
    rec = {"name": name, "rc": rc, "tiny": tiny, **figures, "missed": []}
    if rc != 0:  # the part already failed and said so; keep it out of the figures
        rec["crashed"] = True
        record(work, f"throughput-{name}", rec)
        print(f"targets, {name}: not checked (train.py exited {rc})")
        return 0
    if figures["result"] is None:
        record(work, f"throughput-{name}", {**rec, "crashed": True})
        print(f"!! targets, {name}: train.py exited 0 but printed no RESULT line")
        return 1
    result = figures["result"]
    ours = figures.get("ours", {})
    shown = " ".join(f"{k}={v}" for k, v in result.items())
    extra = []
    if ours.get("tokens_per_s") is not None:
        extra.append(f"ours {ours['tokens_per_s']:.0f} real tokens/s")
    if ours.get("mfu") is not None:
        extra.append(f"MFU {ours['mfu']:.1f}%")
    if ours.get("peak_mib") is not None:
        extra.append(f"peak {ours['peak_mib']:.0f} MiB")
    print(f"figures, {name}: {shown}" + (f" ({', '.join(extra)})" if extra else ""))
    if tiny:
        print(f"targets, {name}: not checked (--tiny: a CPU smoke test, not a GPU measurement)")
        record(work, f"throughput-{name}", rec)
        return 0
    missed = rec["missed"]
    ratio = result.get("memory_ratio")
    try:
        ratio_value = float(ratio) if ratio is not None else None
    except ValueError:
        ratio_value = None
    if ratio_value is None:
        missed.append(f"{name}: memory_ratio not reported (RESULT line: {shown})")
    elif ratio_value > MEMORY_RATIO_TARGET:
        missed.append(f"{name}: memory_ratio={ratio_value:.2f} > {MEMORY_RATIO_TARGET}")
    if name == "full":
        mfu = ours.get("mfu")
        if mfu is None:
            missed.append(f"{name}: MFU not reported on the 'ours:' line (a GPU train.py has no peak for?)")
        elif mfu < MFU_TARGET:
            missed.append(f"{name}: MFU {mfu:.1f}% < {MFU_TARGET:.0f}%")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    checked = f"memory_ratio <= {MEMORY_RATIO_TARGET}" + (f", MFU >= {MFU_TARGET:.0f}%" if name == "full" else "")
    if not missed:
        print(f"targets, {name}: met ({checked})")
    record(work, f"throughput-{name}", rec)
    return 0


# -- vLLM ------------------------------------------------------------------------------------

PROMPTS = [
    f"Tom has {a} apples and buys {b} more. How many apples does he have now?"
    for a, b in zip(range(7, 71, 2), range(3, 99, 3))
] + [
    f"A baker made {a} cakes and sold {b} of them. How many cakes are left?"
    for a, b in zip(range(40, 104, 2), range(1, 33))
]


def students():
    """The registry of student backends, as a run builds them: the "fair" entry points, or the
    built-in plugin itself where the project is not installed on this machine."""
    from fair_core.host import Host, get_host

    host = get_host()
    if "vllm" not in host.registry["students"]:
        import fair_students

        host = Host()
        host.add(fair_students, "students", builtin=True)
    return host


def answer(host, config, backend: str) -> tuple[list[str], float, float, str]:
    """The answers of one backend to PROMPTS: (answers, load seconds, generate seconds, dtype)."""
    t0 = time.perf_counter()
    student = host.get("students", backend)(config.model_copy(update={"backend": backend}))
    loaded = time.perf_counter() - t0
    try:
        if backend == "vllm":
            engine = getattr(student.llm, "llm_engine", None)
            dtype = str(getattr(getattr(engine, "model_config", None), "dtype", "?"))
        else:
            dtype = str(student.model.dtype)
        student.generate(PROMPTS[:2])  # warm-up: first-call kernels are not the backend's speed
        t1 = time.perf_counter()
        out = student.generate(PROMPTS)
        took = time.perf_counter() - t1
    finally:
        student.close()
    assert isinstance(out, list) and len(out) == len(PROMPTS) and all(isinstance(a, str) for a in out), out
    print(f"{backend:>4}: loaded in {loaded:.1f} s ({dtype}), {len(PROMPTS)} answers in {took:.2f} s", flush=True)
    return out, loaded, took, dtype


def vllm_part(work: Path) -> int:
    if importlib.util.find_spec("vllm") is None:
        print("vLLM student: skipped (vllm is not installed on this machine)")
        record(work, "vllm", {"skipped": "vllm not installed"})
        return 0
    import torch

    if not torch.cuda.is_available():
        print("vLLM student: skipped (no GPU visible)")
        record(work, "vllm", {"skipped": "no GPU"})
        return 0
    import vllm

    from fair_core.config import StudentConfig
    from fair_core.testing.tiny import make_tiny_student

    # The tests' tiny student has 16-wide attention heads, which not every vLLM attention
    # backend takes; 4 heads of 64 are a real model's shape, and the model is still tiny.
    model = make_tiny_student(work / "tiny-vllm", hidden=256, heads=4, layers=2)
    # fp32 on both sides: a random model's logits are close, and in bf16 two correct
    # implementations disagree on most answers (hf alone, fp32 against bf16: 16 of 64 agree).
    config = StudentConfig(backend="vllm", model=str(model), max_new_tokens=32, batch_size=16, dtype="fp32")
    host = students()
    print(
        f"vllm {vllm.__version__}; tiny Llama (2 layers, hidden 256, head 64) in {model}; "
        f"{len(PROMPTS)} prompts, greedy, {config.max_new_tokens} new tokens",
        flush=True,
    )
    try:  # vLLM first: it starts its engine before this process has touched CUDA
        vllm_out, vllm_load, vllm_s, vllm_dtype = answer(host, config, "vllm")
    except Exception as e:  # noqa: BLE001 - an older vLLM without fp32 attention: the default dtype still counts
        first = (str(e).strip().splitlines() or [""])[0]
        print(f'vllm in fp32 failed ({type(e).__name__}: {first}); again with student.dtype = "auto"', flush=True)
        config = config.model_copy(update={"dtype": "auto"})
        vllm_out, vllm_load, vllm_s, vllm_dtype = answer(host, config, "vllm")
    # hf in the dtype vLLM ran in ("auto" is bf16 for vLLM, and for hf only on a GPU)
    same_dtype = next(
        (n for k, n in (("bfloat16", "bf16"), ("float16", "fp16"), ("float32", "fp32")) if k in vllm_dtype), None
    )
    if same_dtype and same_dtype != config.dtype:
        config = config.model_copy(update={"dtype": same_dtype})
    hf_out, hf_load, hf_s, hf_dtype = answer(host, config, "hf")

    # A token cut in the middle of a UTF-8 character decodes to U+FFFD in hf, while vLLM's
    # incremental detokenizer holds it back: compare the answers without it.
    def clean(a: str) -> str:
        return a.replace("\ufffd", "").strip()

    def shared(a: str, b: str) -> float:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n / max(len(a), len(b), 1)

    pairs = [(clean(a), clean(b)) for a, b in zip(vllm_out, hf_out)]
    same = sum(a == b for a, b in pairs)
    prefix = sum(shared(a, b) for a, b in pairs) / len(pairs)
    empty = sum(not a for a, _ in pairs)
    print(
        f"agreement ({config.dtype}): {same}/{len(PROMPTS)} answers identical, mean shared prefix {prefix:.0%} "
        f"of the longer answer; {empty} empty vLLM answers"
    )
    for a, b in pairs[:2]:
        print(f"  vllm: {a[:100]!r}\n    hf: {b[:100]!r}")
    if config.dtype == "fp32" and same < 0.9 * len(PROMPTS):
        print(
            f"AGREEMENT LOW: vLLM and hf agree on {same}/{len(PROMPTS)} greedy fp32 answers (hf alone agrees "
            f"with itself at any batch size): do both backends see the same prompt?"
        )
    elif config.dtype != "fp32":
        print(
            "note: not fp32, where a random tiny model's close logits tip greedy decoding either way; "
            "the agreement above says little"
        )
    record(
        work,
        "vllm",
        {
            "version": vllm.__version__,
            "prompts": len(PROMPTS),
            "same": same,
            "prefix": prefix,
            "dtype": config.dtype,
            "vllm_s": [vllm_load, vllm_s],
            "hf_s": [hf_load, hf_s],
            "speedup": hf_s / vllm_s if vllm_s else float("nan"),
            "empty": empty,
        },
    )
    return 0


# -- FSDP ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pairs_jsonl(n: int = 32) -> str:
    rows = []
    for i in range(n):
        a, b = 3 * i + 7, 2 * i + 5
        q = f"Tom has {a} apples and buys {b} more. How many apples does he have?"
        rows.append(
            {
                "item_id": str(i),
                "feedback": {
                    "prompt": f"Question: {q}\nStudent's answer: {a - b}\nPoint out the mistakes.",
                    "response": f"The student subtracted instead of adding. {a} + {b} = {a + b}.",
                },
                "rationale": {
                    "prompt": f"Question: {q}\nLet's think step by step.",
                    "response": f"{a} + {b} = {a + b}. The answer is {a + b}.",
                },
            }
        )
    return "".join(json.dumps(r) + "\n" for r in rows)


def fsdp_part(work: Path) -> int:
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        print(f"FSDP: skipped ({gpus} GPU visible; two processes with FSDP need at least 2)")
        record(work, "fsdp", {"skipped": f"{gpus} GPU"})
        return 0
    from safetensors.torch import load_file

    from fair_core.testing.tiny import make_tiny_student
    from fair_core.training import command

    tiny = make_tiny_student(work / "tiny")
    config_file = ROOT / "configs" / "accelerate" / "fsdp2.yaml"  # the example users are pointed to
    results = {}
    # (name, method, merge, accelerate's options, pairs): each run is 4 steps, one epoch; plain
    # DDP gets a pair count whose last batch is short (where ranks used to wait for ever)
    fsdp2 = ["--config_file", str(config_file)]
    cases = (("full", "full", False, fsdp2, 32), ("lora", "lora", True, fsdp2, 32), ("ddp", "lora", False, [], 25))
    for name, method, merge, options, pairs in cases:
        run = work / f"fsdp-{name}"
        (run / "rounds" / "0").mkdir(parents=True)
        (run / "rounds" / "0" / "train.jsonl").write_text(pairs_jsonl(pairs))
        (run / "config.toml").write_text(
            f'[train]\nlauncher = "accelerate"\nmethod = "{method}"\nbatch_size = 4\nepochs = 1\nsave_steps = 2\n'
        )
        argv = command(run, 0, tiny, merge=merge, launcher="accelerate")
        # accelerate's own options go before the script: `python -m fair_core.training.launch
        # --config_file F --num_processes 2 ... --module fair_core.training --run-dir ...`
        at = argv.index("fair_core.training.launch") + 1
        argv[at:at] = [*(options or ["--multi_gpu"]), "--num_processes", "2", "--main_process_port", str(free_port())]
        print("$", " ".join(argv[1:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(argv, check=True)
        elapsed = time.perf_counter() - t0
        records = [json.loads(line) for line in (run / "rounds" / "0" / "progress.jsonl").read_text().splitlines()]
        finished = [r for r in records if r["type"] == "train_done"]
        assert len(finished) == 1, f"{len(finished)} train_done records: the processes did not train as one"
        done = finished[0]
        assert done["step"] == done["max_steps"] == 4, done
        final = run / "rounds" / "0" / ("model" if method == "full" else "adapter")
        if method == "full":
            trained, base = load_file(final / "model.safetensors"), load_file(tiny / "model.safetensors")
            assert trained.keys() == base.keys(), "the saved model lacks weights"
            assert any(not torch.equal(trained[k], base[k]) for k in trained), "the saved model is the base"
        else:
            weights = load_file(final / "adapter_model.safetensors")
            assert weights and all("lora_" in k for k in weights), f"adapter holds {sorted(weights)}"
            assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k), "adapter never trained"
        if merge:
            assert (run / "rounds" / "0" / "merged").is_dir()
        print(
            f"{name}: train_done in {elapsed:.0f} s, loss {done['loss']}, "
            f"{done.get('tokens_per_second')} tokens/s; {final.name}/ written"
        )
        results[name] = {"s": round(elapsed, 1), "loss": done["loss"]}
    # FSDP version 1 is refused before any weight loads: one line, exit 2
    old = work / "fsdp1.yaml"
    old.write_text(config_file.read_text().replace("fsdp_version: 2", "fsdp_version: 1"))
    argv = command(work / "fsdp-lora", 0, tiny, launcher="accelerate", config_file=old)
    refused = subprocess.run(argv, capture_output=True, text=True)
    last = (refused.stderr.strip().splitlines() or [""])[-1]
    assert refused.returncode == 2 and "FSDP version 1" in last, (refused.returncode, last)
    print(f"fsdp1: refused, exit 2: {last}")
    record(work, "fsdp", {"gpus": gpus, **results})
    return 0


# -- summary ---------------------------------------------------------------------------------


def summary(work: Path, seconds: int) -> int:
    folder = work / "summary"
    recs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    figures, notes, missed = [], [], []
    setup, tiny, crashed = None, False, False
    for name in ("lora", "full"):
        rec = recs.get(f"throughput-{name}")
        if rec is None:
            figures.append(f"{name}: not run")
            continue
        tiny = tiny or rec.get("tiny", False)
        if rec.get("crashed"):
            figures.append(f"{name}: crashed")
            crashed = True
            continue
        setup = setup or rec.get("setup")
        result = " ".join(f"{k}={v}" for k, v in rec["result"].items())
        ours, paper = rec.get("ours", {}), rec.get("paper", {})
        bits = []
        if ours.get("tokens_per_s") is not None and paper.get("tokens_per_s") is not None:
            bits.append(f"{ours['tokens_per_s']:.0f} vs {paper['tokens_per_s']:.0f} real tokens/s")
        if ours.get("mfu") is not None:
            bits.append(
                f"MFU {ours['mfu']:.1f}%" + (f" vs {paper['mfu']:.1f}%" if paper.get("mfu") is not None else "")
            )
        if ours.get("peak_mib") is not None:
            bits.append(
                f"peak {ours['peak_mib']:.0f}"
                + (f" vs {paper['peak_mib']:.0f}" if paper.get("peak_mib") else "")
                + " MiB"
            )
        figures.append(f"{name} `{result}`" + (f" ({'; '.join(bits)})" if bits else ""))
        missed += rec.get("missed", [])
    v = recs.get("vllm")
    if v and "skipped" not in v:
        notes.append(
            f"vLLM student ({v['version']}) on a tiny local Llama, {v['prompts']} prompts, 32 greedy tokens: "
            f"{v['vllm_s'][1]:.2f} s against hf's {v['hf_s'][1]:.2f} s ({v['speedup']:.1f}x; loading "
            f"{v['vllm_s'][0]:.0f} s vs {v['hf_s'][0]:.0f} s), {v['same']}/{v['prompts']} answers identical "
            f"(mean shared prefix {v['prefix']:.0%}), both {v['dtype']}"
        )
    else:
        notes.append(f"vLLM student: not run ({(v or {}).get('skipped', 'part did not finish')})")
    f = recs.get("fsdp")
    if f and "skipped" not in f:
        runs = ", ".join(f"{m} {f[m]['s']:.0f} s" for m in ("full", "lora", "ddp") if m in f)
        notes.append(
            f"FSDP2 and DDP: `accelerate launch --num_processes 2` on {f['gpus']} GPUs through train.launcher = "
            f'"accelerate", tiny student to one train_done with trained outputs, FSDP1 refused ({runs})'
        )
    else:
        notes.append(f"FSDP, two processes: not run ({(f or {}).get('skipped', 'part did not finish')})")
    where = ""
    if setup:  # "model llama-1b, full, bf16, batch 8 pairs, 10 timed steps (...) after 2 warm-up, on GPU"
        m = re.search(r"(?:lora|full), (\w+), (batch \d+ pairs), (\d+ timed steps).* on (.+)$", setup)
        where = f" ({m.group(4)}, {m.group(1)}, {m.group(2)}, {m.group(3)})" if m else f" ({setup})"
    target = f"full fine-tuning MFU >= {MFU_TARGET:.0f}%, memory_ratio <= {MEMORY_RATIO_TARGET}; < 8 min"
    print("==== summary for docs/benchmarks.md")
    what = "tiny model (--tiny)" if tiny else "Llama-3.2-1B shape, random weights"
    print(
        f"| `gpu_check.sh` | {what}{where}: ours vs the padded layout | "
        f"{'; '.join(figures)}; whole check {seconds // 60} min {seconds % 60} s | {target} |"
    )
    print()
    if tiny:
        verdict = "targets not checked (--tiny: a CPU smoke test)"
    elif missed:
        verdict = "TARGETS MISSED: " + "; ".join(missed)
    elif crashed or len(figures) < 2 or any(f.endswith("not run") for f in figures):
        verdict = "targets not all checked: a throughput part did not finish"
    else:
        verdict = "targets met"
    print(f"- gpu_check: {verdict}")
    for note in notes:
        print(f"- gpu_check: {note}")
    print("====")
    return 0


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "targets":
        return targets(Path(args[0]), args[1], int(args[2]), "--tiny" in args[3:])
    if cmd == "vllm":
        return vllm_part(Path(args[0]))
    if cmd == "fsdp":
        return fsdp_part(Path(args[0]))
    if cmd == "summary":
        return summary(Path(args[0]), int(args[1]))
    raise SystemExit(f"unknown part {cmd!r}: targets, vllm, fsdp or summary")


if __name__ == "__main__":  # vLLM may start its engine by spawning: nothing may run on import
    sys.exit(main(sys.argv[1:]))
