"""Teacher-forced scores (Student.score, fair_core.training.score) against a hand computation.

The paper's recorded SVAMP rationales, three teachers' to a question as the held-out references
of an experiment come, scored by the "hf" student on a tiny Llama: whether the responses that
share a prompt are packed as one group or each sits in its own row, in one pass or in several,
every score is each text's own mean log-prob per token computed alone with the full logits.
"""

from __future__ import annotations

import pytest
import torch

from fair_core.config import StudentConfig
from fair_core.host import get_host
from fair_core.paper import read
from fair_core.testing.tiny import make_tiny_student
from fair_core.training import score as scoring
from fair_core.training.data import Encoder

TEACHERS = ("gpt", "gemini", "mistral")


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    tiny = make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")
    config = StudentConfig(model=str(tiny), backend="hf", device="cpu", dtype="float32")
    student = get_host().get("students", "hf")(config)
    yield student
    student.close()


@pytest.fixture(scope="module")
def pairs(paper_dir):
    """(prompt, rationale) for three teachers on each of five questions, teacher by teacher, so
    a question's references are not next to each other."""
    rows = read(paper_dir / "Llama-2-7b-chat-hf_svamp_rationale_round0.json")[:5]
    return [(f"Question: {x['question']}\nAnswer:", x[f"{t}_rationale"][0]) for t in TEACHERS for x in rows]


def by_hand(student, pairs) -> list[float]:
    """Each text alone, the whole sequence's logits, log_softmax written out."""
    encode = Encoder(student.tokenizer, student.config.chat_template, max_length=4096)
    out = []
    with torch.no_grad():
        for prompt, response in pairs:
            seq = encode(prompt, response)
            logp = torch.log_softmax(student.model(input_ids=torch.tensor([seq.ids])).logits[0].double(), -1)
            at = torch.arange(seq.n_prompt - 1, len(seq.ids) - 1)
            out.append(logp[at, torch.tensor(seq.ids[seq.n_prompt :])].mean().item())
    return out


def test_packed_scores_are_each_texts_own(student, pairs):
    expected = by_hand(student, pairs)
    seen: list[int] = []
    got = student.score(pairs, on_progress=seen.append)
    assert got == pytest.approx(expected, abs=1e-4)
    assert sum(seen) == len(pairs)
    # the attention the model had is the one it keeps for generating
    assert student.model.config._attn_implementation == "sdpa"


def test_several_passes_and_the_row_by_row_fallback_give_the_same_scores(student, pairs, monkeypatch):
    expected = by_hand(student, pairs)
    encode = Encoder(student.tokenizer, student.config.chat_template, max_length=4096)
    encoded = [encode(p, r) for p, r in pairs]
    groups = scoring._groups(encoded)
    assert [len(g) for g in groups] == [3] * 5  # a question's three references, one group
    # a pass a little longer than the longest group: several passes, one group or two each
    longest = max(sum(len(encoded[i].ids) for i in g) for g in groups)
    assert len(scoring._passes(encoded, groups, longest, packed=True)) > 2
    assert scoring.mean_logprobs(student.model, encoded, longest) == pytest.approx(expected, abs=1e-4)
    # a model that cannot take packed rows or the sliced head is scored one row per text, its
    # passes bounded by their padded size: at most four rows of the longest text here
    monkeypatch.setattr(scoring, "probe", lambda *a: (False, False))
    rows = 4 * max(len(e.ids) for e in encoded)
    assert len(scoring._passes(encoded, groups, rows, packed=False)) >= len(pairs) / 4
    assert scoring.mean_logprobs(student.model, encoded, rows) == pytest.approx(expected, abs=1e-4)
