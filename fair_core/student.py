"""The student contract: a model that answers prompts in batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

Progress = Callable[[int], None]  # called with the number of prompts just finished


class Student(ABC):
    """A loaded student model. Backends come from plugins (``register_students``)."""

    @abstractmethod
    def generate(self, prompts: list[str], on_progress: Progress | None = None) -> list[str]:
        """One completion per prompt, in the prompts' order. ``prompts`` are raw user messages;
        the backend applies the chat template (or the paper's plain prompt) itself."""

    def close(self) -> None:
        """Free the model's memory."""
