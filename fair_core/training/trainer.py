"""The student fine-tuning of one round: an accelerate loop around the joint loss.

Why a plain accelerate loop and not transformers' Trainer: the loss needs its own forward (the
decoder body, then the head only at response positions, both halves of a pair in one pass),
its own batches (pairs, length-grouped, packed) and its own checkpoint folders (written whole
or not at all, holding only the trainable weights). Trainer would need each of those
overridden; accelerate still gives DDP, FSDP and DeepSpeed (``accelerate launch``), mixed
precision, gradient accumulation and the saving of optimizer, scheduler and RNG state.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import math
import os
import random
import re
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..config import TrainConfig, load
from ..errors import FairError
from ..runs.disk import folder_bytes
from ..student import adapter_config, with_adapter
from . import attention
from .checkpoint import Checkpoints, clean_leftovers, publish, staged, staging
from .collator import PairCollator
from .data import Encoder, LengthGroupedBatches, Pair, read_pairs
from .dropout import lean_lora_dropout
from .loss import JointLoss, batch_backward, probe
from .progress import Meter, ProgressLog

if TYPE_CHECKING:
    from accelerate import Accelerator

# Tokens per forward pass by default. On a CPU, passes of 512 tokens held a SmolLM2-135M LoRA
# step to 2.3 GiB against 5 to 7 GiB in one pass (the demo's training: 2.4 GiB against 13.8), at
# the same speed on one thread and up to a fifth slower on two (benchmarks/memory.py,
# docs/benchmarks.md); a GPU wants long passes and has the memory for them.
PASS_TOKENS = {"cpu": 512, "cuda": 16384}
WARMUP = 0.03  # share of the steps with a linear warm-up, then a constant rate (the paper has none: docs/fidelity.md)
MIXED = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
TRACKERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}

logger = logging.getLogger(__name__)


def resolve_precision(name: str) -> str:
    """fp32, bf16 or fp16. "auto" is bf16 on a GPU that has it and fp16 on other GPUs; on a CPU
    it is bf16 where the CPU multiplies bf16 matrices in hardware (AMX tiles: a training step
    of SmolLM2-135M ran 1.7x faster than in fp32), else fp32."""
    cuda = torch.cuda.is_available()
    if name == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return "bf16" if amx is not None and amx() else "fp32"
    if name == "fp16" and not cuda:
        raise FairError("train.precision fp16 needs a CUDA GPU: use bf16 or fp32 on this machine")
    return name


def check_inputs(train: TrainConfig, base: Path, adapter: Path | None) -> None:
    if not (base / "config.json").is_file():
        raise FairError(f"base model {base} not found: pass a local Hugging Face model folder (with config.json)")
    if adapter is not None:
        adapter_config(adapter)
    if train.method == "qlora":
        if not torch.cuda.is_available():
            raise FairError("train.method qlora needs a CUDA GPU: use lora or full on this machine")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise FairError("train.method qlora needs bitsandbytes: pip install bitsandbytes, or use lora")


def installed_trackers(names: list[str]) -> list[str]:
    """Those of ``report_to`` that are installed; a warning for each of the others, which the
    run goes on without (from the first process only: every process finds the same)."""
    trackers = [name for name in names if any(importlib.util.find_spec(m) for m in TRACKERS.get(name, (name,)))]
    if os.environ.get("RANK", "0") == "0":  # set by torchrun for each process
        for name in set(names) - set(trackers):
            logger.warning("report_to %r skipped: it is not installed", name)
    return trackers


def check_processes(seen: int) -> None:
    """Refuse a launch whose processes do not form one group: torchrun on a CPU without
    ACCELERATE_USE_CPU=1, say, where every process would train alone into the same folder."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and seen != world:
        raise FairError(
            f"{world} processes were launched (WORLD_SIZE) but accelerate sees {seen}: launch with "
            '`accelerate launch` (train.launcher = "accelerate"), or set ACCELERATE_USE_CPU=1 under torchrun on a CPU'
        )


