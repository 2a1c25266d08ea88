"""Student fine-tuning: the joint loss against a hand computation, masking, the sliced head,
the training process end to end (outputs, resume after SIGKILL, one-line errors).

Real pieces throughout: the paper's SVAMP committee outputs as training pairs, a tiny Llama
with a locally trained tokenizer and chat template, and ``python -m fair_core.training`` as a
child process where the process boundary is what is being tested.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fair_core.errors import FairError
from fair_core.testing.pairs import paper_pairs as compiled_pairs
from fair_core.testing.tiny import make_tiny_student
from fair_core.training import attention, command
from fair_core.training.__main__ import main
from fair_core.training.collator import FEEDBACK, IGNORE, PairCollator
from fair_core.training.data import Encoded, Encoder, LengthGroupedBatches, Pair, read_pairs
from fair_core.training.loss import JointLoss, batch_backward, probe
from fair_tasks.prompts import NUMBER

ROOT = Path(__file__).resolve().parents[1]


def paper_pairs(paper_dir: Path, n: int) -> list[dict]:
    """Compiled pairs as the engine writes them, from the paper's SVAMP committee outputs."""
    return compiled_pairs(paper_dir, NUMBER)[:n]


def make_run(root: Path, pairs: list[dict], train: str) -> Path:
    (root / "rounds" / "0").mkdir(parents=True)
    (root / "rounds" / "0" / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (root / "config.toml").write_text(f"[train]\n{train}\n")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module")
def loaded(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(
        tiny, dtype=torch.float32, attn_implementation=attention.implementation()
    ).eval()
    return tok, model


@pytest.fixture(scope="module")
def pairs(paper_dir, loaded):
    tok, _ = loaded
    encode = Encoder(tok, chat_template=True, max_length=768)
    return [encode.pair(p) for p in paper_pairs(paper_dir, 5)]


def hand_loss(model, pairs, alpha):
    """Each sequence alone, full logits, per-token CE written out with log_softmax."""
    sums = {"feedback": [0.0, 0], "rationale": [0.0, 0]}
    with torch.no_grad():
        for pair in pairs:
            for half in ("feedback", "rationale"):
                seq = getattr(pair, half)
                ids = torch.tensor([seq.ids])
                logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
                targets = torch.arange(seq.n_prompt, len(seq.ids))  # token t is predicted at t - 1
                sums[half][0] -= logp[targets - 1, ids[0, targets]].sum().item()
                sums[half][1] += len(targets)
    f = sums["feedback"][0] / sums["feedback"][1]
    r = sums["rationale"][0] / sums["rationale"][1]
    return alpha * f + (1 - alpha) * r, f, r


def batch_loss(model, pairs, alpha=0.3, sliced=True, **collate):
    batch = PairCollator(**{"pad_id": 0, **collate})(pairs)
    with torch.no_grad():
        return batch_backward(JointLoss(model, alpha, sliced), batch, backward=lambda loss: None).tolist()


def test_joint_loss_equals_hand_computation(loaded, pairs):
    _, model = loaded
    want = hand_loss(model, pairs, 0.3)
    for packed in (True, False):
        assert batch_loss(model, pairs, packed=packed) == pytest.approx(want, abs=1e-4)
        assert batch_loss(model, pairs, packed=packed, pass_tokens=100) == pytest.approx(want, abs=1e-4)
    assert batch_loss(model, pairs, alpha=1.0)[0] == pytest.approx(want[1], abs=1e-4)
    assert batch_loss(model, pairs, alpha=0.0)[0] == pytest.approx(want[2], abs=1e-4)


def test_passes_are_filled_first_fit_and_keep_every_example_once_in_order():
    """Feedback of 300 and 300 tokens after the shared prefix, rationales of 200 and 200, passes
    of 500: two full passes (consecutive runs would take three), each in the batch's order."""
    prefix = [1, 2, 3]

    def seq(n, tag):
        return Encoded(prefix + [tag] * n, len(prefix) + n // 2)

    sizes = [(300, 200), (300, 200)]
    pairs = [Pair(str(i), seq(f, 10 + i), seq(r, 20 + i)) for i, (f, r) in enumerate(sizes)]
    batch = PairCollator(pad_id=0, pass_tokens=500)(pairs)
    rows = [p["input_ids"][0].tolist() for p in batch["passes"]]
    assert [len(r) for r in rows] == [500, 500]
    tags = [[t for t in dict.fromkeys(r) if t >= 10] for r in rows]
    assert sorted(sum(tags, [])) == [10, 11, 20, 21]  # every example once
    assert all(t == sorted(t, key=lambda x: (x // 10 == 2, x)) for t in tags)  # feedback first, in order
    assert batch["prefix"]["input_ids"].tolist() == [prefix + prefix]


@pytest.mark.slow
def test_prompt_and_padding_never_count(loaded, pairs):
    _, model = loaded
    batch = PairCollator(pad_id=0, multiple_of=64)(pairs)
    (row,) = batch["passes"]
    labelled = row["labels"] != IGNORE
    # exactly the response tokens carry labels, each tagged with its half
    assert labelled.sum() == sum(p.feedback.n_response + p.rationale.n_response for p in pairs)
    assert (row["kinds"] == FEEDBACK).sum() == sum(p.feedback.n_response for p in pairs)
    assert torch.equal(row["labels"][labelled], row["input_ids"][labelled])
    # the loss ignores the pad id, the amount of padding, and the layout of the rows
    base = batch_loss(model, pairs, pad_id=0)
    assert batch_loss(model, pairs, pad_id=7, multiple_of=64) == pytest.approx(base, abs=1e-5)
    assert batch_loss(model, pairs, pad_id=3, packed=False) == pytest.approx(base, abs=1e-5)
    # packed: one row, the prompt prefix shared by each half stored once, padded at its end only
    lengths = [len(p.feedback.ids) for p in pairs] + [len(p.rationale.ids) for p in pairs]
    (shared_f, rest_f, _), (shared_r, rest_r, _) = row["segments"][:2]
    assert shared_f > 0 and shared_r > 0  # chat template and instruction
    assert [shared_f + n for n in rest_f] + [shared_r + n for n in rest_r] == lengths
    used = int(batch["counts"][3])
    assert used == sum(lengths) - (len(pairs) - 1) * (shared_f + shared_r)
    assert row["input_ids"].shape == (1, -(-used // 64) * 64)
    # unpacked: right padding after every real token
    (unpacked,) = PairCollator(pad_id=0, packed=False)(pairs)["passes"]
    mask = unpacked["attention_mask"]
    assert mask.sum(1).tolist() == lengths and all((m[:n] == 1).all() for m, n in zip(mask, lengths))


@pytest.mark.slow
def test_sliced_head_shared_prefixes_and_passes_give_the_same_loss_and_gradients(loaded, pairs):
    """The head only at response positions vs full logits, the packed row (shared prompt
    prefixes computed once) vs one padded row per example, and one pass vs several (the
    prefixes in a pass of their own, read by the others): same loss, same LoRA gradients."""
    from peft import LoraConfig, get_peft_model

    _, model = loaded
    torch.manual_seed(0)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False))
    try:
        results = []
        for sliced, packed, pass_tokens in (
            (True, True, None),
            (False, True, None),
            (True, False, None),
            (True, True, 90),
            (True, False, 90),
        ):
            batch = PairCollator(pad_id=0, packed=packed, pass_tokens=pass_tokens)(pairs)
            assert (len(batch["passes"]) > 2) == bool(pass_tokens)
            assert (batch["prefix"] is not None) == bool(pass_tokens and packed)
            lora.zero_grad()
            loss = batch_backward(JointLoss(lora, 0.5, sliced), batch)[0]
            results.append((loss.item(), [p.grad.clone() for p in lora.parameters() if p.requires_grad]))
        (want, want_grads), *others = results
        for got, grads in others:
            assert got == pytest.approx(want, abs=1e-5)
            assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(grads, want_grads))
        assert probe(lora, pairs[0].feedback.ids[:40], pairs[0].rationale.ids[:40]) == (True, True)
    finally:
        lora.unload()


@pytest.mark.parametrize("mixed", [False, True], ids=["fp32", "bf16-autocast"])
def test_fused_head_loss_matches_the_plain_head(monkeypatch, mixed):
    """The chunked head + cross-entropy gives the plain way's losses and gradients (hidden
    states and head weight), across many chunks and under autocast."""
    from fair_core.training import head_loss

    monkeypatch.setitem(head_loss.CHUNK_ELEMENTS, "cpu", 1000)  # a 300-word vocabulary: 3 rows a chunk
    torch.manual_seed(0)
    head = torch.nn.Linear(32, 300, bias=False)
    hidden = torch.randn(50, 32, requires_grad=True)
    target = torch.randint(0, 300, (50,))
    weights = torch.rand(50)
    results = []
    for loss_of in (
        lambda: head_loss.head_cross_entropy(head, hidden, target),
        lambda: torch.nn.functional.cross_entropy(head(hidden).float(), target, reduction="none"),
    ):
        head.zero_grad()
        hidden.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            nll = loss_of()
        (nll * weights).sum().backward()
        results.append((nll.detach(), hidden.grad.clone(), head.weight.grad.clone()))
    (fused, *fused_grads), (plain, *plain_grads) = results
    assert torch.allclose(fused, plain, atol=1e-5)
    for got, want in zip(fused_grads, plain_grads):
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-3)


def test_a_sharded_head_goes_through_its_own_forward():
    """DeepSpeed ZeRO-3 gathers a weight in the module's forward hook: the fused path, which
    reads the weight directly, must not be taken for it."""
    from fair_core.training.head_loss import head_cross_entropy

    head = torch.nn.Linear(8, 20, bias=False)
    calls = []
    head.register_forward_pre_hook(lambda module, args: calls.append(1))
    hidden, target = torch.randn(4, 8), torch.randint(0, 20, (4,))
    head_cross_entropy(head, hidden, target)
    assert calls == []
    head.weight.ds_id = 7
    nll = head_cross_entropy(head, hidden, target)
    assert calls == [1]
    assert torch.allclose(nll, torch.nn.functional.cross_entropy(head(hidden), target, reduction="none"))


@pytest.mark.slow
def test_lora_with_gradient_checkpointing_under_bf16_autocast(tiny, pairs):
    """Checkpointing recomputes the forward in backward; the LoRA layers must see the same
    dtypes there as in the forward (the dropout path casts them), and the gradients equal those
    of a plain backward."""
    from transformers import AutoModelForCausalLM

    from fair_core.config import TrainConfig
    from fair_core.training.trainer import adapt

    (batch,) = PairCollator(pad_id=0)(pairs[:2])["passes"]
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(
            tiny, dtype=torch.bfloat16, attn_implementation=attention.implementation()
        )
        model = adapt(model, TrainConfig(gradient_checkpointing=checkpointing))
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _, _ = JointLoss(model, 0.5)(**batch)
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys() and plain
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-3, rtol=1e-2), name


def test_lora_dropout_keeps_a_boolean_mask_with_dropouts_numbers(tiny):
    """The LoRA layers' dropout keeps one byte an element for its backward (nn.Dropout keeps the
    input's dtype) and is a dropout: kept with probability 1 - p, scaled by 1 / (1 - p)."""
    from transformers import AutoModelForCausalLM

    from fair_core.config import TrainConfig
    from fair_core.training.dropout import MaskDropout
    from fair_core.training.trainer import adapt

    model = adapt(AutoModelForCausalLM.from_pretrained(tiny), TrainConfig(lora_dropout=0.2))
    dropouts = [m for n, m in model.named_modules() if ".lora_dropout." in n]
    assert dropouts and all(type(m) is MaskDropout and m.p == 0.2 for m in dropouts)
    torch.manual_seed(0)
    x = torch.ones(100_000, requires_grad=True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t.dtype) or t, lambda t: t):
        y = dropouts[0].train()(x)
    assert kept == [torch.bool]
    assert set(y.unique().tolist()) == {0.0, 1.25} and (y > 0).float().mean().item() == pytest.approx(0.8, abs=0.01)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())
    assert dropouts[0].eval()(x) is x


def test_probe_notices_a_post_processed_head(loaded, pairs):
    _, model = loaded

    class Scaled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **kw):
            out = self.inner(**kw)
            out.logits = out.logits * 2.0
            return out

        def get_decoder(self):
            return self.inner.get_decoder()

        def get_output_embeddings(self):
            return self.inner.get_output_embeddings()

    # a model whose forward scales the logits after the head: the bare head would be wrong
    sliced, packed = probe(Scaled(model), pairs[0].feedback.ids[:30], pairs[0].rationale.ids[:30])
    assert (sliced, packed) == (False, True)


