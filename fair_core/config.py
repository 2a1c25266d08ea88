"""The run configuration: one TOML file, validated into frozen, typed models.

A wrong key or type becomes one :class:`ConfigError` line that names the key. Secrets never
live here: a teacher names the environment variable that holds its key.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from .errors import ConfigError
from .inputs import MAX_DEPTH, depth


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(Strict):
    """Which of a dataset's columns hold what (``task.columns``); a dotted name reads a nested
    field ("meta.answer"). ``question`` and ``choices`` may each be a list of columns: a question
    built from a passage and a query, options spread over columns A to D."""

    question: str | list[str] = "question"
    answer: str = "answer"
    id: str | None = None  # default: the row's position ("row-1", ...)
    choices: str | list[str] | None = None
    hint: str | None = None  # a gold solution the teachers may see (default: the gold answer)

    @field_validator("question", "choices")
    @classmethod
    def _some_columns(cls, names: str | list[str] | None) -> str | list[str] | None:
        if names == []:  # every question (or option list) would be empty
            raise ValueError("is an empty list: name the column that holds it, or list the columns")
        return names


ANSWER_KINDS = ("number", "yes-no", "choice", "text")
# [task] keys a task's constructor may take (Task.source_keys): where its data is, how it reads
SOURCE_KEYS = (
    *("hub_id", "hub_config", "path", "test_path", "split", "test_split", "test_fraction"),
    *("columns", "answer", "license", "description"),
)


class TaskConfig(Strict):
    name: str = "svamp"
    data_dir: str | None = None
    seed: int = 0
    train_limit: int | None = Field(default=None, ge=1)
    train_offset: int = Field(default=0, ge=0)  # train items to pass over first (held-out references)
    test_limit: int | None = Field(default=None, ge=1)
    prompts: dict[str, str] | str = {}  # a preset name ("paper"), or templates per kind
    hub_id: str | None = None  # read the splits from this hub dataset (a mirror of the upstream one)
    hub_config: str | None = None  # the hub dataset's configuration ("main" of openai/gsm8k)
    # A paper *_false_round0.json whose items (the first train_limit of them) become round 0's
    # mistakes instead of examining the student.
    mistakes_file: str | None = None
    # Your own data (task name "dataset"; docs/tasks.md): a file or folder, or hub_id above.
    path: str | None = None
    test_path: str | None = None  # the test split's own file (else split, test_split or test_fraction)
    split: str | None = None  # of a hub dataset or a save_to_disk folder (default "train")
    test_split: str | None = None  # default "test" where there is one, else test_fraction of split
    test_fraction: float | None = Field(default=None, gt=0, lt=1)
    columns: Columns | None = None
    answer: str | None = None  # number | yes-no | choice | text | regex:<pattern>
    license: str | None = None  # for the cards (a hub licence id: "cc-by-4.0", "other")
    description: str | None = None

    @field_validator("answer")
    @classmethod
    def _answer_kind(cls, answer: str | None) -> str | None:
        if answer is None or answer in ANSWER_KINDS:
            return answer
        if answer.startswith("regex:"):
            try:
                pattern = re.compile(answer.removeprefix("regex:"))
            except re.error as e:
                raise ValueError(f"is not a valid regular expression ({e})") from None
            if pattern.match(""):  # "\d*": the last match in any output is the empty one at its end
                raise ValueError(
                    "the pattern matches empty text, so no output's answer could be read: make it match one "
                    "character at least (+ rather than *)"
                )
            return answer
        raise ValueError(f"unknown answer kind: use one of {', '.join(ANSWER_KINDS)}, or regex:<pattern>")

    def source(self) -> dict[str, Any]:
        """The keys that say where a task's problems come from and how they read, as keyword
        arguments for the task's factory: only those set, so a task that takes none gets none."""
        return {k: v for k in SOURCE_KEYS if (v := getattr(self, k)) is not None}


Dollars = Field(default=None, ge=0, strict=True, allow_inf_nan=False)


