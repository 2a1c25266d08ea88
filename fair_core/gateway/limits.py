"""Per-teacher rate limits: requests and tokens per minute, as token buckets."""

from __future__ import annotations

import asyncio
import time


class Bucket:
    """A token bucket that refills ``per_minute`` units each minute, up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)
        async with self._lock:
            while True:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)


class Limits:
    """Concurrency, requests-per-minute and tokens-per-minute of one teacher."""

    def __init__(self, concurrency: int, rpm: int | None, tpm: int | None) -> None:
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.rpm = Bucket(rpm) if rpm else None
        self.tpm = Bucket(tpm) if tpm else None

    async def admit(self, tokens_estimate: int) -> None:
        if self.rpm:
            await self.rpm.take(1)
        if self.tpm:
            await self.tpm.take(tokens_estimate)
