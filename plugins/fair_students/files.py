"""Where a student's model is: a hub id, a local folder, a GGUF file or an alias, each checked
before anything loads (a wrong one fails in a second, with what to do), and a hub model fetched
into the hub cache once.

Inference (:mod:`.hf`, :mod:`.vllm`) and the trainer's folder (``local_path``) start here; GGUF
conversion (:mod:`.gguf`) and the smollm2 alias (:mod:`.smollm2`) lie below it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from fair_core.config import StudentConfig
from fair_core.errors import FairError

from .gguf import unreadable


def _looks_like_path(model: str) -> bool:
    # A hub id is "name" or "org/name"; anything else with a separator, a leading dot or
    # tilde, or a .gguf suffix is meant as a local path and must never go to the hub.
    return model.startswith((".", "~", os.sep)) or model.count("/") > 1 or "\\" in model or model.endswith(".gguf")


def resolve_model(config: StudentConfig) -> tuple[str, str | None, bool]:
    """(source, gguf file name or None, is local) for ``config.model``; alias "smollm2" included."""
    model = config.model.strip()
    if not model:
        raise FairError("student.model is empty: set it to a hub id, a local folder, a .gguf file or 'smollm2'")
    if model == "smollm2":
        from .smollm2 import smollm2_path

        return str(smollm2_path()), None, True
    path = Path(model).expanduser()
    if path.exists() or _looks_like_path(model):
        if not path.exists():
            raise FairError(f"student model {model} not found: no such file or folder")
        if path.is_file():
            if path.suffix != ".gguf":
                raise FairError(f"student model {model} is a file but not a .gguf: name a model folder or a .gguf file")
            return str(path.parent), path.name, True
        if config.gguf_file:
            if not (path / config.gguf_file).is_file():
                raise FairError(f"student model {model} not found: no {config.gguf_file} in it")
        else:
            check_folder(path, model)
        return str(path), config.gguf_file, True
    check_hub(model, config.gguf_file or "config.json")
    return model, config.gguf_file, False


# What a folder written by save_pretrained holds, by the globs that find it.
MODEL_PARTS = {
    "config.json": ("config.json",),
    "tokenizer files": ("tokenizer.json", "tokenizer.model", "*.model", "vocab.json", "vocab.txt"),
    "weights (*.safetensors or pytorch_model*.bin)": ("*.safetensors", "pytorch_model*.bin"),
}


def check_folder(path: Path, model: str) -> None:
    """A local student folder must hold a whole model: say what is missing before loading it."""
    missing = [part for part, globs in MODEL_PARTS.items() if not any(any(path.glob(g)) for g in globs)]
    if missing:
        raise FairError(
            f"student model {model} is not a complete model folder: no {', no '.join(missing)} "
            f"in it; name a folder written by save_pretrained"
        )


# What a transformers model needs from a hub repo: config, tokenizer, weights (not the ONNX,
# GGUF or other copies that some repos carry as well).
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]
HUB_SKIP = ["consolidated*", "original/*"]  # the same weights in the authors' own format


@cache  # one hub request per process, not one per round and stage
def from_hub(model_id: str, filename: str | None = None) -> Path:
    """A hub model's copy in the hub cache, downloaded once: its GGUF ``filename``, or else the
    folder of what a transformers model needs. The trainer reads local files only."""
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if filename:
            return Path(hf_hub_download(model_id, filename))
        path = Path(snapshot_download(model_id, allow_patterns=HUB_FILES, ignore_patterns=HUB_SKIP))
        if not any(path.glob("*.safetensors")):  # an older repo: PyTorch pickles only
            path = Path(
                snapshot_download(model_id, allow_patterns=[*HUB_FILES, "pytorch_model*.bin"], ignore_patterns=HUB_SKIP)
            )
    except Exception as e:  # noqa: BLE001 - network or disk: the library's first line says which
        raise FairError(f"student model {model_id} could not be downloaded: {unreadable(e)}") from None
    check_folder(path, model_id)
    return path


@cache
def check_hub(model_id: str, filename: str = "config.json") -> None:
    """A hub id must be in the local cache or on a reachable hub: a wrong one fails in a second,
    not after a minute of download retries."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(model_id, filename), str):
        return
    where = f"student model {model_id} is not a local folder and not in the hub cache"
    if constants.HF_HUB_OFFLINE:
        raise FairError(f"{where}, and HF_HUB_OFFLINE is set: download it while online, or name a local folder")
    try:
        model_info(model_id, timeout=10)
    except GatedRepoError:
        raise FairError(f"{where}, and it is gated: accept its terms on the hub, then `hf auth login`") from None
    except RepositoryNotFoundError:
        raise FairError(f"{where}, and the hub has no such model: check the name (org/name)") from None
    except HfHubHTTPError:
        return  # the hub answered with something else: let the download say what
    except Exception as e:  # noqa: BLE001 - no answer at all: refused, name not resolved, timeout
        raise FairError(
            f"{where}, and the hub cannot be reached ({type(e).__name__}): download it "
            f"while online, or name a local folder"
        ) from None
