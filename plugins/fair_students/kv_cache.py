"""A decoding KV cache that grows into room it keeps, rather than by concatenation.

transformers' ``DynamicLayer`` concatenates each new token's keys and values onto the whole
cache, so decoding copies every row's cache once per token: 19% of a batched examination's
time on a CPU. :class:`RoomyLayer` keeps its keys and values as views of buffers with room
for ``ROOM`` more tokens and writes new ones in place; it allocates again only when the room
is used up or its rows were reselected (``batch_select_indices`` and
``batch_repeat_interleave`` build new tensors anyway). Attention reads the same numbers.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

ROOM = 64  # tokens of room per allocation: four of the hf student's 16-token chunks


class RoomyLayer(DynamicLayer):
    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        assert self.keys is not None and self.values is not None  # set by the initialization
        n, m = self.get_seq_length(), key_states.shape[-2]
        buffers = getattr(self, "_buffers", None)
        if buffers is None or not _holds(buffers[0], self.keys, key_states, n + m):
            buffers = self._buffers = (_grown(self.keys, key_states, n, m), _grown(self.values, value_states, n, m))
        for buffer, new in zip(buffers, (key_states, value_states)):
            buffer[..., n : n + m, :] = new
        self.keys, self.values = (buffer[..., : n + m, :] for buffer in buffers)
        return self.keys, self.values


def _holds(buffer: torch.Tensor, cached: torch.Tensor, new: torch.Tensor, length: int) -> bool:
    """Whether ``cached`` is still the start of ``buffer`` and ``buffer`` has room for ``new``."""
    same_rows = buffer.shape[:2] == new.shape[:2] and buffer.shape[-1] == new.shape[-1]
    still_ours = cached.numel() == 0 or cached.data_ptr() == buffer.data_ptr()
    return same_rows and still_ours and length <= buffer.shape[-2]


def _grown(cached: torch.Tensor, new: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """A buffer for ``n`` cached and ``m`` new tokens and ``ROOM`` more, holding the cached ones."""
    b, h, _, d = new.shape
    buffer = new.new_empty(b, h, n + m + ROOM, d)
    if n:
        buffer[..., :n, :] = cached
    return buffer


def roomy(cache):
    """``cache`` (a transformers ``DynamicCache``) with its plain dynamic layers made roomy, in
    place; sliding-window and other kinds of layers stay as they are."""
    for layer in getattr(cache, "layers", ()):
        if type(layer) is DynamicLayer:
            layer.__class__ = RoomyLayer
    return cache
