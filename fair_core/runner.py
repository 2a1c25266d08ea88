"""Rounds and stages: runs what is not done yet, in the order of the host's pipeline (the
built-in stages and the plugins'), giving each stage what its declaration says it needs (the
student, the gateway, the memory); pause, resume and cancel.

Each stage of each round is marked done in the store when it finishes, so rerunning a run
resumes at the first stage not done; within a stage, every finished call or attempt is stored,
so a resumed stage redoes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from functools import cached_property
from pathlib import Path

from .config import RunConfig
from .errors import FairError
from .gateway.gateway import Gateway
from .gateway.prices import unpriced, unpriced_line
from .host import Host
from .runs.disk import DiskFull
from .runs.events import Message, Paused, Resumed, StageFinished, StageStarted
from .runs.rundir import Run
from .runs.splits import mistakes_path
from .runs.store import StageStatus
from .stages import Context, Need, Stage, StageCancelled, examine, runs_async
from .student import Student, adapter_config, load, local_adapter, model_folder
from .task import data_root


class Runner:
    def __init__(self, run: Run, host: Host, stages: list[str] | None = None) -> None:
        """``stages``: the ones this invocation runs (default: the config's), as ``fair run --stages``
        asks, or an experiment for its shared committee; the run's config keeps its own list."""
        self.run_ = run
        self.host = host
        self.config = run.config
        self.pipeline = host.pipeline
        self.asked = self.config.stages if stages is None else stages  # as given: check() refuses a name it lacks
        self.stages = self.pipeline.ordered(self.asked)  # None (the config leaves them out): every stage
        self.task = host.task(self.config.task)
        self.gateway: Gateway | None = None
        self._student: tuple[tuple[str, str | None], Student] | None = None  # (source, loaded student)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.cancelled = False
        self.ran: list[tuple[int, str]] = []  # (round, stage) of the stages this invocation ran

    # control: safe to call from any thread (the TUI runs the pipeline in a worker thread) -------
    def pause(self) -> None:
        """Stop starting teacher calls; those in flight finish."""
        self._on_loop(lambda: self._pause(True))

    def resume(self) -> None:
        self._on_loop(lambda: self._pause(False))

    def _pause(self, paused: bool) -> None:
        """On the loop: pause or resume the teacher calls, and say so in the event log when that
        changes anything (nothing calls teachers before the committee's first stage)."""
        gateway = self.gateway
        if gateway is None or gateway.running.is_set() != paused:
            return
        if paused:
            gateway.pause()
        else:
            gateway.resume()
        round, stage = self.ran[-1]
        self.run_.publish((Paused if paused else Resumed)(round, stage))

    def cancel(self) -> None:
        """Stop after the calls in flight; the run stays resumable."""
        self.cancelled = True
        self._on_loop(lambda: self.gateway.cancel() if self.gateway else None)

    def _on_loop(self, fn) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    # setup -----------------------------------------------------------------------------------
    def check(self) -> None:
        check(self.config, self.host, self.backends, self.asked)

    @cached_property
    def backends(self) -> dict:
        """One backend per teacher, built once (its check() and its calls share it)."""
        return {t.name: self.host.get("teachers", t.backend)(t) for t in self.config.teachers}

    # students --------------------------------------------------------------------------------
    def base_model(self) -> str:
        """The student that round 0 starts from, as the backend resolves it (aliases, hub ids)."""
        return model_folder(self.host, self.config.student)

    @cached_property
    def start_adapter(self) -> str | None:
        """``student.adapter`` as a local folder (a hub id fetched once), checked to be an adapter."""
        if not self.config.student.adapter:
            return None
        folder = local_adapter(self.config.student.adapter)
        adapter_config(folder)
        return folder

    def student_source(self, round: int) -> tuple[str, str | None]:
        """(base model folder, adapter or None) of the student that starts ``round``."""
        if round == 0:
            return self.base_model(), self.start_adapter
        prev = self.run_.round_dir(round - 1)
        if (prev / "adapter").is_dir() and not (prev / "merged").is_dir() and not (prev / "model").is_dir():
            # a run extended with more rounds: what was its last round kept only the adapter
            from .training.trainer import merge_adapter

            self.run_.publish(
                Message("info", f"merging round {round - 1}'s adapter into its base to start round {round}")
            )
            merge_adapter(Path(self.student_source(round - 1)[0]), prev / "adapter", prev / "merged")
        if (prev / "merged").is_dir():
            return str(prev / "merged"), None
        if (prev / "model").is_dir():
            return str(prev / "model"), None
        raise FairError(f"round {round - 1} left no merged student in {prev}: rerun its train stage")

    def trained(self, round: int) -> tuple[str, str | None]:
        """(model folder, adapter or None) of the student ``round`` trained; a fully fine-tuned
        one needs nothing of the model it started from."""
        out = self.run_.round_dir(round)
        if (out / "model").is_dir():
            return str(out / "model"), None
        if (out / "adapter").is_dir():
            return self.student_source(round)[0], str(out / "adapter")
        raise FairError(f"round {round} has no trained student in {out}: run its train stage")

    def load_student(self, round: int, trained: bool = False):
        source = self.trained(round) if trained else self.student_source(round)
        if self._student is not None and self._student[0] == source:
            return self._student[1]
        self.release_student()
        student = load(self.host, self.config.student, source)
        self._student = (source, student)
        return student

    def release_student(self) -> None:
        if self._student is not None:
            self._student[1].close()
            self._student = None

    def context(self, round: int) -> Context:
        """What the stages of ``round`` work with."""
        return Context(
            self.run_,
            self.host,
            self.task,
            round,
            student=lambda trained=False: self.load_student(round, trained),
            student_source=self.student_source,
            cancelled=lambda: self.cancelled,
        )

    # running ---------------------------------------------------------------------------------
    def run(self) -> None:
        self.check()
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_interrupt_said)
        store = self.run_.store
        # who runs it: a "running" stage whose process is gone was killed (kill -9, power loss)
        store.set_meta("runner", {"host": socket.gethostname(), "pid": os.getpid()})
        try:
            for r in range(self.config.rounds):
                ctx = self.context(r)
                if r == 0 and self.config.task.mistakes_file:
                    await asyncio.to_thread(examine.load_paper_mistakes, ctx)
                rerun_rest = False
                for stage in (self.pipeline[name] for name in self.stages):
                    if self.cancelled:
                        return
                    status = store.stage_status(r, stage.name)
                    if status == StageStatus.DONE and not rerun_rest:
                        continue
                    failed = self._failures(r, stage.name) if status == StageStatus.PARTIAL else None
                    self._check_inputs(r, stage)
                    await self._stage(ctx, stage)
                    # what follows a re-run stage is stale, unless the stage only failed the very
                    # calls it failed before (a model that does not exist, a record not replayed)
                    unchanged = (
                        failed is not None
                        and store.stage_status(r, stage.name) == StageStatus.PARTIAL
                        and self._failures(r, stage.name) == failed
                    )
                    rerun_rest = rerun_rest or not unchanged
        finally:
            self.release_student()
            if self.gateway:
                await self.gateway.aclose()

    def outcome(self) -> tuple[int, str | None]:
        """This invocation's exit status, and what to do next when it is not 0: 0 every stage
        asked for is done; 4 the budget stopped calls; 3 failed calls or a stage not done (a rerun
        retries them). Interruptions (130, 143) never get here."""
        store, path = self.run_.store, self.run_.path
        if self.gateway is not None and self.gateway.budget_reached:
            return 4, (
                f"stopped by the budget (${store.spent_usd():.4f} of ${self.config.committee.budget_usd:g}): "
                f"raise it (--set committee.budget_usd=...) and rerun to go on; no answered call is paid again"
            )
        for r in range(self.config.rounds):
            for stage in self.stages:
                status = store.stage_status(r, stage)
                if status != StageStatus.DONE:
                    failed = store.count_failures(r, stage)
                    said = f", {failed} failed calls" if failed else ""
                    where = f"round {r} {stage} is {status or 'not run'}{said}"
                    stopped = self.gateway.stopped() if self.gateway is not None else []
                    if stopped:
                        return 3, f"{where}; {stopped[0]}; then rerun"
                    return 3, f"{where}: rerun the same command to retry (`fair report {path}` lists what failed)"
        return 0, None

    def _failures(self, round: int, stage: str) -> set[tuple[str, str, str]]:
        return {(f.item_id, f.teacher, f.about) for f in self.run_.store.failures(round) if f.stage == stage}

    def _check_inputs(self, round: int, stage: Stage) -> None:
        """A stage left out of ``stages`` that ran but is not done (stale after a config change,
        failed, interrupted) would feed this one old or partial data, and the committee has
        nothing to do before examine: refuse."""
        store = self.run_.store
        for earlier in self.pipeline.names()[: self.pipeline.rank(stage.name)]:
            status = store.stage_status(round, earlier)
            if earlier not in self.stages and status not in (None, StageStatus.DONE):
                raise FairError(
                    f"round {round} {stage.name} needs {earlier} first, and {earlier} is {status}: "
                    f"add {earlier} to --stages, or run every stage"
                )
        examined = store.stage_status(round, "examine") is not None
        if stage.needs is Need.COMMITTEE and not examined and not store.count_mistakes(round):
            raise FairError(
                f"round {round} {stage.name} has no mistakes to work on: examine has not run; "
                f"add examine to --stages, or run every stage"
            )

    async def _stage(self, ctx: Context, stage: Stage) -> None:
        store, name = self.run_.store, stage.name
        self.run_.publish(StageStarted(name, ctx.round))
        store.mark_stage(ctx.round, name, StageStatus.RUNNING)
        self.ran.append((ctx.round, name))
        start = time.time()
        try:
            if stage.needs is Need.COMMITTEE:
                if self.gateway is None:
                    self.gateway = Gateway(
                        store,
                        self.run_.publish,
                        self.backends,
                        self.config.committee.budget_usd,
                        self.config.committee.seed,
                    )
                ctx.gateway = self.gateway
            elif stage.needs is Need.UNLOADED_STUDENT:
                self.release_student()  # the trainer needs the memory
            summary = await stage.run(ctx) if runs_async(stage.run) else await asyncio.to_thread(stage.run, ctx)
        except StageCancelled:
            summary = {}
        except BaseException as e:
            # A failed stage, or Ctrl-C / SIGTERM (CancelledError here): threads still working on
            # this stage, such as the one tailing the training process, stop at their next check.
            self.cancelled = True
            if self.gateway:
                self.gateway.cancel()
            interrupted = not isinstance(e, Exception)  # CancelledError, KeyboardInterrupt
            with contextlib.suppress(DiskFull):  # then it reads "running", as after a kill: redone all the same
                store.mark_stage(
                    ctx.round,
                    name,
                    StageStatus.INTERRUPTED if interrupted else StageStatus.FAILED,
                    {} if interrupted else {"error": str(e) or type(e).__name__},
                )
            raise
        failed = summary.get("failed", 0)
        if self.cancelled:
            store.mark_stage(ctx.round, name, StageStatus.CANCELLED)
            self.run_.publish(Message("warning", f"{name} cancelled; rerun to resume"))
            return
        store.mark_stage(ctx.round, name, StageStatus.PARTIAL if failed else StageStatus.DONE, summary)
        summary["seconds"] = round(time.time() - start, 2)
        self.run_.publish(StageFinished(name, ctx.round, summary))
        if failed:
            self.run_.publish(
                Message(
                    "warning",
                    f"{name}: {failed} calls failed (see `fair report`); a "
                    f"rerun retries them, and redoes nothing if they fail again",
                )
            )


