"""Secrets kept out of everything fair stores or prints.

A provider or a proxy may echo the key it was sent ("Incorrect API key provided: sk-...") in an
error body, which would then be stored in run.sqlite, written to events.jsonl and the ``--events``
stream, and printed on the run's last line into a CI log. The gateway registers the value of every
teacher's ``api_key_env`` here (:func:`keep_secret`) before its first call, and :func:`redact` is
applied where a provider's text enters fair (the gateway, and a backend before it clips a message,
so no partial key survives a cut) and again where fair prints (the log, the last line).
"""

from __future__ import annotations

import re

from .inert import inert

REDACTED = "[redacted]"
SHORTEST = 8  # a shorter value is no real key, and replacing it would garble ordinary words
_known: set[str] = set()
# what a credential looks like in an error body when it is not one fair knows: a bearer token, an
# api-key field, or a provider's key shape (OpenAI and Anthropic sk-, Groq gsk_, Hugging Face hf_,
# xAI xai-, Google AIza), long enough that a file name such as "chat-hf_svamp_round0" is no key
_SHAPES = re.compile(
    r"(?P<keep>(?i:\bbearer\s+|\bapi[-_ ]?key\b[\"']?\s*[:=]\s*[\"']?))[A-Za-z0-9._~+/*=-]{8,}"
    r"|\b(?:sk|rk|pk)-[A-Za-z0-9_*-]{20,}|\b(?:gsk_|hf_|xai-)[A-Za-z0-9]{20,}|\bAIza[0-9A-Za-z_-]{30,}"
)


def keep_secret(value: str | None) -> None:
    """Redact ``value`` from now on, wherever :func:`redact` is applied in this process."""
    if value and len(value.strip()) >= SHORTEST:
        _known.add(value.strip())


def redact(text: str, shapes: bool = True) -> str:
    """``text`` with every known secret replaced by ``[redacted]``; with ``shapes``, also anything
    shaped like a credential: for a provider's error text (a teacher's answer keeps its words, and
    fair's own lines their file names)."""
    for value in sorted(_known, key=len, reverse=True):  # a key that holds another goes first
        text = text.replace(value, REDACTED)
    if shapes:
        text = _SHAPES.sub(lambda m: (m.group("keep") or "") + REDACTED, text)
    return text


def shown(text: str) -> str:
    """``text`` as fair writes it to stderr (its last line, its log): inert, and every known key
    redacted, whatever it quotes."""
    return redact(inert(text), shapes=False)
