"""Cards for what leaves a run: a dataset card for every export, a model card for a pushed
adapter or model. The hub reads their YAML front matter (licence, task, tags, data files); the
body says where the data came from, so a reader can judge it without the run directory."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig, TaskConfig
from ..config import load as load_config
from ..version import __version__
from .formats import Format
from .report import build

PAPER = "Li, Ji, Meng, He: Learning from Committee, ACL Findings 2025, arXiv 2410.03663"


def _task(config: TaskConfig) -> object | None:
    """The run's task, for what it says of its data (licence, upstream, description); None where
    its plugin is not loaded here or its config no longer builds."""
    from ..errors import FairError
    from ..host import get_host

    try:
        return get_host().task(config)
    except FairError:
        return None


def _size(n: int) -> str:
    """The hub's size category for ``n`` rows."""
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "n>1M"


def _number(x) -> str:
    return "-" if x is None else f"{x:g}" if isinstance(x, float) else str(x)


class Facts:
    """What a card says of a run: its config, its report and the round's figures."""

    def __init__(self, run_dir: Path, round: int) -> None:
        path = run_dir / "config.toml"
        self.config = load_config(path) if path.is_file() else RunConfig()
        self.report = build(run_dir)
        self.round = round
        self.figures: dict = next((r for r in self.report["rounds"] if r["round"] == round), {})
        self.task = self.config.task.name
        source = _task(self.config.task)
        self.licence = getattr(source, "license", None) or "unknown"
        self.upstream = getattr(source, "upstream", None)
        self.description = getattr(source, "description", None)

    def tags(self) -> list[str]:
        return ["fair", "distillation", "reasoning", "peer-review", self.task]

    def committee(self) -> str:
        """The committee section: teachers and models, review, acceptance, agreement, cost."""
        c = self.config.committee
        models = {t.name: (t.backend, t.model) for t in self.config.teachers}
        rows = [
            "| teacher | backend | model | rationales | accepted | acceptance | mean score received | cost (USD) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, s in self.report["per_teacher"].items():
            backend, model = models.get(name, ("-", "-"))
            figures = (s["written"], s["accepted"], s["acceptance"], s["mean_score_received"], s["cost_usd"])
            rows.append(f"| {name} | {backend} | {model or '-'} | " + " | ".join(map(_number, figures)) + " |")
        agreement = self.figures.get("agreement") or {}
        return "\n".join(
            [
                "## Committee",
                "",
                f"Task **{self.task}**, round {self.round}: {self.figures.get('items', 0)} student mistakes, "
                f"{self.figures.get('accepted_rationales', 0)} accepted rationales; mistakes left without one "
                f"(dropped): {_number(self.figures.get('items_without_rationale'))}. Per teacher, over the whole run:",
                "",
                *rows,
                "",
                f"- review: policy `{c.policy}`, threshold {c.threshold:g}, parser `{c.parser}`, reviewers "
                f"`{c.assignment}`, feedback reviewed: {c.review_feedback}, answer verified: {c.verify_answer}",
                f"- compiled: mode `{c.compile_mode}`"
                + (f", from teachers {', '.join(c.distil_from)}" if c.distil_from else ", from every teacher"),
                f"- reviewer agreement on the rationale scores: Krippendorff's alpha "
                f"{_number(agreement.get('krippendorff_alpha_interval'))} (interval), "
                f"{_number(agreement.get('krippendorff_alpha_ordinal'))} (ordinal); Fleiss' kappa "
                f"{_number(agreement.get('fleiss_kappa'))}",
                f"- cost of the whole run's teacher calls: ${self.report['cost_usd']:.4f}",
            ]
        )

    def provenance(self) -> str:
        source = f"[{self.task}]({self.upstream})" if self.upstream else self.task
        licence = (
            "not stated upstream: check it before you publish" if self.licence == "unknown" else self.licence.upper()
        )
        student = self.config.student
        return "\n".join(
            [
                "## Provenance",
                "",
                f"- made by fair {__version__}, by the FAIR method ({PAPER})",
                f"- questions and gold answers: {source}, licence {licence}"
                + (f": {self.description}" if self.description else ""),
                f"- student: `{student.model or '-'}`"
                + (f" with the adapter `{student.adapter}`" if student.adapter else "")
                + f", trained by `{self.config.train.method}`",
                "- feedback and rationales: written by the teacher models above; their providers' terms of use apply",
            ]
        )


def dataset_card(f: Facts, fmt: Format, counts: dict[str, dict[str, int]] | None, data_files: dict[str, str]) -> str:
    """README.md of an export in ``fmt``: ``counts`` (split -> kind -> rows) for the trainable formats,
    ``data_files`` (split -> path glob) tells the hub which files are which split."""
    from huggingface_hub import DatasetCardData

    rows = sum(sum(c.values()) for c in counts.values()) if counts else f.figures.get("items", 0)
    meta = DatasetCardData(
        license=f.licence,
        language=["en"],
        task_categories=["text-generation"],
        tags=f.tags(),
        size_categories=[_size(rows)],
        pretty_name=f"fair {f.task} round {f.round} ({fmt.name})",
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": p} for s, p in data_files.items()]}]
        if data_files
        else None,
    )
    body = [
        f"# fair distillation data: {f.task}, round {f.round}",
        "",
        f"Instruction data distilled by fair from a committee of LLMs that explained a student's mistakes "
        f"and peer-reviewed each other's rationales. Format `{fmt.name}`: {fmt.note}",
        "",
    ]
    if counts:
        t = f.config.train
        body += [
            "## Training on it",
            "",
            "| split | feedback | rationale |",
            "|---|---|---|",
            *[f"| {s} | {c.get('feedback', 0)} | {c.get('rationale', 0)} |" for s, c in counts.items()],
            "",
            f"Each row is one example; `kind` says whether it teaches from a teacher's feedback on the "
            f"student's mistake or from an accepted rationale, and `item_id` which mistake it came from (a "
            f"mistake's two examples share a split). fair trains on alpha * L_feedback + (1 - alpha) * "
            f"L_rationale with alpha = {t.alpha:g}, each the mean loss over the response tokens of its kind; "
            f"a trainer with one loss over every row weights the kinds by their token counts instead.",
            "",
            "The prompts are the exact text fair's student trains on, "
            + (
                "through its chat template: the prompt is the only user turn (in `prompt-completion` too)."
                if f.config.student.chat_template
                else "as plain text, with no chat template (`prompt-completion` holds strings; use `alpaca` with "
                "LLaMA-Factory's `empty` template)."
            ),
            "",
        ]
    body += [f.committee(), "", f.provenance(), ""]
    return f"---\n{meta.to_yaml()}\n---\n\n" + "\n".join(body)


def model_card(f: Facts, what: str, base_model: str, repo: str) -> str:
    """README.md of ``repo``: a pushed ``adapter`` (LoRA, loaded on ``base_model``) or merged ``model``."""
    from huggingface_hub import ModelCardData

    t = f.config.train
    meta = ModelCardData(
        library_name="peft" if what == "adapter" else "transformers",
        base_model=base_model or None,
        pipeline_tag="text-generation",
        tags=f.tags(),
        language=["en"],
    )
    test = f.report["test"]
    loader = "peft import AutoPeftModelForCausalLM" if what == "adapter" else "transformers import AutoModelForCausalLM"
    load = f"from {loader}\nmodel = {loader.split()[-1]}.from_pretrained({repo!r})"
    accuracy = " -> ".join(
        f"{r['accuracy']:.1%} of {r['n']} items" for r in (test["before"], test["after"]) if r and r["n"]
    )
    body = [
        f"# fair student: {f.task}, round {f.round} ({what})",
        "",
        f"{'A LoRA adapter for' if what == 'adapter' else 'A fine-tune of'} `{base_model or '?'}`, distilled "
        f"by fair from a committee of LLMs (FAIR: feedback on the student's mistakes and peer-reviewed "
        f"rationales).",
        "",
        f"- training: `{t.method}`, alpha {t.alpha:g}, {t.epochs:g} epochs, learning rate {t.learning_rate:g}"
        + (f", LoRA r {t.lora_r}" if t.method != "full" else ""),
        f"- test accuracy (items never trained on, before -> after): {accuracy or 'not evaluated'}",
        "",
        "```python",
        load,
        "```",
        "",
        f.committee(),
        "",
        f.provenance(),
        "",
    ]
    return f"---\n{meta.to_yaml()}\n---\n\n" + "\n".join(body)