def load_model(base: Path, train: TrainConfig, precision: str, device_map, adapter: Path | None):
    """The model to train, from a local folder: see :func:`adapt`."""
    from transformers import AutoModelForCausalLM

    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    # Frozen weights can live in half precision; weights that the optimizer updates stay fp32
    # (peft keeps adapters fp32; full fine-tuning autocasts from fp32 master weights). FSDP2
    # shards each parameter alone and wants one dtype among the trainable ones only, so the
    # frozen base stays half there too (FSDP1, which flattens a layer into one tensor, is refused).
    dtype = half if half is not None and train.method != "full" else torch.float32
    kwargs = {"dtype": dtype, "attn_implementation": attention.implementation()}
    if device_map is not None:
        kwargs["device_map"] = device_map
    if train.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=half or torch.bfloat16,
            # 4-bit weights packed in a float dtype: FSDP shards them like the other frozen weights
            bnb_4bit_quant_storage=half or torch.bfloat16,
        )
    return adapt(AutoModelForCausalLM.from_pretrained(base, **kwargs), train, adapter)


def adapt(model, train: TrainConfig, adapter: Path | None = None):
    """LoRA (QLoRA on a 4-bit model) adapters on the frozen ``model``, or ``model`` itself for
    full fine-tuning; ``adapter`` (a previous round's) is trained further, or merged first (full)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model.config.use_cache = False
    checkpointing = {"use_reentrant": False}
    if train.method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=train.gradient_checkpointing, gradient_checkpointing_kwargs=checkpointing
        )
    elif train.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
            model.activation_checkpointing_enable(checkpointing)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
    if train.method == "full":
        return with_adapter(model, adapter).merge_and_unload() if adapter else model
    if adapter is not None:
        model = with_adapter(model, adapter, trainable=True)
    else:
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=train.lora_r,
            lora_alpha=train.lora_alpha,
            lora_dropout=train.lora_dropout,
            target_modules=train.target_modules,
        )
        try:
            model = get_peft_model(model, lora)
        except ValueError as e:
            raise FairError(
                f"LoRA cannot be set up for this model: {str(e).splitlines()[0]} (set train.target_modules)"
            ) from None
    lean_lora_dropout(model)
    return model


def check_sharding(acc) -> None:
    """FSDP1 is refused: accelerate restores no optimizer state into it at a resume (0 of 20 Adam
    states on the tiny model), and LoRA on it needs use_orig_params for its mixed requires_grad."""
    from accelerate.utils import DistributedType

    plugin = acc.state.fsdp_plugin if acc.distributed_type == DistributedType.FSDP else None
    if plugin is not None and plugin.fsdp_version != 2:
        raise FairError(
            "FSDP version 1 is not supported (a resumed run would lose the optimizer state): "
            "set fsdp_version: 2 in the accelerate config (FSDP_VERSION=2)"
        )


def check_shared(acc, folder: Path) -> None:
    """Refuse processes that do not all see ``folder``: they write the parts of one checkpoint
    into it and resume from what the first one published, so machines that train together must
    share one filesystem. The first process writes a number they all know; each looks for it."""
    if acc.num_processes == 1:
        return
    mark = staging(folder / "shared")  # a kill leaves a leftover that the next run removes
    drawn = torch.tensor([random.getrandbits(62) if acc.is_main_process else 0], device=acc.device)
    token = str(int(acc.reduce(drawn, "sum").item()))
    if acc.is_main_process:
        mark.write_text(token)
    acc.wait_for_everyone()
    seen = mark.is_file() and mark.read_text() == token
    blind = int(acc.reduce(torch.tensor([int(not seen)], device=acc.device), "sum").item())
    acc.wait_for_everyone()
    if acc.is_main_process:
        mark.unlink()
    if blind:
        raise FairError(
            f"{blind} of the {acc.num_processes} training processes cannot see the files the first one writes in "
            f"{folder}: put the run folder on a filesystem every machine mounts at the same path (docs/training.md)"
        )


def fill_deepspeed(config: dict, train: TrainConfig) -> None:
    """The DeepSpeed settings left to "auto" that accelerate cannot fill right: the micro-batch
    size (batches come from a batch sampler, whose size it cannot read) and the gradient norm
    clip (DeepSpeed clips, not fair's loop; accelerate would put 1.0 whatever train says)."""
    ours = {"train_micro_batch_size_per_gpu": train.batch_size, "gradient_clipping": train.max_grad_norm}
    for key, value in ours.items():
        if config.get(key, "auto") == "auto":
            config[key] = value


def save_adapter(model, state: dict, folder: Path) -> None:
    """The LoRA adapter of ``model`` (a peft model) from its full ``state``, as peft writes one.

    The weights are chosen here by name (``lora_``) rather than by peft, which matches them against
    module names that a wrapper may rename: under FSDP1 it wrote an adapter of no tensors. An
    adapter without weights is an error, never a published result.
    """
    from safetensors.torch import save_file

    name = model.active_adapter
    adapter = re.compile(rf"\.{re.escape(name)}(?=\.|$)")
    weights = {adapter.sub("", k): v.contiguous() for k, v in state.items() if "lora_" in k}
    if not weights:
        raise FairError(
            f"the trained model has no LoRA weights to save ({len(state)} tensors, none named lora_): "
            'nothing was published; train with method = "full" or report this with the accelerate config'
        )
    config = copy.copy(model.peft_config[name])
    config.inference_mode = True
    config.save_pretrained(folder)
    save_file(weights, folder / "adapter_model.safetensors", metadata={"format": "pt"})


class TrainableState:
    """A LoRA checkpoint under FSDP: each process's shards of the adapter and of their optimizer
    state (torch.distributed.checkpoint), and the schedule. accelerate's FSDP checkpoint holds
    the sharded frozen base as well (728 KB against 36 KB on the tiny model, some 32 GB a
    checkpoint for an 8B model in fp32), and its hooks see no weights to leave out."""

    FOLDER, SCHEDULE = "trainable", "scheduler.pt"

    def __init__(self, model, optimizer, scheduler):
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.options = StateDictOptions(ignore_frozen_params=True, strict=False)

    def _state(self) -> dict:
        from torch.distributed.checkpoint.state_dict import get_state_dict

        weights, moments = get_state_dict(self.model, self.optimizer, options=self.options)
        # a frozen weight tied to another (the head to the embeddings) comes through all the same
        return {"model": trainable_only(self.model, weights), "optimizer": moments}

    def save(self, folder: Path, main: bool) -> None:
        import torch.distributed.checkpoint as dcp

        _own_error(dcp.save, self._state(), checkpoint_id=folder / self.FOLDER)
        if main:
            torch.save(self.scheduler.state_dict(), folder / self.SCHEDULE)

    def load(self, folder: Path) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_state_dict

        state = self._state()  # the structure to read into, the optimizer's state created
        _own_error(dcp.load, state, checkpoint_id=folder / self.FOLDER)
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=self.options,
        )
        self.scheduler.load_state_dict(torch.load(folder / self.SCHEDULE, weights_only=True))


