"""The FAIR paper's released JSON, in and out.

The paper releases, per task and round, ``*_false_round0.json`` (the student's mistakes),
``*_feedback_round0.json`` (each teacher's feedback) and ``*_rationale_round0.json`` (each
teacher's rationale with the scores of its reviewers and the accepted list). Importing them
fills a run; exporting a run writes the same files back, so the paper's training code can read
our data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import DataError
from .inert import inert_json
from .inputs import read_json
from .runs.records import Mistake, Review, Writing
from .runs.store import Store

COMMON = ("id", "question", "gold_answer", "student_wrong_pred", "student_wrong_final_answer")
KINDS = ("false", "feedback", "rationale")
_NAME = re.compile(
    r"^(?P<student>.+)_(?P<task>[A-Za-z0-9]+)_(?P<kind>false|feedback|rationale)_round(?P<round>\d+)\.json$"
)


def parse_name(path: Path) -> dict:
    m = _NAME.match(path.name)
    if not m:
        raise DataError(
            f"{path.name} is not a paper file: expected <student>_<task>_false|feedback|rationale_round<N>.json"
        )
    return m.groupdict()


# what each common key of a paper item may hold (the released files have an int id and strings);
# a number where an answer is due is read as its text, and a student may have given no answer
TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "id": ((int, str), "a number or text"),
    "question": ((str,), "text"),
    "gold_answer": ((str, int, float), "text or a number"),
    "student_wrong_pred": ((str,), "text"),
    "student_wrong_final_answer": ((str, int, float, type(None)), "text, a number or null"),
}
ANSWERS = ("gold_answer", "student_wrong_final_answer")


def read(path: str | Path) -> list[dict]:
    """A paper file's items, each checked to hold the common keys with the types the released files
    have: a wrong one is refused with the item named, never stored (a dict for a question, a null gold)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"paper file {p} does not exist: pass the released *_roundN.json files")
    try:
        data = read_json(p)
    except DataError as e:
        raise DataError(f"paper file {e}: re-download it") from None
    if not isinstance(data, list) or not all(isinstance(x, dict) and set(COMMON) <= set(x) for x in data):
        raise DataError(f"paper file {p} is not a list of items with keys {', '.join(COMMON)}")
    for i, item in enumerate(data):
        for key, (kinds, allowed) in TYPES.items():
            value = item[key]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise DataError(
                    f"paper file {p} item {i} (id {json.dumps(item['id'])[:20]}): {key} is "
                    f"{json.dumps(value)[:40]}, not {allowed}: fix or drop that item"
                )
        for key in ANSWERS:
            if isinstance(item[key], (int, float)):
                item[key] = str(item[key])
    return data


def teachers_of(items: list[dict], suffix: str) -> list[str]:
    """Teacher names in the order of the file's keys (``gpt_feedback`` -> ``gpt``)."""
    return [k[: -len(suffix)] for k in items[0] if k.endswith(suffix) and k != "correct_rationale"] if items else []


def reviewers_of(author: str, teachers: list[str]) -> list[str]:
    """The paper's reviewer order: the other teachers, in committee order."""
    return [t for t in teachers if t != author]


def mistakes_from(items: list[dict], round: int, extract) -> list[Mistake]:
    return [
        Mistake(
            round,
            str(x["id"]),
            x["question"],
            extract(x["gold_answer"]) or x["gold_answer"],
            x["student_wrong_pred"],
            x["student_wrong_final_answer"],
            {"id": x["id"], "gold_answer": x["gold_answer"]},
        )
        for x in items
    ]


