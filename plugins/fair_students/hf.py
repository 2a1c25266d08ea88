"""The default student backend: a transformers causal LM, generating in left-padded batches.

Prompts are sorted by token length before batching so a batch carries little padding, and a
batch is generated a chunk of tokens at a time, the rows that have ended leaving it between
chunks, its KV cache growing into room it keeps (:mod:`.kv_cache`); answers come back in the
caller's order. The tokens every prompt starts with (chat template, system prompt, instruction)
run through the model once per call and their KV cache is copied into each batch, so a batch's
prefill runs only on each prompt's own tokens: a batch is laid out as shared prefix, left
padding, own tokens.
"""

from __future__ import annotations

import copy
import gc
import inspect
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from fair_core.config import StudentConfig
from fair_core.errors import FairError
from fair_core.student import Progress, Stop, Student, prompt_ids, with_adapter

from .files import resolve_model
from .gguf import dequantize_kwargs, unreadable
from .kv_cache import roomy

logger = logging.getLogger(__name__)

DTYPES = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
}


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def pick_dtype(name: str, device: str):
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in DTYPES:
        raise FairError(f"student.dtype {name!r} is unknown: use auto, fp32, bf16 or fp16")
    return getattr(torch, DTYPES[name])


# New tokens per ``generate`` call: between calls, the rows that have ended leave the batch.
CHUNK = 16