def _own_error(call, *args, **kwargs):
    """A call that may go through torch.distributed.checkpoint (ours, accelerate's under FSDP),
    its failure raised as the first failing process's own error (a lost shard's, a full disk's):
    DCP gathers them all into a CheckpointException, a BaseException that the fallback to an
    older checkpoint and the full-disk handling did not catch, and every process crashed with it."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        return call(*args, **kwargs)
    except CheckpointException as e:
        error, _ = next(iter(e.failures.values()))
        raise error from None


def _trainable_only(models, weights, output_dir) -> None:
    """accelerate save hook: a checkpoint holds the weights being trained, not the frozen base."""
    for i, (model, state) in enumerate(zip(models, weights)):
        weights[i] = OrderedDict(trainable_only(model, state))


def trainable_only(model, state: dict) -> dict:
    """The entries of ``state`` that are weights ``model`` trains, in their order."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in state.items() if k in names}


def fingerprint(
    data: Path, train: TrainConfig, base: Path, adapter: Path | None, chat_template: bool, processes: int
) -> str:
    """What a checkpoint must share with this run to be resumed by it (the number of processes
    too: it decides which batches make a step)."""
    settings = train.model_dump(
        exclude={"save_steps", "merge", "launcher", "accelerate_config", "report_to", "pass_tokens"}
    )
    h = hashlib.sha256(data.read_bytes())
    h.update(
        json.dumps(
            [settings, str(base.resolve()), str(adapter and adapter.resolve()), chat_template, processes],
            sort_keys=True,
        ).encode()
    )
    return h.hexdigest()[:16]


