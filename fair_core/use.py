"""The distilled student in use: ``fair chat`` and ``fair generate``.

A run's student is loaded as its evaluate stage loads it (:meth:`Runner.trained`: the round's
LoRA adapter on the model that started the round, or its fully fine-tuned model), by the run's
own student backend, and is asked in the task's ``student`` prompt: the text it was trained and
scored on. ``raw`` sends the text without that prompt (still through the model's chat template
when the run uses one, as in training).

``generate`` appends one JSON line per question to its output, a batch at a time with one write
each, so a kill loses one batch at most and leaves no half row; a rerun skips the rows there.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .errors import FairError
from .inputs import read_text
from .runs.disk import is_full
from .runs.events import drop_torn_line
from .runs.store import StageStatus

if TYPE_CHECKING:
    from .student import Student


def open_run(run_dir: Path):
    """The run in ``run_dir`` (a :class:`~fair_core.runs.rundir.Run`), refused when it is none: the
    Run class would make one."""
    from .runs.rundir import Run

    if not (run_dir / "run.sqlite").is_file() or not (run_dir / "config.toml").is_file():
        raise FairError(f"{run_dir} is not a run directory (no run.sqlite or config.toml): pass the --run-dir of a run")
    return Run(run_dir)


def trained_round(store, run_dir: Path, round: int | None) -> int:
    """``round``, checked to have a finished train stage; None: the last round that has one."""
    rounds = sorted(r.round for r in store.stages() if r.stage == "train" and r.status == StageStatus.DONE)
    if not rounds:
        raise FairError(
            f"run {run_dir} has no trained student yet: run its train stage "
            f"(fair run {run_dir / 'config.toml'} --run-dir {run_dir})"
        )
    if round is None:
        return rounds[-1]
    if round not in rounds:
        raise FairError(
            f"run {run_dir} has no trained student in round {round}: pass --round "
            f"{' or '.join(map(str, rounds))}, or run that round's train stage"
        )
    return round


def utf8(text: str, what: str) -> str:
    """``text`` as read from argv or stdin, where Python keeps bytes that are not UTF-8 (a Latin-1
    file piped in) as lone surrogates, which no tokenizer takes: refused, naming the first."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        kept = ord(text[e.start]) - 0xDC00  # the byte a surrogate escape keeps
        byte = f" (byte 0x{kept:02x})" if 0x80 <= kept <= 0xFF else ""
        raise FairError(
            f"{what} is not UTF-8 text{byte}: type it in a UTF-8 terminal, or convert the file "
            f"(iconv -f latin1 -t utf-8)"
        ) from None
    return text


class RunStudent:
    """The trained student of one round of a run, with the run's task; a context manager.

    ``settings``: StudentConfig keys that change how it generates (``max_new_tokens``), not
    which model it is."""

    def __init__(self, run_dir: str | Path, round: int | None = None, **settings) -> None:
        from .host import get_host
        from .runner import Runner

        self.path = Path(run_dir)
        self.run = open_run(self.path)
        try:
            self.runner = Runner(self.run, get_host(), stages=[])
            self.round = trained_round(self.run.store, self.path, round)
            self.source = self.runner.trained(self.round)  # (base model folder, adapter or None)
        except BaseException:
            self.run.close()
            raise
        self.task = self.runner.task
        self.config = self.runner.config.student.model_copy(update=settings)
        self._student: Student | None = None

    def student(self) -> Student:
        """The loaded model (loaded on first use: minutes for a large one)."""
        if self._student is None:
            from .student import load

            self._student = load(self.runner.host, self.config, self.source)
        return self._student

    def prompt(self, text: str, raw: bool = False) -> str:
        return text if raw else self.task.prompt("student", question=text)

    def answer(self, texts: list[str], raw: bool = False) -> list[str]:
        return self.student().generate([self.prompt(t, raw) for t in texts])

    def close(self) -> None:
        if self._student is not None:
            self._student.close()
            self._student = None
        self.run.close()

    def __enter__(self) -> RunStudent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# generate --------------------------------------------------------------------------------------
JSON_LINES = (".jsonl", ".ndjson")
TABLES = (".json", ".csv", ".tsv", ".parquet")  # not one question a line: a header would be a question