def test_truncation_cuts_the_prompt_and_keeps_the_response(loaded, paper_dir):
    tok, _ = loaded
    row = paper_pairs(paper_dir, 1)[0]["feedback"]
    full = Encoder(tok, True, 4096)(row["prompt"], row["response"])
    cut = Encoder(tok, True, full.n_response + 5)(row["prompt"], row["response"])
    assert len(cut.ids) == full.n_response + 5 and cut.n_prompt == 5
    assert cut.ids == full.ids[-len(cut.ids) :] and cut.ids[-1] == tok.eos_token_id
    plain = Encoder(tok, False, 4096)(row["prompt"], row["response"])
    assert plain.n_prompt < full.n_prompt  # no chat markers
    assert plain.ids[plain.n_prompt :] == full.ids[full.n_prompt :]


def test_batches_cover_every_pair_once_and_replay(pairs):
    lengths = [17, 3, 99, 45, 8, 61, 23, 5, 71, 30, 12]
    sampler = LengthGroupedBatches(lengths, batch_size=3, seed=1, group=2)
    first = list(sampler)
    assert sorted(i for b in first for i in b) == list(range(len(lengths))) and len(first) == len(sampler)
    assert list(sampler) == first
    sampler.epoch = 1
    assert list(sampler) != first
    for b in first:  # within a group, batches hold neighbours in length
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)


