"""The run configuration: one TOML file, validated into frozen, typed models.

A wrong key or type becomes one :class:`ConfigError` line that names the key. Secrets never
live here: a teacher names the environment variable that holds its key.
"""

from __future__ import annotations

import copy
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from .errors import ConfigError


def stage_names() -> list[str]:
    """Every stage, in order. Read from the pipeline when asked, not when this module loads:
    the stages import the config, and a stage added to the pipeline counts from then on."""
    from .stages import PIPELINE

    return PIPELINE.names()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskConfig(Strict):
    name: str = "svamp"
    data_dir: str | None = None
    seed: int = 0
    train_limit: int | None = Field(default=None, ge=1)
    test_limit: int | None = Field(default=None, ge=1)
    prompts: dict[str, str] | str = {}  # a preset name ("paper"), or templates per kind
    hub_id: str | None = None  # read the splits from this hub dataset (a mirror of the upstream one)
    # A paper *_false_round0.json whose items (the first train_limit of them) become round 0's
    # mistakes instead of examining the student.
    mistakes_file: str | None = None


class TeacherConfig(Strict):
    name: str
    backend: str = "litellm"
    model: str = ""
    api_base: str | None = None
    api_key_env: str | None = None
    params: dict[str, Any] = {"temperature": 0.8, "max_tokens": 512}
    concurrency: int = Field(default=8, ge=1)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    retry_base_s: float = Field(default=1.0, gt=0)  # first backoff delay; doubles each retry
    transport: Literal["auto", "litellm", "http"] = "auto"  # http: our lean OpenAI-compatible client
    options: dict[str, Any] = {}  # backend-specific (replay: file; hf: model path)

    @field_validator("params", "options")
    @classmethod
    def _no_secrets(cls, value: dict) -> dict:
        """A key written here would be sent, stored in run.sqlite and copied into config.toml."""
        found = _secret_key(value)
        if found:
            raise ValueError(
                f"holds a secret ({found!r}): put it in an environment variable and name that variable in api_key_env"
            )
        return value


_SECRET = re.compile(r"(?:^|[_-])(?:api[_-]?key|key|token|secret|password|authorization)$", re.I)


def _secret_key(value: Any) -> str | None:
    """The first key-like name (api_key, token, Authorization, ...) anywhere in a mapping."""
    if isinstance(value, dict):
        for k, v in value.items():
            if _SECRET.search(str(k)):
                return str(k)
            found = _secret_key(v)
            if found:
                return found
    elif isinstance(value, list):
        return next((found for v in value if (found := _secret_key(v))), None)
    return None


class CommitteeConfig(Strict):
    assignment: Literal["others", "all", "k"] = "others"
    k: int = Field(default=2, ge=1)
    parser: str = "paper"
    policy: str = "mean"
    threshold: float = Field(default=3.0, ge=1, le=5)
    review_feedback: bool = False
    verify_answer: bool = False
    compile_mode: Literal["paper", "all"] = "paper"
    distil_from: list[str] = []  # the teachers whose writings compile uses (empty: all of them)
    budget_usd: float | None = Field(default=None, gt=0)
    samples: int = Field(default=1, ge=1)
    seed: int = 0


class StudentConfig(Strict):
    backend: str = "auto"  # vllm where installed and a GPU is visible, else hf
    model: str = ""
    gguf_file: str | None = None
    # A LoRA adapter (a folder, or a pushed adapter's hub id) that round 0's student starts from:
    # it answers with it, and LoRA training goes on from it.
    adapter: str | None = None
    chat_template: bool = True
    max_new_tokens: int = Field(default=256, ge=1)
    sampling: bool = False
    temperature: float = Field(default=0.3, gt=0)
    top_p: float = Field(default=0.9, gt=0, le=1)
    batch_size: int = Field(default=16, ge=1)
    device: str = "auto"
    dtype: str = "auto"


class TrainConfig(Strict):
    alpha: float = Field(default=0.5, ge=0, le=1)
    method: Literal["lora", "full", "qlora"] = "lora"
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | None = None
    epochs: float = Field(default=1, gt=0)  # 1.5: a second pass over half the (shuffled) pairs
    max_steps: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=2e-4, gt=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=8)
    # Tokens of one forward pass: a longer batch is split into passes whose gradients add up to
    # the batch's, which bounds activation memory. None: 512 on a CPU, 16384 on a GPU.
    pass_tokens: int | None = Field(default=None, ge=16)
    gradient_checkpointing: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    save_steps: int = Field(default=50, ge=1)
    merge: bool = False
    launcher: Literal["python", "accelerate"] = "python"
    # An accelerate config file (`accelerate config` writes one): FSDP, DeepSpeed, several
    # nodes. Given, training always goes through accelerate launch with it.
    accelerate_config: str | None = None
    report_to: list[str] = []
    seed: int = 0