def check(config: RunConfig, host: Host, backends: dict | None = None, stages: list[str] | None = None) -> None:
    """Everything that can be known wrong before a call is paid for, a model is loaded or a run
    directory is written, for ``stages`` (default: the config's): first that the config's stages
    and ``stages`` are all stages of the host's pipeline."""
    pipeline = host.pipeline
    pipeline.check(config.stages)
    pipeline.check(config.stages if stages is None else stages)
    host.get("tasks", config.task.name)
    if config.task.mistakes_file and not mistakes_path(config.task.mistakes_file).is_file():
        raise FairError(
            f"task.mistakes_file {config.task.mistakes_file!r} does not exist (neither as given nor "
            f"under the data folder {data_root()}): fix the path"
        )
    host.get("parsers", config.committee.parser)
    host.get("policies", config.committee.policy)
    needs = {pipeline[s].needs for s in pipeline.ordered(config.stages if stages is None else stages)}
    if Need.COMMITTEE in needs:
        if not config.teachers:
            raise FairError("no teachers configured: add [[teachers]] tables to the config")
        if backends is None:
            backends = {t.name: host.get("teachers", t.backend)(t) for t in config.teachers}
        for backend in backends.values():
            backend.check()
            if config.committee.budget_usd is not None and unpriced(backend):
                raise FairError(unpriced_line(backend, "committee.budget_usd cannot count its calls"))
    if Need.UNLOADED_STUDENT in needs and config.train.method == "qlora":
        check_qlora()
    if needs & {Need.STUDENT, Need.UNLOADED_STUDENT}:
        host.get("students", config.student.backend)
        if not config.student.model:
            raise FairError('student.model is empty: name a hub id, a local folder, or "smollm2"')
        model_folder(host, config.student)  # a missing folder or unknown hub id fails here, not after the committee


def check_qlora() -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes: say so before anything runs."""
    from importlib.util import find_spec

    import torch

    if not torch.cuda.is_available():
        raise FairError('train.method = "qlora" needs a CUDA GPU and none is visible: use method = "lora" on CPU')
    if find_spec("bitsandbytes") is None:
        raise FairError('train.method = "qlora" needs bitsandbytes: pip install bitsandbytes, or use method = "lora"')


def _interrupt_said(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The loop's error handler: an interrupt (SIGTERM's, raised inside a task's step) ends the run,
    which the CLI says in one line, but asyncio would also log the run's task as holding an exception
    never retrieved, with a page of traceback. Anything else is logged as asyncio does."""
    if not isinstance(context.get("exception"), KeyboardInterrupt):
        loop.default_exception_handler(context)
