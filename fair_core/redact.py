"""Secrets kept out of everything fair stores or prints.

A provider or a proxy may echo the key it was sent ("Incorrect API key provided: sk-...") in an
error body, which would then be stored in run.sqlite, written to events.jsonl and the ``--events``
stream, and printed on the run's last line into a CI log. The gateway registers the value of every
teacher's ``api_key_env`` here (:func:`keep_secret`) before its first call, and :func:`redact` is
applied where a provider's text enters fair (the gateway, and a backend before it clips a message,
so no partial key survives a cut) and again where fair prints (the log, the last line).

An echo need not be the plain value: a body may hold the key JSON-escaped (``\\/``, ``\\u006b``) or
URL-encoded (a redirect's query), or cut by a line break, a zero-width space or an escape sequence
that :func:`~fair_core.inert.inert` removes before a terminal shows the rest whole. A known key is
therefore found by a pattern that reads each of its characters in any of those forms, with any of
those cuts between them.
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

from .inert import ACTIVE, SEQUENCE, inert

REDACTED = "[redacted]"
SHORTEST = 8  # a shorter value is no real key, and replacing it would garble ordinary words
_known: dict[str, re.Pattern[str]] = {}
# what may cut a key and still leave it readable: whitespace, controls and invisible characters, an
# escape sequence (whole, as inert takes it out), and their JSON escapes (\n, \u200b). Each piece is
# read one way only (atomic), and escapes nest at most 8 deep, so that no text makes the search
# backtrack without end; a whole piece may still be given back, to a key that holds "\n" itself.
_ESCAPED = r"\\{1,8}"
_CUT = (
    rf"(?:(?>{SEQUENCE}|\s|[\x00-\x1f{ACTIVE}\u200b-\u200f\u2060\ufeff]"
    rf"|{_ESCAPED}[nrt]|{_ESCAPED}u(?i:00[01][0-9a-f]|200[b-f]|feff)))*"
)
# the environment variables a provider's SDK reads its key from (OPENAI_API_KEY, HF_TOKEN...): a
# teacher without api_key_env sends one of them
_CREDENTIAL = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD)$", re.I)
# what a credential looks like in an error body when it is not one fair knows: a bearer token, an
# api-key field, or a provider's key shape (OpenAI and Anthropic sk-, Groq gsk_, Hugging Face hf_,
# xAI xai-, Google AIza), long enough that a file name such as "chat-hf_svamp_round0" is no key
_SHAPES = re.compile(
    r"(?P<keep>(?i:\bbearer\s+|\bapi[-_ ]?key\b[\"']?\s*[:=]\s*[\"']?))[A-Za-z0-9._~+/*=-]{8,}"
    r"|\b(?:sk|rk|pk)-[A-Za-z0-9_*-]{20,}|\b(?:gsk_|hf_|xai-)[A-Za-z0-9]{20,}|\bAIza[0-9A-Za-z_-]{30,}"
)


def keep_secret(value: str | None) -> None:
    """Redact ``value`` from now on, wherever :func:`redact` is applied in this process."""
    value = (value or "").strip()
    if len(value) >= SHORTEST and value not in _known:
        _known[value] = re.compile(_CUT.join(map(_forms, value)))
        ordered = sorted(_known.items(), key=lambda kv: -len(kv[0]))  # a key that holds another goes first
        _known.clear()
        _known.update(ordered)


def keep_environment_secrets() -> None:
    """Redact the value of every environment variable named like a credential."""
    for name, value in os.environ.items():
        if _CREDENTIAL.search(name):
            keep_secret(value)


def _forms(char: str) -> str:
    """A pattern for ``char`` as it is, JSON-escaped (``\\"``, ``\\u0041``, nested up to 8 deep) or URL-encoded."""
    forms = [re.escape(char), f"{_ESCAPED}{re.escape(char)}" if char in '"\\/' else ""]
    if len(char.encode("utf-16-le")) == 2:  # a JSON \u escape of one code unit
        forms.append(f"{_ESCAPED}u(?i:{ord(char):04x})")
    if quote(char, safe="") != char:
        forms.append(f"(?i:{re.escape(quote(char, safe=''))})" + ("|\\+" if char == " " else ""))
    return f"(?:{'|'.join(f for f in forms if f)})"


def redact(text: str, shapes: bool = True) -> str:
    """``text`` with every known secret replaced by ``[redacted]``, in whatever form it is echoed
    (see above); with ``shapes``, also anything shaped like a credential: for a provider's error
    text (a teacher's answer keeps its words, and fair's own lines their file names)."""
    for pattern in _known.values():  # longest first (keep_secret)
        text = pattern.sub(REDACTED, text)
    if shapes:
        text = _SHAPES.sub(lambda m: (m.group("keep") or "") + REDACTED, text)
    return text


def shown(text: str) -> str:
    """``text`` as fair writes it to stderr (its last line, its log): inert, and every known key
    redacted, whatever it quotes."""
    return redact(inert(text), shapes=False)