class RunConfig(Strict):
    task: TaskConfig = TaskConfig()
    teachers: list[TeacherConfig] = []
    committee: CommitteeConfig = CommitteeConfig()
    student: StudentConfig = StudentConfig()
    train: TrainConfig = TrainConfig()
    rounds: int = Field(default=1, ge=1)
    stages: list[str] = Field(default_factory=stage_names)

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, stages: list[str]) -> list[str]:
        known = stage_names()
        if not stages:
            raise ValueError(f"names no stage: use one or more of {', '.join(known)}")
        for s in stages:
            if s not in known:
                raise ValueError(f"unknown stage {s!r}: use {', '.join(known)}")
        return stages

    @model_validator(mode="after")
    def _unique_teachers(self) -> RunConfig:
        names = [t.name for t in self.teachers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"teacher name {sorted(dup)[0]!r} is used twice: give each teacher its own name")
        unknown = [n for n in self.committee.distil_from if n not in names]
        if unknown:
            raise ValueError(
                f"committee.distil_from names {unknown[0]!r}, which is not a teacher: use one of "
                f"{', '.join(names) or '(none configured)'}"
            )
        return self


def _describe(err: ErrorDetails) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        return f"unknown key {key!r}: check its spelling against the example configs"
    if err["type"] == "missing":
        return f"missing key {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    return f"{key}: {msg}" if isinstance(got, (dict, list)) else f"{key}: {msg} (got {got!r})"


def validate(data: dict, model: type[BaseModel] = RunConfig, where: str = "") -> Any:
    """``data`` as ``model`` (a run config by default); ``where`` prefixes the key named in an
    error ("variants[2].")."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError("config error: " + where + _describe(e.errors()[0])) from None


def set_key(data: dict, dotted: str, value: Any) -> None:
    """Apply one CLI override ``a.b.c=value`` to the raw config mapping. A list of tables is
    entered by an entry's name, as a TOML file names its teachers: ``teachers.gpt.params.temperature=0.2``."""
    *path, last = dotted.split(".")
    parts = iter(path)
    node = data
    model: type[BaseModel] | None = RunConfig
    for part in parts:
        start, model = _start(model, part)
        node = node.setdefault(part, start)
        if isinstance(node, list) and all(isinstance(entry, dict) for entry in node):
            node = _named_entry(node, next(parts, None), part, dotted)
        if not isinstance(node, dict):
            raise ConfigError(f"config error: cannot set {dotted!r}: {part!r} is not a table")
    node[last] = value


def _start(model: type[BaseModel] | None, part: str) -> tuple[Any, type[BaseModel] | None]:
    """What an absent key ``part`` of ``model`` starts as when an override sets a key under it: its
    default (so that ``params.temperature=0.2`` keeps the default ``max_tokens``), else an empty
    table; and the model of what it holds (of each entry, for a list of tables such as teachers)."""
    info = model.model_fields.get(part) if model else None
    if info is None:
        return {}, None
    held = typing.get_args(info.annotation)[0] if typing.get_origin(info.annotation) is list else info.annotation
    inner = held if isinstance(held, type) and issubclass(held, BaseModel) else None
    default = info.default if isinstance(info.default, (dict, list)) else {}
    return copy.deepcopy(default), inner


def _named_entry(entries: list[dict], name: str | None, section: str, dotted: str) -> dict:
    """The entry of a list of tables whose ``name`` is ``name``; a missing or unknown name is one
    line that lists the names there are."""
    names = ", ".join(str(e.get("name")) for e in entries) or "(none configured)"
    if name is None:
        raise ConfigError(
            f"config error: cannot set {dotted!r}: name one of the {section} and a key, as "
            f"{section}.NAME.KEY=VALUE (names: {names})"
        )
    for entry in entries:
        if entry.get("name") == name:
            return entry
    raise ConfigError(
        f"config error: cannot set {dotted!r}: no entry of {section} is named {name!r}: use one of {names}"
    )


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with a TOML value (bare words are strings)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"bad override {text!r}: write KEY=VALUE, e.g. train.alpha=0.5")
    try:
        return key.strip(), tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), raw


def read(path: str | Path) -> dict:
    """A TOML file's raw mapping; a missing, folder or malformed file is one line."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a folder: pass a TOML file such as configs/svamp-replay.toml")
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist: pass a TOML file such as configs/svamp-replay.toml")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p} is not valid TOML: {e}") from None


def load(path: str | Path | None, overrides: list[str] | tuple = ()) -> RunConfig:
    data: dict = read(path) if path is not None else {}
    for item in overrides:
        set_key(data, *parse_override(item))
    return validate(data)


def dump(config: RunConfig) -> str:
    """TOML text that :func:`load` reads back to an equal config."""
    import tomli_w

    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
