"""The replay teacher: serves a recorded committee, such as the FAIR paper's released SVAMP data.

Requests are matched to records by content: the question inside the prompt picks the item, and
for a review, the rationale quoted in the prompt picks the reviewed author. A request with no
record fails that one call (a clear per-item failure), never the run.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fair_core.errors import FairError
from fair_core.gateway.backend import Backend, Completion, PermanentError, Request
from fair_core.paper import read, reviewers_of, teachers_of
from fair_core.task import data_root

DEFAULT_FILES = (
    "fair-reference/Llama-2-7b-chat-hf_svamp_feedback_round0.json",
    "fair-reference/Llama-2-7b-chat-hf_svamp_rationale_round0.json",
)


def resolve(path: str) -> Path:
    p, root = Path(path), data_root()
    if not p.exists() and not p.is_absolute() and root is not None:
        p = root / path
    if not p.is_file():
        where = (
            f"the data dir {data_root()}"
            if data_root() is not None
            else "the data dir, which was not found (set FAIR_DATA_DIR)"
        )
        raise FairError(
            f"replay file {path} does not exist: give a path to a paper *_round0.json file "
            f"(absolute, or relative to {where})"
        )
    return p


@lru_cache(maxsize=8)
def _index(paths: tuple[Path, ...]) -> tuple[dict[str, dict], list[str]]:
    """question -> merged record of all files, and the committee's order of teachers."""
    items: dict[str, dict] = {}
    teachers: list[str] = []
    for path in paths:
        data = read(path)
        teachers = teachers or teachers_of(data, "_rationale")
        for x in data:
            items.setdefault(x["question"], {}).update(x)
    return items, teachers


class ReplayTeacher(Backend):
    def __init__(self, config) -> None:
        super().__init__(config)
        self.column = config.options.get("column", config.name)
        self.files = tuple(config.options.get("files", DEFAULT_FILES))

    def check(self) -> None:
        paths = tuple(resolve(f) for f in self.files)
        items, _ = _index(paths)
        first = next(iter(items.values()), {})
        if not any(k.startswith(self.column + "_") for k in first):
            raise FairError(
                f"teacher {self.config.name!r}: the replay files have no records of "
                f"{self.column!r}: set options.column to one of their teachers"
            )

    def local(self) -> bool:
        return True  # answers from files: nothing is billed

    def _record(self, prompt: str) -> dict:
        items, _ = _index(tuple(resolve(f) for f in self.files))
        matches = [q for q in items if q in prompt]
        if not matches:
            raise PermanentError("replay: no recorded item has this question")
        return items[max(matches, key=len)]

    async def complete(self, request: Request) -> Completion:
        prompt = request.messages[-1]["content"]
        record = self._record(prompt)
        if request.purpose == "explain":
            return Completion(self._field(record, f"{self.column}_feedback"))
        if request.purpose == "solve":
            return Completion(self._field(record, f"{self.column}_rationale")[0])
        if request.purpose == "review":
            return Completion(self._score(record, prompt, request.meta.get("author")))
        raise PermanentError(f"replay: nothing recorded for {request.purpose!r} requests")

    def _field(self, record: dict, key: str):
        if key not in record:
            raise PermanentError(f"replay: no recorded {key}")
        return record[key]

    def _score(self, record: dict, prompt: str, hint: str | None) -> str:
        _, teachers = _index(tuple(resolve(f) for f in self.files))
        quoted = [
            t
            for t in teachers
            if f"{t}_rationale" in record
            and record[f"{t}_rationale"][0].strip()
            and record[f"{t}_rationale"][0].strip() in prompt
        ]
        if not quoted:
            raise PermanentError("replay: the reviewed rationale is not a recorded one")
        # identical rationales are told apart by the author the engine names, if any
        author = hint if hint in quoted else max(quoted, key=lambda t: len(record[f"{t}_rationale"][0]))
        reviewers = reviewers_of(author, teachers)
        if self.column not in reviewers:
            raise PermanentError(f"replay: {self.column} did not review {author}'s rationale")
        return f"[{record[f'{author}_rationale'][1 + reviewers.index(self.column)]}]"

    def identity(self) -> dict:
        return {"backend": "replay", "column": self.column, "files": list(self.files)}
