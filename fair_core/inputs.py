"""Reading the files a user or a dataset hands fair (task data, paper files) as untrusted input:
every way such a file can be wrong (unreadable, not UTF-8, not JSON, nested deep enough to
exhaust the stack) is one DataError that names the file, and the line where there is one.

Task plugins read their files through :func:`read_text` and :func:`parse_json` (as
``fair_tasks.base.read_json`` and ``read_jsonl`` do), so a new reader gets the same guarantees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import DataError

# Far deeper than any record fair reads (a paper item is 3 levels), far shallower than the stack:
# a value this deep would only crash the code that later walks it (storing, dumping, comparing).
MAX_DEPTH = 100


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``, without a byte-order mark (as Windows editors write one); a
    missing or unreadable file is one DataError, and so is one that is not UTF-8, naming the line
    of its first byte that is not (a Latin-1 "é", say)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}".splitlines()[0]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text: save it as UTF-8") from None


def parse_json(text: str, where: str | Path, line: int | None = None) -> Any:
    """``text`` as JSON. ``where`` names its file in errors, and ``line`` its line there when
    ``text`` is one line of the file (a JSON Lines record). Not JSON, or nested more than
    MAX_DEPTH levels, is one DataError: the C decoder's RecursionError never gets out."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        row = e.lineno if line is None else line
        raise DataError(f"{where}:{row}: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        data = None
    else:
        if depth(data) <= MAX_DEPTH:
            return data
    at = str(where) if line is None else f"{where}:{line}"
    raise DataError(f"{at}: nested more than {MAX_DEPTH} levels deep (no data fair reads is)")


def read_json(path: str | Path) -> Any:
    """The JSON value in the file at ``path``, with :func:`parse_json`'s one-line errors."""
    return parse_json(read_text(path), path)


def depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, d = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        level.extend((child, d + 1) for child in children)
    return deepest