def import_files(store: Store, paths: list[Path], extract, parse_score) -> dict:
    """Load paper files into ``store``; returns what was imported. Verdicts are left to the
    caller's review policy."""
    files = {}
    for p in paths:
        info = parse_name(Path(p))
        files[info["kind"]] = (Path(p), info)
    rounds = {int(i["round"]) for _, i in files.values()}
    if len(rounds) != 1:
        raise DataError("paper files of several rounds given: import one round at a time")
    round = rounds.pop()
    loaded = {kind: read(path) for kind, (path, _info) in files.items()}
    texts = {  # every teacher's text, checked in every file before anything is stored
        kind: {
            (i, t): _writing(files[kind][0], i, x, f"{t}_{kind}")
            for i, x in enumerate(loaded[kind])
            for t in teachers_of(loaded[kind], f"_{kind}")
        }
        for kind in ("feedback", "rationale")
        if kind in loaded
    }
    teachers = next((teachers_of(loaded[kind], f"_{kind}") for kind in loaded if kind in texts), [])
    # named before any record is stored: an import cut short (a kill) is taken up again by the same
    # files, where other files are refused beside the records it left
    store.set_meta("paper", {"round": round, "teachers": teachers, "files": {k: p.name for k, (p, _) in files.items()}})
    items_held = store.count_mistakes(round)
    for kind, items in loaded.items():
        if kind == "false" or not items_held:
            store.add_mistakes(mistakes_from(items, round, extract))
            items_held = len(items)
        if kind in texts:
            names = teachers_of(items, f"_{kind}")
            store.add_records(
                Writing(round, str(items[i]["id"]), kind, t, text) for (i, t), text in texts[kind].items()
            )
        if kind == "rationale":
            store.add_records(
                Review(
                    round,
                    str(x["id"]),
                    "rationale",
                    t,
                    reviewer,
                    json.dumps(score),
                    parse_score(str(score)) if isinstance(score, int) else None,
                )
                for x in items
                for t in names
                for reviewer, score in zip(reviewers_of(t, names), x[f"{t}_rationale"][1:])
            )
    return {"round": round, "teachers": teachers, "items": store.count_mistakes(round), "files": sorted(files)}


def _writing(path: Path, i: int, item: dict, key: str) -> str:
    """A teacher's text in a paper item: ``<t>_feedback`` is the text, ``<t>_rationale`` a list
    that starts with it (its reviewers' scores follow); anything else is refused with the item named."""
    value = item.get(key)
    text = value[0] if key.endswith("_rationale") and isinstance(value, list) and value else value
    if not isinstance(text, str):
        shape = "a list that starts with its text" if key.endswith("_rationale") else "text"
        raise DataError(
            f"paper file {path} item {i} (id {json.dumps(item['id'])[:20]}): {key} is "
            f"{json.dumps(value)[:40]}, not {shape}: fix or drop that item"
        )
    return text


def _paper_score(raw: str | None, parsed: int | None):
    """An imported review's score as the paper wrote it (an int, or whatever text it kept)."""
    try:
        return json.loads(raw) if raw else parsed
    except ValueError:
        return parsed


def export_files(
    store: Store, out: Path, round: int = 0, teachers: list[str] | None = None, names: dict[str, str] | None = None
) -> list[Path]:
    """Write the paper's three files for ``round`` from the store. A live run's reviews go out as
    their parsed scores, with the reviewers' text beside them (``<teacher>_review_text``)."""
    meta = store.get_meta("paper") or {}
    writings = {(w.item_id, w.kind, w.author): w.text for w in store.writings(round)}
    teachers = teachers or meta.get("teachers") or sorted({author for _, _, author in writings})
    names = names or meta.get("files") or {k: f"fair_task_{k}_round{round}.json" for k in KINDS}
    reviews = {(r.item_id, r.author, r.reviewer): r for r in store.reviews(round, "rationale")}
    imported = bool(meta)  # the paper's own scores, kept as JSON; a live reviewer's are free text
    scores = {k: _paper_score(r.raw, r.score) if imported else r.score for k, r in reviews.items()}
    accepted = {(v.item_id, v.author) for v in store.verdicts(round, "rationale") if v.accepted}
    base = [
        {
            "id": m.extra.get("id", m.item_id),
            "question": m.question,
            "gold_answer": m.extra.get("gold_answer", m.gold),
            "student_wrong_pred": m.wrong_output,
            "student_wrong_final_answer": m.wrong_answer,
        }
        for m in store.mistakes(round)
    ]
    docs: dict[str, list[dict]] = {"false": base, "feedback": [], "rationale": []}
    for item in base:
        iid = str(item["id"])
        docs["feedback"].append({**item, **{f"{t}_feedback": writings.get((iid, "feedback", t), "") for t in teachers}})
        rat = {
            f"{t}_rationale": [
                writings.get((iid, "rationale", t), ""),
                *[scores.get((iid, t, r)) for r in reviewers_of(t, teachers)],
            ]
            for t in teachers
        }
        if not imported:  # the score as parsed above, the reviewer's own words beside it
            rat.update(
                {
                    f"{t}_review_text": [
                        getattr(reviews.get((iid, t, r)), "raw", None) for r in reviewers_of(t, teachers)
                    ]
                    for t in teachers
                }
            )
        rat["correct_rationale"] = [
            writings[(iid, "rationale", t)]
            for t in teachers
            if (iid, t) in accepted and (iid, "rationale", t) in writings
        ]
        docs["rationale"].append({**item, **rat})
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        if kind not in names:
            continue
        path = out / names[kind]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(inert_json(docs[kind], indent=4), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
