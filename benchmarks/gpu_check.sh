#!/usr/bin/env bash
# One prepared GPU check of the student trainer, for a lent H100/H200: under 8 minutes, no
# downloads (models are built from configs with random weights, data is synthetic).
#
#   make gpu-wheels                       # here, once: the wheels the GPU machine's Python lacks
#   bash benchmarks/gpu_check.sh          # on the GPU machine (a device run carrying .gpu-wheels)
#   bash benchmarks/gpu_check.sh --tiny   # CPU smoke test of this script, tiny models
#
# 0. environment: the GPU machine's own python3 (torch, transformers, peft, accelerate), with
#    the wheels in .gpu-wheels installed where there is such a folder (pydantic, which its image
#    lacks); without a GPU, transformers 5 or an importable trainer it stops at once and says so;
# 1. throughput: a Llama-3.2-1B-shaped model, LoRA then full fine-tuning, our trainer's step
#    against the paper's padded layout: real tokens/s, MFU, peak and step memory, speedup;
#    after each, the targets (memory_ratio <= 0.6 for both, MFU >= 40% for full fine-tuning;
#    not with --tiny): a miss prints "TARGET MISSED: ..." and does not fail the check;
# 2. end to end: `python -m fair_core.training` on a tiny student (bf16 autocast, probe,
#    LoRA + merge), SIGKILL after the first checkpoint, rerun resumes to the same step count;
#    QLoRA too when bitsandbytes is installed;
# 3. the "vllm" student backend against "hf" on a tiny local model: greedy answers, time,
#    agreement (skipped where vllm is not installed);
# 4. two processes under `accelerate launch` with FSDP through train.launcher = "accelerate"
#    (skipped unless two GPUs are visible);
# 5. a summary of the figures, to paste into docs/benchmarks.md.
# The parts in Python live in benchmarks/gpu_parts.py. Every part's time limit is cut to what is
# left of the 8-minute budget (less the summary's share); optional parts (3, 4) are skipped once
# the time left cannot hold them, and one that runs out of time is reported unfinished, not failed.
# Prints "GPU CHECK OK" at the end when every part passed (a missed target is no failure).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
TINY=""
[ "${1:-}" = "--tiny" ] && TINY="--tiny"
export PYTHONPATH="$PWD:$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=0

BUDGET=450  # seconds for the whole check on the GPU machine (8 minutes, less a margin)
[ -n "$TINY" ] && BUDGET=1800  # a CPU is slower; the smoke test has no budget to keep
RESERVE=20  # kept back for the summary
LOG="$WORK/part.log"
rc=0

run_part() {  # run_part TITLE LIMIT OPTIONAL CMD...: run with a time limit (output also in $LOG,
  local title=$1 limit=$2 optional=$3; shift 3  # exit status in $rc); remember a failure, go on
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" 2>&1 | tee "$LOG"
  rc=${PIPESTATUS[0]}
  if [ "$rc" = 0 ]; then echo "-- ok ($((SECONDS - t0)) s)"
  elif { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && [ "$optional" = 1 ]; then
    echo "-- unfinished: $title ran out of its $limit s"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "!! FAILED: $title (timed out after $limit s)"; failed=1
  else echo "!! FAILED: $title (exit $rc)"; failed=1; fi
}

left() { echo $((BUDGET - RESERVE - SECONDS)); }

part() {  # part TITLE SECONDS CMD...: its limit cut to the budget left; not run when none is
  local title=$1 limit=$2; shift 2
  echo "== $title"
  if [ "$(left)" -lt 10 ]; then echo "!! FAILED: $title (not run: the budget is spent)"; rc=1; failed=1; return; fi
  [ "$(left)" -lt "$limit" ] && limit=$(left)
  run_part "$title" "$limit" 0 "$@"
}

optional() {  # optional TITLE SECONDS NEEDED CMD...: the same, or skipped when fewer than NEEDED
  local title=$1 limit=$2 needed=$3; shift 3  # seconds are left
  echo "== $title"
  if [ "$(left)" -lt "$needed" ]; then
    echo "-- skipped: $(left) s of the ${BUDGET}-second budget left, it needs about $needed"; return
  fi
  [ "$(left)" -lt "$limit" ] && limit=$(left)
  run_part "$title" "$limit" 1 "$@"
}

targets() {  # targets NAME: check the throughput part just run against the targets
  "$PY" benchmarks/gpu_parts.py targets "$LOG" "$1" "$rc" $TINY || failed=1
}

if [ -d .gpu-wheels ]; then  # packages the GPU machine's image lacks, carried as wheels
  "$PY" -m pip install -q --no-index --find-links .gpu-wheels pydantic 2>&1 | tail -3
fi
part "environment" 60 "$PY" - "$TINY" <<'EOF'
import importlib.util, sys
import torch, transformers, peft, accelerate
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__,
      "accelerate", accelerate.__version__)
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
print("bitsandbytes", bool(importlib.util.find_spec("bitsandbytes")), "flash_attn", bool(importlib.util.find_spec("flash_attn")),
      "vllm", bool(importlib.util.find_spec("vllm")), "GPUs visible", torch.cuda.device_count())
