"""A local transformers model as a teacher.

Requests arrive one by one from the gateway; a small batcher gathers those that arrive together
and runs them as one batched generation in a worker thread, so a local teacher keeps up.
"""

from __future__ import annotations

import asyncio

from fair_core.config import StudentConfig
from fair_core.gateway.backend import Backend, Completion, Request
from fair_core.host import get_host


class HFTeacher(Backend):
    def __init__(self, config) -> None:
        super().__init__(config)
        opts = config.options
        self.batch_size = int(opts.get("batch_size", 8))
        self.student_config = StudentConfig(
            model=config.model,
            batch_size=self.batch_size,
            max_new_tokens=int(config.params.get("max_tokens", 512)),
            sampling=float(config.params.get("temperature", 0)) > 0,
            temperature=float(config.params.get("temperature", 0.8)) or 0.8,
            chat_template=bool(opts.get("chat_template", True)),
            device=opts.get("device", "auto"),
        )
        self._model = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    def check(self) -> None:
        self._load()

    def local(self) -> bool:
        return True  # the model runs in this process

    def _load(self):
        if self._model is None:
            self._model = get_host().get("students", "hf")(self.student_config)
        return self._model

    async def complete(self, request: Request) -> Completion:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._serve(self._queue))
        done = asyncio.get_running_loop().create_future()
        await self._queue.put((request.messages[-1]["content"], done))
        return Completion(await done)

    async def _serve(self, queue: asyncio.Queue) -> None:
        while True:
            batch = [await queue.get()]
            await asyncio.sleep(0.01)  # let the requests scheduled together join the batch
            while not queue.empty() and len(batch) < self.batch_size:
                batch.append(queue.get_nowait())
            prompts = [p for p, _ in batch]
            try:
                texts = await asyncio.to_thread(self._load().generate, prompts)
            except Exception as e:  # noqa: BLE001 - hand the failure to every waiting call
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for (_, fut), text in zip(batch, texts):
                if not fut.done():
                    fut.set_result(text)

    def identity(self) -> dict:
        return {
            "backend": "hf",
            "model": self.config.model,
            "params": self.config.params,
            "options": self.config.options,
        }  # chat_template changes the answers

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._model is not None:
            self._model.close()