class Trainer:
    """Set up from a run folder, then :meth:`run`: resume, train, write the outputs."""

    def __init__(
        self, run_dir: str | Path, round_: int, base: str | Path, adapter: str | Path | None = None, merge: bool = False
    ):
        """Each step takes what the one before found: the fingerprint counts the processes, the
        model's probe reads the first pair, the batches and the loss take the paths it allows."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        run_dir = Path(run_dir)
        self.dir = run_dir / "rounds" / str(round_)
        config = load(run_dir / "config.toml")
        self.train_cfg = t = config.train
        self.base = Path(base)
        self.adapter = Path(adapter) if adapter else None
        self.merge = merge
        rows = read_pairs(self.dir / "train.jsonl")
        check_inputs(t, self.base, self.adapter)

        precision = resolve_precision(t.precision)
        trackers = installed_trackers(t.report_to)
        self.acc = self._accelerator(precision, trackers)
        self.fingerprint = fingerprint(
            self.dir / "train.jsonl", t, self.base, self.adapter, config.student.chat_template, self.acc.num_processes
        )
        self.pairs = self._encode(rows, config.student.chat_template)
        self._prepare(self._load_model(precision))
        if trackers:
            self.acc.init_trackers("fair", config={**t.model_dump(mode="json"), "pairs": len(self.pairs)})

    def _accelerator(self, precision: str, trackers: list[str]) -> Accelerator:
        """accelerate's state for this process, once the launch is known to suit training: the
        number of processes, the sharding, DeepSpeed's settings filled from the config."""
        from accelerate import Accelerator

        t = self.train_cfg
        acc = Accelerator(
            mixed_precision=MIXED[precision],
            gradient_accumulation_steps=t.grad_accum,
            log_with=trackers or None,
            project_dir=str(self.dir / "logs"),
        )
        check_processes(acc.num_processes)
        check_sharding(acc)
        zero = acc.state.deepspeed_plugin
        if zero is not None:
            fill_deepspeed(zero.deepspeed_config, t)
        return acc

    @property
    def _whole_model(self) -> bool:
        """Whether each process holds the whole model (one process, or DDP), not a shard of it."""
        from accelerate.utils import DistributedType

        return self.acc.distributed_type in (DistributedType.NO, DistributedType.MULTI_GPU)

    def _encode(self, rows: list[dict], chat_template: bool) -> list[Pair]:
        """The round's pairs as token ids, with the tokenizer the outputs are saved with."""
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.base)
        encode = Encoder(self.tokenizer, chat_template, self.train_cfg.max_length)
        return [encode.pair(row) for row in rows]

    def _load_model(self, precision: str):
        """The student to train, on this process's device, and the fast paths it can take (a head
        sliced to the response positions, packed rows), which a forward on one pair tells."""
        t, acc = self.train_cfg, self.acc
        torch.manual_seed(t.seed)  # the initial LoRA weights
        device_map = {"": acc.device} if self._whole_model and acc.device.type == "cuda" else None
        model = load_model(self.base, t, precision, device_map, self.adapter)
        first = self.pairs[0]
        zero = acc.state.deepspeed_plugin
        if zero is not None and zero.zero_stage == 3:
            # ZeRO-3 partitions the weights as they load: a forward before prepare would read
            # empty ones, so no probe, and the plain path that every model takes
            self.sliced, self.packed = False, False
        else:
            self.sliced, self.packed = probe(model, first.feedback.ids[:64], first.rationale.ids[:64])
        if not (self.sliced and self.packed) and acc.is_main_process:
            logger.info("this model needs the plain path: sliced head %s, packed rows %s", self.sliced, self.packed)
        return model

    def _prepare(self, model) -> None:
        """The batches, the loss, the optimizer and its schedule, handed to accelerate, and what a
        checkpoint saves of them."""
        from accelerate.utils import DistributedType
        from torch.utils.data import DataLoader

        t, acc = self.train_cfg, self.acc
        pad = self.tokenizer.pad_token_id
        collate = PairCollator(
            self.tokenizer.eos_token_id if pad is None else pad,
            self.packed,
            multiple_of=8 if acc.device.type == "cuda" else 1,
            # several passes per batch in one process only: DDP, FSDP and DeepSpeed expect one
            # backward per forward
            pass_tokens=(t.pass_tokens or PASS_TOKENS.get(acc.device.type))
            if self._whole_model and acc.num_processes == 1
            else None,
        )
        self.batches = LengthGroupedBatches(
            [p.length for p in self.pairs], t.batch_size, t.seed, processes=acc.num_processes
        )
        # a list is a map-style dataset to torch; its stubs only take Dataset
        loader: DataLoader[Pair] = DataLoader(self.pairs, batch_sampler=self.batches, collate_fn=collate)  # type: ignore[arg-type]
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t.learning_rate)
        self.loss, self.optimizer, self.loader = acc.prepare(JointLoss(model, t.alpha, self.sliced), optimizer, loader)
        self.steps_per_epoch = math.ceil(len(self.loader) / t.grad_accum)
        self.max_steps = t.max_steps or max(1, math.ceil(t.epochs * self.steps_per_epoch))
        warm = max(1, round(WARMUP * self.max_steps))
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None  # None once run() has no more use for it
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
        acc.register_for_checkpointing(self.scheduler)
        acc.register_save_state_pre_hook(_trainable_only)
        self.trainable: TrainableState | None = None  # None: accelerate's own checkpoints
        if acc.distributed_type == DistributedType.FSDP and t.method != "full":
            self.trainable = TrainableState(self.loss, self.optimizer.optimizer, self.scheduler)
        self.checkpoints = Checkpoints(self.dir / "checkpoints")

    # -- resume ------------------------------------------------------------------------------

    def resume(self) -> dict:
        """Load the newest complete checkpoint, if any; its trainer state (step 0 when none)."""
        acc = self.acc
        if acc.is_main_process:
            clean_leftovers(self.dir)
            clean_leftovers(self.checkpoints.folder)
        acc.wait_for_everyone()
        check_shared(acc, self.dir)
        complete = [path for _, path in reversed(self.checkpoints.complete())]
        if not complete:
            return {"step": 0}
        newest = Checkpoints.state(complete[0])
        if newest.get("fingerprint") != self.fingerprint:
            written = newest.get("processes", acc.num_processes)
            if written != acc.num_processes:
                raise FairError(
                    f"checkpoints in {self.checkpoints.folder} were written by {written} training processes and "
                    f"this run has {acc.num_processes}: resume on {written}, or delete that folder to train afresh"
                )
            raise FairError(
                f"checkpoints in {self.checkpoints.folder} come from other data or settings: "
                "delete that folder to train this round afresh"
            )
        for path in complete:  # newest first: a damaged one (a disk error, say) falls back
            error = None
            try:
                if self.trainable is not None:
                    self.trainable.load(path)
                else:
                    _own_error(acc.load_state, str(path), strict=False)
            except Exception as e:  # noqa: BLE001 - whatever the damage, the one before may do
                error = e
            # all resume from the same one: processes a step apart would wait for each other for ever
            failed = acc.gather(torch.tensor([int(error is not None)], device=acc.device)).tolist()
            if any(failed):
                if error is not None and acc.process_index == failed.index(1):  # said once, by its reader
                    logger.warning(
                        "checkpoint %s cannot be read (%s: %s); trying the one before",
                        path.name,
                        type(error).__name__,
                        error,
                    )
                continue
            if acc.is_main_process:
                logger.info("resumed from %s", path.name)
            return Checkpoints.state(path)
        raise FairError(
            f"no checkpoint in {self.checkpoints.folder} can be read: delete that folder to train this round afresh"
        )

    def save_checkpoint(self, step: int, loss: float) -> None:
        acc = self.acc
        tmp = self.checkpoints.staging(step)
        with staged(tmp, self.checkpoints.folder / f"step-{step}", self._state_bytes):
            if self.trainable is not None:
                self.trainable.save(tmp, acc.is_main_process)
            else:
                _own_error(acc.save_state, str(tmp))  # FSDP's through torch.distributed.checkpoint
            acc.wait_for_everyone()
            if acc.is_main_process:
                state = {
                    "step": step,
                    "max_steps": self.max_steps,
                    "loss": loss,
                    "fingerprint": self.fingerprint,
                    "processes": acc.num_processes,
                }
                self.checkpoints.commit(tmp, step, state)
        acc.wait_for_everyone()

    def _state_bytes(self) -> int:
        """About what a checkpoint holds: the weights being trained and the optimizer's state of them."""
        weights = sum(p.numel() * p.element_size() for p in self.loss.parameters() if p.requires_grad)
        tensors = [v for state in self.optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
        moments = sum(v.numel() * v.element_size() for v in tensors)
        return weights + moments

    # -- training ----------------------------------------------------------------------------

    def fit(self, start: int, log: ProgressLog | None) -> tuple[Meter, dict | None]:
        acc, t = self.acc, self.train_cfg
        meter = Meter(start, self.max_steps)
        step, last = start, None
        scheduler = self.scheduler
        assert scheduler is not None  # dropped only at the end of run(), after fit
        self.loss.train()
        while step < self.max_steps:
            epoch, done = divmod(step, self.steps_per_epoch)
            self.batches.epoch = epoch
            loader = acc.skip_first_batches(self.loader, done * t.grad_accum) if done else self.loader
            sums, k, before = torch.zeros(8, device=acc.device), 0, step
            for batch in loader:
                counts = batch["counts"]
                # Dropout draws depend on the position in training only, so a resumed run
                # replays exactly what an uninterrupted one would have drawn.
                # The batch's place in the step, counted over all processes, so that n processes
                # draw what one process accumulating n batches draws.
                place = k * acc.num_processes + acc.process_index
                torch.manual_seed(hash((t.seed, step, place)) & (2**63 - 1))
                with acc.accumulate(self.loss):
                    losses = batch_backward(self.loss, batch, acc.backward)
                    if acc.sync_gradients:
                        acc.clip_grad_norm_(self.loss.parameters(), t.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                k += 1
                sums += torch.cat([losses.float(), torch.ones(1, device=acc.device), counts.float()])
                if not acc.sync_gradients:
                    continue
                lr = float(scheduler.get_last_lr()[0])  # typed float | Tensor; LambdaLR's are floats
                if not acc.optimizer_step_was_skipped:
                    scheduler.step()
                step += 1
                last = self._record(step, lr, acc.reduce(sums, "sum"), meter)
                if log:
                    log.write(last)
                sums, k = torch.zeros_like(sums), 0
                if step % t.save_steps == 0 or step == self.max_steps:
                    self.save_checkpoint(step, last["loss"])
                if step >= self.max_steps:
                    break
            if step == before:  # a loader that runs dry would loop here for ever
                raise RuntimeError(f"epoch {epoch} gave no optimizer step after {done} of {self.steps_per_epoch}")
        return meter, last

    def _record(self, step: int, lr: float, sums, meter: Meter) -> dict:
        loss, loss_f, loss_r, micro, pairs, n_f, n_r, inputs = sums.tolist()
        meter.add(int(pairs), int(n_f + n_r), int(inputs))
        record = {
            "type": "train_step",
            "step": step,
            "max_steps": self.max_steps,
            "epoch": round(step / self.steps_per_epoch, 4),
            "loss": round(loss / micro, 5),
            "loss_feedback": round(loss_f / micro, 5),
            "loss_rationale": round(loss_r / micro, 5),
            "learning_rate": lr,
            **meter.rates(step),
        }
        meter.losses.append(record["loss"])
        if self.acc.trackers:
            self.acc.log({k: v for k, v in record.items() if isinstance(v, float)}, step=step)
        return record

    # -- outputs -----------------------------------------------------------------------------

    def save_outputs(self) -> Path:
        """The final adapter (LoRA) or model (full) with the tokenizer, published whole by the first
        process. The others do not wait for it to write (nor for the merge after): a wait longer
        than the collectives' timeout (NCCL's 10 minutes) fails the training it ends."""
        acc = self.acc
        acc.wait_for_everyone()
        state = acc.get_state_dict(self.loss)  # gathers shards under FSDP / DeepSpeed
        final = self.dir / ("model" if self.train_cfg.method == "full" else "adapter")
        if acc.is_main_process:
            tmp = staging(final)
            state = {k.removeprefix("model."): v for k, v in state.items()}
            with staged(tmp, final, lambda: sum(v.numel() * v.element_size() for v in state.values())):
                model = acc.unwrap_model(self.loss).model
                if self.train_cfg.method == "full":
                    # one name a weight: a gathered state (FSDP2) holds a tied weight (the head, the
                    # embeddings) under both names, as copies save_pretrained cannot tell are one
                    names = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
                    model.save_pretrained(tmp, state_dict={k: v for k, v in state.items() if k in names})
                else:
                    save_adapter(model, state, tmp)
                self.tokenizer.save_pretrained(tmp)
                publish(tmp, final)
        return final

    def run(self) -> dict:
        acc = self.acc
        state = self.resume()
        start = state["step"]
        log = ProgressLog(self.dir / "progress.jsonl") if acc.is_main_process else None
        if log and start:
            log.write({"type": "train_resumed", "step": start, "max_steps": self.max_steps})
        meter, last = self.fit(start, log)
        output = self.save_outputs()
        merged = None
        if self.merge and self.train_cfg.method != "full":
            acc.free_memory(self.loss, self.optimizer)
            self.loss = self.optimizer = self.scheduler = None
            if acc.is_main_process:
                merged = merge_adapter(self.base, output, self.dir / "merged")
        done = {
            "type": "train_done",
            "step": self.max_steps,
            "max_steps": self.max_steps,
            "resumed_from": start,
            "epoch": round(self.max_steps / self.steps_per_epoch, 4),
            "loss": last["loss"] if last else state.get("loss"),
            "mean_loss": round(sum(meter.losses) / len(meter.losses), 5) if meter.losses else None,
            "runtime_s": round(meter.elapsed, 2),
            **meter.rates(self.max_steps),
            "pairs": len(self.pairs),
            "method": self.train_cfg.method,
            "packed": self.packed,
            "sliced_head": self.sliced,
            "output": str(output),
            "merged": str(merged) if merged else None,
        }
        if log:
            log.write(done)
            log.close()
        acc.end_training()
        return done


def merge_adapter(base: Path, adapter: Path, out: Path) -> Path:
    """Base + LoRA adapter as one plain model folder, with the adapter's tokenizer, published whole:
    the next round's student."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = staging(out)
    model = AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    with staged(tmp, out, lambda: folder_bytes(base)):
        with_adapter(model, adapter).merge_and_unload().save_pretrained(tmp)
        AutoTokenizer.from_pretrained(adapter).save_pretrained(tmp)
        publish(tmp, out)
    return out


def train(run_dir, round_: int, base, adapter=None, merge: bool = False) -> dict:
    """Train the student of round ``round_`` of the run in ``run_dir``; the train_done summary."""
    return Trainer(run_dir, round_, base, adapter, merge).run()