def stop_when(stop: Stop):
    """Transformers stopping criteria that end every row of a batch once ``stop()`` is true, so
    an interrupted run does not wait for a batch to finish its tokens."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhen(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), stop(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhen()])


SCORE_TOKENS = 4096  # tokens in one scoring forward pass, as packed (shared prompts once)
SCORE_MAX_LENGTH = 4096  # a scored text's prompt is cut from the left past this many tokens, as training cuts


class HFStudent(Student):
    """A transformers model (hub id, local folder or GGUF file), optionally with a LoRA adapter."""

    def __init__(self, config: StudentConfig, adapter: str | Path | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        source, gguf, local = resolve_model(config)
        self.device = pick_device(config.device)
        extra: dict[str, Any] = {"local_files_only": True} if local else {}
        if gguf:
            extra["gguf_file"] = gguf
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=pick_dtype(config.dtype, self.device), **extra, **(dequantize_kwargs() if gguf else {})
            )
        except Exception as e:  # noqa: BLE001 - a corrupt, truncated or mismatched file: the library says which
            raise FairError(f"student model {config.model} could not be loaded: {unreadable(e)}") from None
        if adapter is not None:
            # merged into the weights: generation then costs what the base model costs
            model = with_adapter(model, adapter).merge_and_unload()
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]  # transformers types .to() as unbound
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.use_template = bool(config.chat_template and self.tokenizer.chat_template)

    def encode(self, prompt: str) -> list[int]:
        """The token ids the model sees for one prompt: chat-templated or plain."""
        return prompt_ids(self.tokenizer, prompt, self.use_template)

    def _generation_kwargs(self) -> dict:
        c = self.config
        kwargs = {"max_new_tokens": c.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if c.sampling:
            return {**kwargs, "do_sample": True, "temperature": c.temperature, "top_p": c.top_p, "top_k": 0}
        return {**kwargs, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}

    def generate(self, prompts: list[str], on_progress: Progress | None = None, stop: Stop | None = None) -> list[str]:
        import torch

        encoded = self._within_context([self.encode(p) for p in prompts])
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        answers: list[str] = [""] * len(prompts)
        pad = self.tokenizer.pad_token_id
        kwargs = self._generation_kwargs()
        if stop is not None:
            kwargs["stopping_criteria"] = stop_when(stop)
        size = self.config.batch_size
        with torch.inference_mode():
            prefix, cached = self._prefix(encoded)
            for start in range(0, len(order), size):
                if stop is not None and stop():
                    break
                batch = order[start : start + size]
                own = [encoded[i][len(prefix) :] for i in batch]
                width = max(map(len, own))
                ids = torch.tensor([prefix + [pad] * (width - len(o)) + o for o in own], device=self.device)
                mask = torch.tensor(
                    [[1] * len(prefix) + [0] * (width - len(o)) + [1] * len(o) for o in own], device=self.device
                )
                cache = None
                if cached is not None:
                    cache = roomy(copy.deepcopy(cached))
                    cache.batch_repeat_interleave(len(batch))
                texts = self.tokenizer.batch_decode(self._decode(ids, mask, cache, kwargs), skip_special_tokens=True)
                for i, text in zip(batch, texts):
                    answers[i] = text.strip()
                if on_progress:
                    on_progress(len(batch))
        return answers

    def _within_context(self, encoded: list[list[int]]) -> list[list[int]]:
        """Prompts cut from the left to what the model's positions leave beside the new tokens, as
        training cuts them (the end holds the question and the turn marker): a long passage in a
        user's data would otherwise run past the positions the model knows (a model with learned
        positions fails outright) and make attention's memory grow with its square."""
        positions = self._positions
        if not positions:
            return encoded
        keep = max(1, positions - self.config.max_new_tokens)
        cut = sum(len(e) > keep for e in encoded)
        if cut:
            logger.warning(
                "%d prompt(s) longer than the %d tokens the model's %d positions leave beside %d new tokens: "
                "each keeps its last %d",
                cut,
                keep,
                positions,
                self.config.max_new_tokens,
                keep,
            )
        return [e[-keep:] for e in encoded]

    def _decode(self, ids, mask, cache, kwargs) -> list:
        """Each row's new tokens, generated ``CHUNK`` at a time: the rows that have ended leave the
        batch between chunks (with their cache rows), so the batch shrinks instead of decoding padding."""
        import torch

        config = self.model.generation_config
        eos = torch.tensor([] if config.eos_token_id is None else config.eos_token_id, device=self.device).reshape(-1)
        width, left = ids.shape[1], kwargs["max_new_tokens"]
        chunk = CHUNK if config.cache_implementation is None else left  # a cache of its own kind: one go
        rows, done = torch.arange(len(ids)), [None] * len(ids)
        while True:
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                **{**kwargs, "max_new_tokens": min(chunk, left), self._cache_arg: cache},
                return_dict_in_generate=True,
            )
            seqs, cache = out.sequences, roomy(out[self._cache_arg])  # later chunks write in place
            left -= seqs.shape[1] - ids.shape[1]
            ended = torch.isin(seqs[:, ids.shape[1] :], eos).any(1)
            if left <= 0 or seqs.shape[1] - ids.shape[1] < chunk:  # out of tokens, or stopped
                ended[:] = True
            for row, seq in zip(rows[ended].tolist(), seqs[ended]):
                done[row] = seq[width:]
            if ended.all():
                return done
            mask = torch.cat([mask, mask.new_ones(len(mask), seqs.shape[1] - mask.shape[1])], 1)
            ids = seqs
            if ended.any():
                keep = (~ended).nonzero()[:, 0]
                mask, ids, rows = mask[keep], seqs[keep], rows[keep.cpu()]
                cache.batch_select_indices(keep)

    def score(self, pairs: list[tuple[str, str]], on_progress: Progress | None = None) -> list[float]:
        from fair_core.training.data import Encoder  # the tokens training sees for a pair
        from fair_core.training.score import mean_logprobs  # and the way a training step reads them

        encoder = Encoder(
            self.tokenizer,
            self.config.chat_template,
            max_length=min(SCORE_MAX_LENGTH, self._positions or SCORE_MAX_LENGTH),
        )
        encoded = [encoder(prompt, response) for prompt, response in pairs]
        return mean_logprobs(self.model, encoded, SCORE_TOKENS, on_progress)

    @property
    def _positions(self) -> int:
        """How many tokens the model can see in one sequence (0: no limit it states)."""
        return getattr(self.model.config, "max_position_embeddings", None) or 0

    @cached_property
    def _cache_arg(self) -> str:
        """Transformers 5 renamed the forward's and generate's ``past_key_values`` to ``cache``."""
        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _prefix(self, encoded: list[list[int]]):
        """(the token ids every prompt starts with, their KV cache for one row, or None).

        Each prompt keeps at least one token of its own, since its first new token is predicted
        from its last; a model whose generation config asks for its own cache kind gets no prefix.
        """
        shared = min(len(os.path.commonprefix(encoded)), min(map(len, encoded)) - 1) if encoded else 0
        if shared < 1 or self.model.generation_config.cache_implementation is not None:
            return [], None
        import torch

        prefix = encoded[0][:shared]
        out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
        return prefix, out[self._cache_arg]

    def close(self) -> None:
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
