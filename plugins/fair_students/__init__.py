"""Built-in student backends: "hf" (transformers), "vllm" (where installed), and "auto" (the
default): vLLM where it is installed and a GPU is visible, transformers everywhere else.

The factories import their module only when called, so loading the plugin stays free of torch.
"""

import importlib.util

from fair_core.hookspecs import hookimpl


def _hf(config, **kwargs):
    from .hf import HFStudent

    return HFStudent(config, **kwargs)


def _local_path(config) -> str:
    """The folder the trainer fine-tunes and a run's examination loads: aliases such as "smollm2"
    resolved, a hub model downloaded into the hub cache, a GGUF file converted once."""
    from pathlib import Path

    from .files import from_hub, resolve_model
    from .gguf import gguf_folder

    source, gguf, local = resolve_model(config)
    if gguf:
        return str(gguf_folder(Path(source) / gguf if local else from_hub(source, gguf)))
    return source if local else str(from_hub(source))


def _vllm(config, **kwargs):
    from .vllm import VLLMStudent

    return VLLMStudent(config, **kwargs)


def _auto(config, **kwargs):
    if importlib.util.find_spec("vllm") is not None and config.device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return _vllm(config, **kwargs)
    return _hf(config, **kwargs)


@hookimpl
def register_students(register):
    register("auto", _auto, local_path=_local_path)
    register("hf", _hf, local_path=_local_path)
    register("vllm", _vllm, local_path=_local_path)
