"""The Hugging Face hub: ``fair push`` sends a run's dataset, LoRA adapter or merged model there
with its card, and a pushed adapter comes back by its repo id (``fair eval --adapter OWNER/NAME``).

huggingface_hub finds the token itself (``HF_TOKEN``, or what ``hf auth login`` saved). A new
repo is private unless ``public``: distilled data carries teacher outputs whose terms may not
allow publishing it. Nothing here runs unless asked: the tests run it against a mocked HfApi.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import FairError
from ..student import adapter_config, is_hub_id
from .card import Facts, model_card

# what each push reads in a round's folder (the first found), and the fix when no round has it
SOURCES = {"dataset": ("train.jsonl",), "adapter": ("adapter",), "model": ("merged", "model")}
MISSING = {
    "dataset": "no compiled training data: run its compile stage first",
    "adapter": 'no trained LoRA adapter (rounds/N/adapter): run its train stage with train.method = "lora"',
    "model": "no merged model (rounds/N/merged): rerun its train stage with --set train.merge=true, "
    "or push the adapter with --what adapter",
}


def latest_round(run_dir: Path, what: str) -> int:
    """The last round whose folder holds what ``what`` pushes."""
    rounds = sorted(
        (
            int(d.name)
            for d in (run_dir / "rounds").glob("*")
            if d.name.isdigit() and any((d / name).exists() for name in SOURCES[what])
        ),
        reverse=True,
    )
    if not rounds:
        raise FairError(f"run {run_dir} has {MISSING[what]}")
    return rounds[0]


def _linked(src: Path, dst: Path) -> None:
    """``src``'s files as symlinks under ``dst``: a model is staged with its card without a copy."""
    for path in src.rglob("*"):
        if path.is_file():
            (dst / path.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path.resolve(), dst / path.relative_to(src))


def stage(run_dir: Path, round: int, what: str, folder: Path, repo: str) -> None:
    """Lay out in ``folder`` what a push of ``what`` uploads: the ``hf`` export with its card,
    or the adapter or model with a model card."""
    if what == "dataset":
        from .export import export

        export(run_dir, "hf", folder, round)
        return
    source = next(
        (run_dir / "rounds" / str(round) / n for n in SOURCES[what] if (run_dir / "rounds" / str(round) / n).is_dir()),
        None,
    )
    if source is None:
        raise FairError(f"run {run_dir} has {MISSING[what].replace('rounds/N', f'rounds/{round}')}")
    facts = Facts(run_dir, round)
    # the model every round started from; a later round's adapter sits on round N-1's merged student
    student = facts.config.student.model
    base = student if is_hub_id(student) and not Path(student).exists() and (what == "model" or round == 0) else ""
    _linked(source, folder)
    if what == "adapter" and base:  # the trainer recorded a local path: name what others can load
        settings = adapter_config(source)
        (folder / "adapter_config.json").unlink()
        (folder / "adapter_config.json").write_text(json.dumps({**settings, "base_model_name_or_path": base}, indent=2))
    (folder / "README.md").unlink(missing_ok=True)
    (folder / "README.md").write_text(model_card(facts, what, base, repo), encoding="utf-8")


def push(run_dir: Path, repo: str, what: str = "dataset", public: bool = False, round: int | None = None) -> str:
    """Create ``repo`` (if needed) and upload what ``what`` names as one commit; its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not (run_dir / "run.sqlite").is_file():
        raise FairError(f"{run_dir} is not a run directory (no run.sqlite): pass the --run-dir of a run")
    try:
        validate_repo_id(repo)
    except HFValidationError:
        raise FairError(f"{repo!r} is not a hub repo id: use OWNER/NAME") from None
    round = latest_round(run_dir, what) if round is None else round
    repo_type = "dataset" if what == "dataset" else "model"
    with tempfile.TemporaryDirectory(prefix="fair-push-") as tmp:
        stage(run_dir, round, what, Path(tmp), repo)
        api = HfApi()
        try:
            url = api.create_repo(repo, repo_type=repo_type, private=not public, exist_ok=True)
            api.upload_folder(
                repo_id=repo, folder_path=tmp, repo_type=repo_type, commit_message=f"fair push: {what} of round {round}"
            )
        except Exception as e:  # noqa: BLE001 - network, auth, hub: one line that says which
            raise FairError(failure(e, repo)) from None
    return str(url)


def failure(e: Exception, repo: str) -> str:
    """A hub error as one line with its fix."""
    why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status in (401, 403) or "token" in type(e).__name__.lower():
        return (
            f"the hub refused the push to {repo} ({why}): set HF_TOKEN to a token with write access, "
            f"or run `hf auth login`"
        )
    return f"the push to {repo} failed ({type(e).__name__}: {why}): check the network and the repo id"
