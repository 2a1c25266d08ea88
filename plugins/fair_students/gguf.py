"""GGUF students as plain transformers folders, converted once into the user cache.

The trainer, vLLM and every later load read a normal folder; transformers dequantizes the GGUF
once. Dequantized values (an fp16 scale times a small integer, plus an fp16 offset) are exact in
fp32, which small models keep; models of 2B parameters and more are saved in bf16, halving the
disk they take for a rounding far below what their quantization already cost.

Reading a model file with transformers, whatever its kind, shares two helpers kept here, at the
bottom of the package (:mod:`.files` and :mod:`.hf` import them): the dense-GGUF arguments and
a loading error as one line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from fair_core.errors import FairError

FILES = ("config.json", "model.safetensors", "tokenizer.json")
LARGE = 2_000_000_000  # parameters from which the folder is saved in bf16

logger = logging.getLogger(__name__)


def unreadable(e: Exception) -> str:
    """A library's loading error as a few words for one line: its type and first line."""
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def dequantize_kwargs() -> dict:
    """Ask transformers for a plain dense model from a GGUF file.

    Newer transformers keep GGUF weights packed by default, which can be neither saved nor
    merged with an adapter; older ones always dequantize and have no ``GgufConfig``.
    """
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def cache_dir() -> Path:
    """$FAIR_CACHE_DIR, else $XDG_CACHE_HOME/fair, else ~/.cache/fair."""
    if os.environ.get("FAIR_CACHE_DIR"):
        return Path(os.environ["FAIR_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fair"


def converted(target: Path) -> bool:
    return all((target / f).is_file() for f in FILES)


def convert(gguf: Path, target: Path) -> Path:
    """Dequantize ``gguf`` into a transformers folder at ``target``, built in a temporary folder
    beside it and renamed into place: a crash leaves nothing half-written."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    logger.info("converting %s into a transformers folder, once", gguf.name)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype="float32", **dequantize_kwargs()
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as e:  # noqa: BLE001 - a corrupt file or an architecture transformers cannot read
        raise FairError(f"student model {gguf} could not be read as a GGUF model: {unreadable(e)}") from None
    if model.num_parameters() >= LARGE:
        model = model.to(torch.bfloat16)  # type: ignore[arg-type]  # transformers types .to() as unbound
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        out = Path(tmp) / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if converted(target):  # another process converted the same file meanwhile
            return target
        if target.exists():  # an incomplete leftover
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(out, target)
        except OSError:
            if not converted(target):  # not a concurrent conversion's finished folder
                raise
    logger.info("saved %s in %.0f s", target, time.monotonic() - start)
    return target


def gguf_folder(gguf: Path) -> Path:
    """The converted folder of a local GGUF file; a changed file (size or time) converts anew."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "gguf" / f"{gguf.stem}-{key}"
    return target if converted(target) else convert(gguf, target)