class Price(Strict):
    """What a teacher's provider charges, in USD: ``input`` and ``output`` per million tokens, or
    litellm's own per-token keys. Set, it wins over litellm's price map: a self-hosted or unlisted
    model then counts against the budget and in the estimate."""

    input: float | None = Dollars
    output: float | None = Dollars
    input_cost_per_token: float | None = Dollars
    output_cost_per_token: float | None = Dollars

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        """A wrong key names the right ones, here rather than as a generic unknown key."""
        use = "use input and output (USD per million tokens), or input_cost_per_token and output_cost_per_token"
        if not isinstance(value, dict):
            raise ValueError("is not a table: write {input = 0.15, output = 0.6}, in USD per million tokens")
        unknown = [k for k in value if k not in cls.model_fields]
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}: {use}")
        given = {k for k, v in value.items() if v is not None}  # a model_dump() holds the other pair as None
        if given not in ({"input", "output"}, {"input_cost_per_token", "output_cost_per_token"}):
            raise ValueError(f"gives {', '.join(sorted(given)) or 'no key'}: {use}, both of one pair")
        return value

    def per_token(self) -> tuple[float, float]:
        """(input, output) USD per token."""
        if self.input is not None and self.output is not None:
            return self.input / 1e6, self.output / 1e6
        return self.input_cost_per_token or 0.0, self.output_cost_per_token or 0.0


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
    options: dict[str, Any] = {}  # backend-specific (replay: files; hf: model path; litellm: transport)
    price: Price | None = None  # None: the backend's own price (litellm's map), if it has one

    @model_validator(mode="before")
    @classmethod
    def _transport_moved(cls, value: Any) -> Any:
        """``transport`` is the litellm backend's own option now (``options.transport``). Every
        config.toml written before holds its default, "auto", which means what no key means: it
        is dropped; any other value is refused with where it went."""
        if not isinstance(value, dict) or "transport" not in value:
            return value
        value = dict(value)
        transport = value.pop("transport")
        if transport != "auto":
            name = value.get("name", "NAME")
            raise ValueError(
                f"transport moved into the litellm backend's options: in teacher {name!r}, write options = "
                f"{{ transport = {transport!r} }} (or --set teachers.{name}.options.transport={transport})"
            )
        return value

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
    # Which rationales compile keeps: those review accepted, or (a control for review) as many
    # items and rationales drawn at random from all of them
    selection: Literal["reviewed", "size-matched"] = "reviewed"
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
    # None: every stage of the pipeline, the plugins' too. The schema knows no stage names: the
    # pipeline (Pipeline.ordered and check, where a run is planned) reads and checks them
    stages: list[str] | None = None

    @field_validator("stages")
    @classmethod
    def _some_stages(cls, stages: list[str] | None) -> list[str] | None:
        if stages is not None and not stages:
            raise ValueError("names no stage: name one or more, or leave the key out to run every stage")
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
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"config file {p} cannot be read ({e.strerror}): check its permissions") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:  # TOML is UTF-8: a Latin-1 comment, say
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"config file {p} line {line} is not UTF-8 text (byte 0x{raw[e.start]:02x}): save it as UTF-8, "
            f"as TOML requires"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {p} is not valid TOML: {e}") from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        data = None
    if data is None or depth(data) > MAX_DEPTH:
        raise ConfigError(f"config file {p} nests arrays or tables more than {MAX_DEPTH} deep: check the file")
    return data


def load(path: str | Path | None, overrides: list[str] | tuple = ()) -> RunConfig:
    data: dict = read(path) if path is not None else {}
    for item in overrides:
        set_key(data, *parse_override(item))
    _find_data(data, Path(path).parent if path is not None else None)
    return validate(data)


def _find_data(data: dict, folder: Path | None) -> None:
    """``task.path`` and ``task.test_path`` given relative and not there from the working
    directory, but beside the config (a config and its CSV in one folder, run from anywhere):
    made absolute, so that the run dir's copy of the config finds it wherever the run is resumed
    from. Otherwise a path stays as written: read from the working directory, else the data folder."""
    task = data.get("task")
    if not isinstance(task, dict) or folder is None:
        return
    for key in ("path", "test_path"):
        value = task.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        if not Path(value).expanduser().is_absolute() and not Path(value).exists() and (folder / value).exists():
            task[key] = os.path.abspath(folder / value)


def dump(config: RunConfig) -> str:
    """TOML text that :func:`load` reads back to an equal config."""
    import tomli_w

    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))
