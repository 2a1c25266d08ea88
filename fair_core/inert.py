"""Untrusted text made inert before a terminal shows it.

Teachers' answers and errors, datasets' questions and plugins' messages are untrusted input: an
escape sequence in them would reach the terminal as a command (clear the screen, retitle the window,
write an OSC 8 link), and a ``[`` would be read as Rich or Textual markup (a live link, or a
MarkupError that loses the line). :func:`inert` is the one gate every such text passes on its way
to the console, the last line, the log, ``fair report`` and the TUI.
"""

from __future__ import annotations

import json
import re

# what a terminal may act on beyond C0: DEL, C1 (0x9b is CSI to some terminals), and the bidi
# overrides and isolates that make a line read differently from what it holds (a character class)
ACTIVE = "\x7f-\x9f\u202a-\u202e\u2066-\u2069"
# whole escape sequences first (so their parameters do not survive as stray text), then any control
# left: C0 but tab and newline, and the ACTIVE ones
# A string's body stops at any introducer too: else each of a run of unterminated introducers
# scanned to the end of the text, and 40,000 of them took seconds.
_BODY = r"[^\x07\x1b\x9c\x90\x98\x9d-\x9f]*(?:\x07|\x1b\\|\x9c)"
SEQUENCE = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, erasing, colours
    rf"|\x1b[\]PX^_]{_BODY}"  # OSC (titles, links), DCS, SOS, PM, APC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI in its 8-bit form
    rf"|[\x90\x98\x9d-\x9f]{_BODY}"  # their 8-bit forms
    r"|\x1b[ -/]*[0-~]?"  # any other escape; an unterminated one above loses just its introducer
)
_SEQUENCE = re.compile(SEQUENCE)
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f{ACTIVE}]")
_ACTIVE = re.compile(f"[{ACTIVE}]")


def inert(text: object, markup: bool = False) -> str:
    """``text`` with every escape sequence and control character removed (newlines and tabs kept;
    a carriage return ends a line as a newline does); with ``markup``, also escaped for Rich markup,
    so that it shows exactly as written. Textual's markup reads more (``[$accent]``): a widget gets
    the inert text as a ``Text`` or ``Content``, never as markup."""
    clean = _CONTROL.sub("", _SEQUENCE.sub("", str(text).replace("\r\n", "\n").replace("\r", "\n")))
    if not markup:
        return clean
    from rich.markup import escape  # here: the log and the last line import this module, and rich is slow to load

    return escape(clean)


def inert_json(obj: object, **dumps) -> str:
    """``obj`` as JSON (``json.dumps`` with ``ensure_ascii=False`` and ``dumps``) with what JSON leaves
    raw but a terminal may act on, the ACTIVE characters, written as ``\\u`` escapes: the same JSON,
    and a file or stream of it shown in a terminal stays inert (JSON escapes C0 itself)."""
    return _ACTIVE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False, **dumps))
