"""The student contract: a model that answers prompts in batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

Progress = Callable[[int], None]  # called with the number of prompts just finished


def prompt_ids(tokenizer, prompt: str, chat_template: bool) -> list[int]:
    """The token ids a student sees for one prompt: chat-templated when asked and available,
    else plain. Generation and training both call this, so the student is trained in exactly
    the format it is prompted in."""
    if chat_template and tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


class Student(ABC):
    """A loaded student model. Backends come from plugins (``register_students``)."""

    @abstractmethod
    def generate(self, prompts: list[str], on_progress: Progress | None = None) -> list[str]:
        """One completion per prompt, in the prompts' order. ``prompts`` are raw user messages;
        the backend applies the chat template (or the paper's plain prompt) itself."""

    def close(self) -> None:
        """Free the model's memory."""
