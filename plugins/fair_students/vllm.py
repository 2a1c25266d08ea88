"""A student served by vLLM's offline engine, for fast examination on a GPU.

Select it with ``student.backend = "vllm"`` once ``pip install vllm`` has run; everything else
in the student config means what it means for the "hf" backend. A LoRA adapter is applied per
request (vLLM's ``LoRARequest``), so the base weights stay shared between rounds. vLLM schedules
its own batches; prompts are handed over in chunks only so that progress can be reported.
"""

from __future__ import annotations

from pathlib import Path

from fair_core.config import StudentConfig
from fair_core.errors import FairError
from fair_core.student import Progress, Stop, Student, adapter_config, prompt_ids

from .files import resolve_model
from .hf import DTYPES

CHUNK = 256  # prompts per progress report; large enough that vLLM's scheduler stays full


def lora_rank(adapter: Path) -> int:
    """The rank vLLM must reserve for ``adapter``: its ``r`` rounded up to a rank vLLM offers
    (powers of two from 8); vLLM's default (16) would refuse a larger adapter."""
    try:
        r = int(adapter_config(adapter)["r"])
    except (KeyError, TypeError, ValueError):
        raise FairError(
            f"adapter {adapter} has no LoRA rank (r) in adapter_config.json: pass a folder that peft saved"
        ) from None
    return max(8, 1 << (r - 1).bit_length())


def token_prompts(tokenizer, prompts: list[str], chat_template: bool) -> list[dict]:
    """``prompts`` as vLLM token prompts, encoded exactly as training encodes them. Text would be
    tokenized again by vLLM with the special tokens added, a second BOS after the one that Llama's
    and Mistral's chat templates already write."""
    return [{"prompt_token_ids": prompt_ids(tokenizer, p, chat_template)} for p in prompts]


class VLLMStudent(Student):
    def __init__(self, config: StudentConfig, adapter: str | Path | None = None):
        try:
            from vllm import LLM
        except ImportError:
            raise FairError('student.backend "vllm" needs vLLM: pip install vllm, or use backend "hf"') from None
        if config.device not in ("auto", "cuda"):
            raise FairError(
                f'student.backend "vllm" runs on a GPU: set student.device to "auto" (got {config.device!r})'
            )
        if config.dtype != "auto" and config.dtype not in DTYPES:
            raise FairError(f"student.dtype {config.dtype!r} is unknown: use auto, fp32, bf16 or fp16")
        self.config = config
        source, gguf, _ = resolve_model(config)
        model = str(Path(source) / gguf) if gguf else source
        lora = {} if adapter is None else {"enable_lora": True, "max_lora_rank": lora_rank(Path(adapter))}
        self.llm = LLM(model=model, tokenizer=source, dtype=DTYPES.get(config.dtype, "auto"), **lora)
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("student", 1, str(adapter))
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[str], on_progress: Progress | None = None, stop: Stop | None = None) -> list[str]:
        from vllm import SamplingParams

        c = self.config
        if c.sampling:
            params = SamplingParams(temperature=c.temperature, top_p=c.top_p, max_tokens=c.max_new_tokens)
        else:
            params = SamplingParams(temperature=0.0, max_tokens=c.max_new_tokens)
        answers: list[str] = []
        for start in range(0, len(prompts), CHUNK):
            if stop is not None and stop():  # between chunks: vLLM's engine is not interrupted mid-way
                break
            chunk = token_prompts(self.tokenizer, prompts[start : start + CHUNK], c.chat_template)
            outputs = self.llm.generate(chunk, params, lora_request=self.lora, use_tqdm=False)
            answers += [o.outputs[0].text.strip() for o in outputs]
            if on_progress:
                on_progress(len(chunk))
        return answers

    def close(self) -> None:
        """Give the GPU back before training: vLLM reserves most of its memory up front, and
        its engine process ends only once the last reference to it is collected."""
        import gc

        import torch

        self.llm = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
