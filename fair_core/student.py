"""The student contract: a model that answers prompts in batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

from .errors import DataError, FairError
from .inputs import read_json

Progress = Callable[[int], None]  # called with the number of prompts just finished
Stop = Callable[[], bool]  # polled while generating: True ends generation early


def prompt_ids(tokenizer, prompt: str, chat_template: bool) -> list[int]:
    """The token ids a student sees for one prompt: chat-templated when asked and available,
    else plain. Generation and training both call this, so the student is trained in exactly
    the format it is prompted in."""
    if chat_template and tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def adapter_config(adapter: str | Path) -> dict:
    """A LoRA adapter folder's peft settings: what the trainer, hf and vLLM all check first."""
    path = Path(adapter) / "adapter_config.json"
    try:
        settings = read_json(path) if path.is_file() else None  # untrusted: a folder from anywhere
        reason = "no adapter_config.json in it" if settings is None else "its adapter_config.json is no JSON object"
    except DataError as e:
        settings, reason = None, str(e)
    if isinstance(settings, dict):
        return settings
    raise FairError(
        f"adapter {adapter} is not a LoRA adapter folder ({reason}): pass a folder that "
        f"peft saved, such as a run's rounds/N/adapter"
    )


def with_adapter(model, adapter: str | Path, trainable: bool = False):
    """``model`` with the LoRA adapter folder ``adapter`` on it (a peft ``PeftModel``), as every
    loader of a round's adapter puts it there; a damaged one (its weights cut short by a copy or a
    full disk, saved for another model) is one FairError that names it."""
    from peft import PeftModel

    adapter_config(adapter)
    fix = "train its round again, or pass another adapter"
    if not any((Path(adapter) / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise FairError(f"adapter {adapter} has no weights (no adapter_model.safetensors in it): {fix}")
    try:
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    except Exception as e:  # noqa: BLE001 - safetensors', torch's and peft's errors: the same fix
        why = (str(e).strip().splitlines() or [""])[0][:160]
        raise FairError(
            f"adapter {adapter} could not be loaded ({type(e).__name__}: {why}): it is damaged or was saved "
            f"for another model; {fix}"
        ) from None


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a hub repo id (owner/name) rather than a local path."""
    return name.count("/") == 1 and not name.startswith((".", "~", "/"))


def local_adapter(ref: str) -> str:
    """A LoRA adapter as a local folder: ``ref`` when it is one (or reads as a path), else the hub
    repo ``ref`` fetched into the hub cache once (offline, read from there)."""
    if Path(ref).expanduser().exists() or not is_hub_id(ref):
        return str(Path(ref).expanduser())
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(ref)
    except Exception as e:  # noqa: BLE001 - offline, unknown repo, network: the first line says which
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise FairError(
            f"adapter {ref} is not a local folder, and the hub repo {ref} could not be fetched "
            f"({type(e).__name__}: {why}): check the id, or pass a folder"
        ) from None


def model_folder(host, student) -> str:
    """The folder a student backend loads and trains (``local_path``: an alias resolved, a hub
    model in the hub cache, a GGUF converted once); ``student.model`` for backends without one."""
    entry = host.registry["students"][student.backend]
    return str(entry.meta.get("local_path", lambda c: c.model)(student))


def load(host, config, source: tuple[str, str | None]) -> Student:
    """The model of ``source`` (base model folder, LoRA adapter or None), loaded by the backend
    ``config`` (a StudentConfig) names, with ``config``'s generation settings."""
    base, adapter = source
    return host.get("students", config.backend)(config.model_copy(update={"model": base}), adapter=adapter)


class Student(ABC):
    """A loaded student model. Backends come from plugins (``register_students``)."""

    @abstractmethod
    def generate(self, prompts: list[str], on_progress: Progress | None = None, stop: Stop | None = None) -> list[str]:
        """One completion per prompt, in the prompts' order. ``prompts`` are raw user messages;
        the backend applies the chat template (or the paper's plain prompt) itself. Once
        ``stop()`` is true (the run was interrupted) the backend may end early and return
        incomplete answers, which the caller discards: it polls ``stop`` as often as it can."""

    def score(self, pairs: list[tuple[str, str]], on_progress: Progress | None = None) -> list[float]:
        """Teacher-forced: the mean log-probability per token of each response (its tokens and
        the end of text) after its prompt, encoded as training encodes a pair. No generation."""
        raise FairError(f'the {type(self).__name__} student backend cannot score texts: use student.backend = "hf"')

    def close(self) -> None:
        """Free the model's memory."""