problems = []
if sys.argv[1:] != ["--tiny"] and not torch.cuda.is_available():
    problems.append("no GPU is visible to torch (a CPU build?): run this on the GPU machine, or pass --tiny")
if int(transformers.__version__.split(".")[0]) < 5:
    problems.append(f"transformers {transformers.__version__} is older than 5, which the trainer needs")
try:
    import fair_core.training.trainer  # noqa: F401
except ImportError as e:
    problems.append(f"the trainer cannot be imported ({e}): run `make gpu-wheels` here and carry .gpu-wheels")
for problem in problems:
    print("!!", problem)
sys.exit(1 if problems else 0)
EOF
if [ "$rc" != 0 ]; then echo "GPU CHECK FAILED (this machine cannot run it)"; exit 1; fi

cat > "$WORK/e2e.py" <<'EOF'
"""Train a tiny student through the real entry point: LoRA + merge, kill and resume, QLoRA."""
import importlib.util, json, signal, subprocess, sys, time
from pathlib import Path

import torch
from fair_core.testing.tiny import make_tiny_student
from fair_core.training import command

work = Path(sys.argv[1])
tiny = make_tiny_student(work / "tiny")


def make_run(name, train):
    run = work / name
    (run / "rounds" / "0").mkdir(parents=True)
    pairs = []
    for i in range(40):
        a, b = 3 * i + 7, 2 * i + 5
        q = f"Tom has {a} apples and buys {b} more. How many apples does he have?"
        pairs.append({"item_id": str(i),
                      "feedback": {"prompt": f"Question: {q}\nStudent's answer: {a - b}\nPoint out the mistakes.",
                                   "response": f"The student subtracted instead of adding. {a} + {b} = {a + b}."},
                      "rationale": {"prompt": f"Question: {q}\nLet's think step by step.",
                                    "response": f"He has {a} apples and buys {b}, so {a} + {b} = {a + b}. "
                                                f"The answer is {a + b}."}})
    (run / "rounds" / "0" / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (run / "config.toml").write_text("[train]\n" + train + "\n")
    return run


def done_line(run):
    lines = (run / "rounds" / "0" / "progress.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


# LoRA + merge, killed after its first checkpoint, then resumed
run = make_run("lora", "batch_size = 4\nepochs = 6\nsave_steps = 5")
proc = subprocess.Popen(command(run, 0, tiny, merge=True))
ckpt = run / "rounds" / "0" / "checkpoints" / "step-5"
deadline = time.monotonic() + 120
while not ckpt.is_dir() and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.01)
proc.send_signal(signal.SIGKILL)
proc.wait()
subprocess.run(command(run, 0, tiny, merge=True), check=True)
done = done_line(run)
print("lora:", {k: done[k] for k in ("step", "max_steps", "resumed_from", "loss", "tokens_per_second",
                                       "memory_mb", "packed", "sliced_head")})
assert done["type"] == "train_done" and done["step"] == done["max_steps"] == 60, done
assert done["resumed_from"] >= 5 and done["packed"] and done["sliced_head"], done
for folder in ("adapter", "merged"):
    assert (run / "rounds" / "0" / folder).is_dir(), folder

# full fine-tuning with gradient checkpointing
run = make_run("full", 'method = "full"\nbatch_size = 4\nmax_steps = 6\ngradient_checkpointing = true')
subprocess.run(command(run, 0, tiny), check=True)
print("full:", done_line(run)["loss"])
assert (run / "rounds" / "0" / "model" / "config.json").is_file()

if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes"):
    run = make_run("qlora", 'method = "qlora"\nbatch_size = 4\nmax_steps = 6')
    subprocess.run(command(run, 0, tiny, merge=True), check=True)
    print("qlora:", done_line(run)["loss"])
else:
    print("qlora: skipped (needs CUDA and bitsandbytes)")
EOF

if [ -n "$TINY" ]; then
  part "throughput, LoRA (tiny)" 120 "$PY" benchmarks/train.py --tiny --method lora
  targets lora
  part "throughput, full fine-tuning (tiny)" 120 "$PY" benchmarks/train.py --tiny --method full
  targets full
else
  BENCH=(benchmarks/train.py --arch llama-1b --steps 10 --warmup 2)
  part "throughput, Llama-1B shape, LoRA" 150 "$PY" "${BENCH[@]}" --method lora
  targets lora
  part "throughput, Llama-1B shape, full fine-tuning" 180 "$PY" "${BENCH[@]}" --method full
  targets full
fi
part "end to end: python -m fair_core.training" 150 "$PY" "$WORK/e2e.py" "$WORK"

# vLLM's first start compiles and captures CUDA graphs (about a minute); FSDP starts two processes
optional "vLLM student against hf (tiny local model)" 180 100 "$PY" benchmarks/gpu_parts.py vllm "$WORK"
optional "FSDP2, two processes (accelerate launch): whole outputs, FSDP1 refused" 150 75 "$PY" benchmarks/gpu_parts.py fsdp "$WORK"

"$PY" benchmarks/gpu_parts.py summary "$WORK" "$SECONDS" || failed=1
if [ "$failed" = 0 ]; then echo "GPU CHECK OK"; else echo "GPU CHECK FAILED"; fi
exit "$failed"