def read_questions(path: Path) -> list[tuple[str, str]]:
    """(id, question) of each question in ``path``: a ``.jsonl`` file's objects (a ``question``
    string, an optional ``id``; without one, the line number), or else a text file's non-empty
    lines, each one question, its id its line number."""
    suffix = path.suffix.lower()
    if suffix in TABLES:
        raise FairError(
            f"--input {path} is a {suffix} file: pass JSON lines (.jsonl, one object with a "
            f'"question" a line) or plain text (one question a line)'
        )
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # without a byte-order mark
    except OSError as e:
        raise FairError(f"--input {path} cannot be read ({e.strerror}): pass a readable file") from None
    except UnicodeDecodeError:
        read_text(path)  # names the line that is not UTF-8, and the fix
        raise
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if suffix not in JSON_LINES:
            out[str(n)] = line.strip()
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested past the stack
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise FairError(
                f'{path} line {n} is not a JSON object with a "question" string: fix it, or '
                f"pass a plain text file (not .jsonl) with one question a line"
            )
        id = row.get("id")
        if isinstance(id, (dict, list)):
            raise FairError(f"{path} line {n}: id {id!r} is not text or a number: give each question its own id")
        id = str(n if id is None else id)
        if id in out:
            raise FairError(f"{path} line {n}: id {id!r} is used twice: give every question its own id")
        out[id] = row["question"]
    if not out:
        raise FairError(f'{path} holds no questions: one a line, or JSON lines with a "question"')
    return list(out.items())


def written_rows(out: Path) -> dict[str, str]:
    """id -> question of the rows ``out`` already holds; a last line cut short (a disk that
    filled, a machine that lost power) is removed so the rerun writes it whole."""
    rows = {}
    for n, line in enumerate(drop_torn_line(out).decode("utf-8", "replace").splitlines(), 1):
        try:
            row = json.loads(line)
            rows[str(row["id"])] = row["question"]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise FairError(
                f"--out {out} line {n} is not a row fair generate wrote: pass another --out, or remove the file"
            ) from None
    return rows


@contextlib.contextmanager
def _writable(out: Path):
    """--out that this user cannot read or write (its folder is a file, no permission) is a user
    mistake; a full disk is not, and stays what it is (exit 3)."""
    try:
        yield
    except OSError as e:
        if is_full(e):
            raise
        raise FairError(f"--out {out}: cannot write it ({e.strerror}): pass a file you can write") from None


def generate(
    rs: RunStudent, input: Path, out: Path, raw: bool = False, on_progress: Callable[[int, int], None] | None = None
) -> tuple[int, int]:
    """Answer each question of ``input`` not yet in ``out``, appending rows (id, question,
    output, answer: what the task reads as the final answer, or null) a batch at a time;
    (rows written now, rows there before). ``on_progress(done, total)`` after each batch."""
    if out.is_dir():
        raise FairError(f"--out {out} is a folder: pass a file in it, such as {out / 'answers.jsonl'}")
    if out.exists() and input.exists() and out.samefile(input):
        raise FairError(f"--out {out} is the --input file: pass another --out")
    questions = read_questions(input)
    with _writable(out):
        before = written_rows(out)
    for id, question in questions:
        if id in before and before[id] != question:
            raise FairError(
                f"--out {out} holds id {id!r} for another question than {input} has: it answers "
                f"another file; pass a new --out"
            )
    todo = [(id, q) for id, q in questions if id not in before]
    done = len(questions) - len(todo)
    if on_progress:
        on_progress(done, len(questions))
    if not todo:
        return 0, done
    size = rs.config.batch_size
    with _writable(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            outputs = rs.answer([q for _, q in batch], raw)
            rows = [
                {"id": id, "question": q, "output": o, "answer": rs.task.extract(o)}
                for (id, q), o in zip(batch, outputs)
            ]
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
            while data:  # one write: a kill lands between batches, never inside a row
                data = data[os.write(fd, data) :]
            if on_progress:
                on_progress(done + start + len(batch), len(questions))
    finally:
        os.close(fd)
    return len(todo), done