def test_command_line():
    argv = command("/runs/a", 1, "/m/base", "/runs/a/rounds/0/adapter", merge=True, launcher="accelerate")
    assert argv[:5] == [sys.executable, "-m", "fair_core.training.launch", "--module", "fair_core.training"]
    assert argv[5:] == [
        "--run-dir",
        "/runs/a",
        "--round",
        "1",
        "--base",
        "/m/base",
        "--adapter",
        "/runs/a/rounds/0/adapter",
        "--merge",
    ]
    assert command("r", 0, "b")[:3] == [sys.executable, "-m", "fair_core.training"]


def test_several_visible_gpus_go_through_accelerate(monkeypatch):
    from fair_core.stages.train import launcher

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert launcher("python") == "python" and launcher("accelerate") == "accelerate"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert launcher("python") == "accelerate"


def _env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.mark.slow
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, tiny, paper_dir, capsys):
    empty = make_run(tmp_path / "empty", [], "batch_size = 2")
    done = subprocess.run(command(empty, 0, tiny), capture_output=True, text=True, cwd=ROOT, env=_env())
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "is empty" in done.stderr

    run = make_run(tmp_path / "run", paper_pairs(paper_dir, 2), "batch_size = 2")
    assert main(["--run-dir", str(run), "--round", "0", "--base", str(tmp_path / "nowhere")]) == 2
    assert "base model" in capsys.readouterr().err
    if not torch.cuda.is_available():
        (run / "config.toml").write_text('[train]\nmethod = "qlora"\n')
        assert main(["--run-dir", str(run), "--round", "0", "--base", str(tiny)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "CUDA" in err
    with pytest.raises(FairError, match="not a pair"):
        (run / "rounds" / "0" / "train.jsonl").write_text('{"item_id": "1"}\n')
        read_pairs(run / "rounds" / "0" / "train.jsonl")


def test_a_pair_with_an_empty_prompt_is_refused_with_its_line(tmp_path):
    row = {"feedback": {"prompt": "Q", "response": "A"}, "rationale": {"prompt": " \n", "response": "B"}}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({**row, "rationale": {"prompt": "Q", "response": ""}}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(FairError, match="line 2: the rationale example's prompt is empty"):
        read_pairs(path)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _adapter(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "adapter_model.safetensors")


# 25 pairs at batch 2 = 13 batches per epoch (the last one short), accumulated by 2 = 7 steps
# per epoch, the last one from a single batch; 2 epochs = 14 steps; dropout on.
RESUME = "batch_size = 2\ngrad_accum = 2\nepochs = 2\nsave_steps = 4\nmax_length = 48\nlora_dropout = 0.1"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny, paper_dir):
    """One training run in this process, start to end, with --merge."""
    from fair_core.training.trainer import train

    run = make_run(tmp_path_factory.mktemp("uninterrupted") / "run", paper_pairs(paper_dir, 25), RESUME)
    return run / "rounds" / "0", train(run, 0, tiny, merge=True)


@pytest.mark.slow
def test_train_writes_adapter_merged_model_and_progress(uninterrupted, tiny):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out, done = uninterrupted
    lines = _lines(out / "progress.jsonl")
    steps = [x for x in lines if x["type"] == "train_step"]
    assert [x["step"] for x in steps] == list(range(1, 15)) and lines[-1] == done
    assert done["step"] == done["max_steps"] == 14 and done["epoch"] == 2.0 and done["packed"]
    keys = {
        "step",
        "max_steps",
        "epoch",
        "loss",
        "loss_feedback",
        "loss_rationale",
        "learning_rate",
        "tokens_per_second",
        "samples_per_second",
        "memory_mb",
        "eta_s",
    }
    assert keys <= set(steps[0]) and steps[-1]["tokens_per_second"] > 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-12", "step-14"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    ids = torch.tensor([[5, 60, 61, 62, 63, 9]])
    base = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    with torch.no_grad():
        before = base(input_ids=ids).logits
        with_adapter = PeftModel.from_pretrained(base, out / "adapter").eval()(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(out / "merged").eval()(input_ids=ids).logits
    assert torch.allclose(with_adapter, merged, atol=1e-4) and not torch.equal(before, merged)
    assert (out / "merged" / "tokenizer.json").is_file() and (out / "adapter" / "tokenizer.json").is_file()


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, tiny, paper_dir, uninterrupted):
    run = make_run(tmp_path / "run", paper_pairs(paper_dir, 25), RESUME)
    ckpts = run / "rounds" / "0" / "checkpoints"
    proc = subprocess.Popen(
        command(run, 0, tiny), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not (ckpts / "step-4").is_dir() and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "rounds" / "0" / "adapter").exists()

    again = subprocess.run(command(run, 0, tiny), cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    done = _lines(run / "rounds" / "0" / "progress.jsonl")[-1]
    out, want = uninterrupted
    # killed after step 4 of 7 in the first epoch (or a step later if the kill came late)
    assert done["type"] == "train_done" and 4 <= done["resumed_from"] < 14 and done["resumed_from"] % 7
    assert done["step"] == want["step"] == 14
    assert done["loss"] == pytest.approx(want["loss"], abs=1e-5)
    got, expected = _adapter(run / "rounds" / "0" / "adapter"), _adapter(out / "adapter")
    assert got.keys() == expected.keys()
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in got)


@pytest.mark.slow
def test_full_fine_tuning_writes_the_model_and_guards_its_checkpoints(tmp_path, tiny, paper_dir):
    from safetensors.torch import load_file

    from fair_core.training.trainer import train

    settings = 'method = "full"\nmax_steps = 2\nbatch_size = 2\nmax_length = 48\ngradient_checkpointing = true'
    run = make_run(tmp_path / "run", paper_pairs(paper_dir, 4), settings)
    done = train(run, 0, tiny, merge=True)
    out = run / "rounds" / "0"
    assert done["output"] == str(out / "model") and done["merged"] is None and done["step"] == 2
    trained, initial = load_file(out / "model" / "model.safetensors"), load_file(tiny / "model.safetensors")
    assert trained.keys() == initial.keys() and any(not torch.equal(trained[k], initial[k]) for k in trained)
    # a rerun with other settings must not continue these checkpoints
    (run / "config.toml").write_text(f"[train]\n{settings}\nlearning_rate = 1e-5\n")
    with pytest.raises(FairError, match="other data or settings"):
        train(run, 0, tiny)


@pytest.mark.slow
def test_a_damaged_checkpoint_falls_back_to_the_one_before(tmp_path, tiny, uninterrupted, caplog):
    from fair_core.training.trainer import train

    out, want = uninterrupted
    run = tmp_path / "run"
    shutil.copytree(out.parents[1], run)
    for name in ("adapter", "merged"):
        shutil.rmtree(run / "rounds" / "0" / name)
    newest = run / "rounds" / "0" / "checkpoints" / "step-14" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as a full disk would leave it
    done = train(run, 0, tiny)
    assert "checkpoint step-14 cannot be read" in caplog.text
    assert done["resumed_from"] == 12 and done["step"] == 14
    assert done["loss"] == pytest.approx(want["loss"], abs=1e-5)  # steps 13-14 replayed exactly
    got, expected = _adapter(run / "rounds" / "0" / "adapter"), _adapter(out / "adapter")
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in got)
