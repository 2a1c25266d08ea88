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
    """The folder the trainer fine-tunes: aliases such as "smollm2" resolved, a hub model
    downloaded into the hub cache (a GGUF file stays as named: the trainer reads it itself)."""
    from .hf import hub_folder, resolve_model

    source, gguf, local = resolve_model(config)
    if gguf:
        return config.model
    return source if local else str(hub_folder(source))


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
