"""The transformers student on the tiny local model: batching must not change what it writes."""

import json
import math
import subprocess
import sys

import pytest

from fair_core.config import StudentConfig
from fair_core.errors import FairError
from fair_core.testing.tiny import make_tiny_student, tiny_gguf
from fair_students.hf import HFStudent

NEW = 10


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_student(tmp_path_factory.mktemp("students") / "tiny")


@pytest.fixture(scope="module")
def questions(data_dir):
    items = json.loads((data_dir / "svamp" / "SVAMP.json").read_text())[:7]
    # Lengths differ a lot, so batches need padding and sorting reorders them.
    return [it["Body"] + " " + it["Question"] for it in items] + ["Add 3 and 4."]


def student(model, **kw):
    return HFStudent(StudentConfig(model=str(model), max_new_tokens=NEW, **kw))


def reference(model_dir, texts, adapter=None):
    """Plain transformers, one unpadded prompt at a time: what the paper's code does."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    out = []
    with torch.inference_mode():
        for text in texts:
            ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
            gen = model.generate(input_ids=ids, max_new_tokens=NEW, do_sample=False, pad_token_id=tok.pad_token_id)
            out.append(tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return out


def chat(model_dir, prompts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    return [
        tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]


def test_batched_equals_one_at_a_time_in_order(tiny, questions):
    batched = student(tiny, batch_size=3)
    assert batched.tokenizer.padding_side == "left"
    got = batched.generate(questions)
    assert got == student(tiny, batch_size=1).generate(questions)
    assert got == reference(tiny, chat(tiny, questions))
    assert len(set(got)) > 1  # the tiny model writes different text for different prompts


def test_the_shared_instruction_runs_once_and_answers_do_not_change(tiny, questions, monkeypatch):
    """Prompts that share a long instruction: it runs through the model once per call (its KV
    cache copied into each batch), and each answer is what the prompt gets alone; identical
    prompts keep a token of their own, and prompts that share nothing take the plain path."""
    s = student(tiny, batch_size=3)  # two batches, each padded
    prefixes: list[int] = []
    real = s._prefix

    def spy(encoded):
        prefix, cache = real(encoded)
        prefixes.append(len(prefix))
        return prefix, cache

    monkeypatch.setattr(s, "_prefix", spy)
    prompts = [f"Read the problem, think step by step, then give the number. {q}" for q in questions[:5]]
    assert s.generate(prompts) == reference(tiny, chat(tiny, prompts))
    same = [prompts[0]] * 3
    assert s.generate(same) == reference(tiny, chat(tiny, same))
    instruction = len(s.tokenizer("Read the problem, think step by step, then give the number.")["input_ids"])
    assert prefixes[0] > instruction  # the chat template's start, then the instruction
    assert prefixes[1] == len(s.encode(prompts[0])) - 1

    plain = student(tiny, chat_template=False, batch_size=3)
    monkeypatch.setattr(plain, "_prefix", spy)
    distinct = [f"{word} {q}" for word, q in zip(("Alice", "Bob", "Carol", "Dan"), questions)]
    assert plain.generate(distinct) == reference(tiny, distinct)
    assert prefixes[2] == 0


@pytest.mark.slow
def test_plain_prompt_without_chat_template(tiny, questions):
    plain = student(tiny, chat_template=False, batch_size=4).generate(questions)
    assert plain == reference(tiny, questions)
    assert plain != student(tiny, batch_size=4).generate(questions)


@pytest.mark.slow
def test_progress_is_reported_per_batch(tiny, questions):
    seen = []
    student(tiny, batch_size=3).generate(questions, on_progress=seen.append)
    assert seen == [3, 3, 2]


def test_sampling_returns_one_answer_per_prompt(tiny, questions):
    out = student(tiny, sampling=True, temperature=1.0, batch_size=8).generate(questions)
    assert len(out) == len(questions) and all(isinstance(a, str) for a in out)


def random_adapter(model_dir, folder):
    """A LoRA adapter with random (not zero) B matrices, so it really changes what the model writes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora).save_pretrained(folder)
    return folder


def test_lora_adapter_is_loaded(tiny, questions, tmp_path):
    adapter = random_adapter(tiny, tmp_path / "adapter")
    tuned = HFStudent(StudentConfig(model=str(tiny), max_new_tokens=NEW, batch_size=4), adapter=adapter)
    got = tuned.generate(questions)
    assert got == reference(tiny, chat(tiny, questions), adapter=adapter)
    assert got != student(tiny, batch_size=4).generate(questions)


def test_a_run_starts_from_student_adapter(tiny, questions, tmp_path):
    """``student.adapter``: round 0 answers with it, and its train stage goes on from it."""
    from fair_core.config import RunConfig
    from fair_core.host import get_host
    from fair_core.runner import Runner
    from fair_core.runs.rundir import Run

    adapter = random_adapter(tiny, tmp_path / "pushed")
    config = RunConfig.model_validate(
        {
            "task": {"name": "svamp"},
            "student": {
                "backend": "hf",
                "model": str(tiny),
                "adapter": str(adapter),
                "max_new_tokens": NEW,
                "batch_size": 4,
            },
        }
    )
    run = Run(tmp_path / "run", config)
    try:
        runner = Runner(run, get_host())
        assert runner.student_source(0) == (str(tiny), str(adapter))
        assert runner.load_student(0).generate(questions) == reference(tiny, chat(tiny, questions), adapter=adapter)
        runner.release_student()
        bad = Runner(
            Run(
                tmp_path / "bad",
                config.model_copy(update={"student": config.student.model_copy(update={"adapter": str(tmp_path)})}),
            ),
            get_host(),
        )
        with pytest.raises(FairError, match="is not a LoRA adapter folder"):
            bad.student_source(0)
    finally:
        run.close()


@pytest.mark.parametrize("name", ["{tmp}/missing", "./no/such/model", "~/nowhere/model", "{tmp}/model.gguf"])
def test_missing_model_is_a_one_line_error(name, tmp_path):
    with pytest.raises(FairError, match="^student model .* not found: [^\n]*$"):
        HFStudent(StudentConfig(model=name.format(tmp=tmp_path)))


def test_missing_adapter_is_a_clear_error(tiny, tmp_path):
    with pytest.raises(FairError, match="adapter .* is not a LoRA adapter folder .no adapter_config.json"):
        HFStudent(StudentConfig(model=str(tiny)), adapter=tmp_path)


def test_plugin_registers_backends_without_importing_torch():
    code = (
        "import sys, fair_students; names = []; "
        "fair_students.register_students(lambda n, f, **meta: names.append(n)); "
        "print(names, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['auto', 'hf', 'vllm'] False"


def test_auto_backend_takes_vllm_only_where_installed_with_a_gpu(tiny, monkeypatch):
    import importlib.util

    import torch

    import fair_students

    config = StudentConfig(model=str(tiny))
    assert config.backend == "auto"
    assert isinstance(fair_students._auto(config), HFStudent)  # no vLLM here
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a)
    )
    assert isinstance(fair_students._auto(config), HFStudent)  # vLLM, but no GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(FairError, match="needs vLLM"):  # routed to the vllm backend, which imports vllm
        fair_students._auto(config)


@pytest.mark.parametrize("r, reserved", [(4, 8), (16, 16), (24, 32)])
def test_vllm_reserves_the_adapters_rank(tiny, tmp_path, r, reserved):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from fair_students.vllm import lora_rank

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny), LoraConfig(task_type="CAUSAL_LM", r=r))
    model.save_pretrained(tmp_path / "adapter")
    assert lora_rank(tmp_path / "adapter") == reserved
    with pytest.raises(FairError, match="is not a LoRA adapter folder"):
        lora_rank(tmp_path)


@pytest.mark.slow
def test_a_gguf_student_writes_what_its_source_folder_writes(tiny, tmp_path, questions, monkeypatch):
    """A GGUF file loads directly, and converts once into a folder (what the trainer reads)
    that answers exactly as the file does."""
    import fair_students

    gguf = tiny_gguf(tiny, tmp_path / "tiny.gguf")
    monkeypatch.setenv("FAIR_CACHE_DIR", str(tmp_path / "cache"))
    expected = student(tiny, batch_size=4).generate(questions)
    assert student(gguf, batch_size=4).generate(questions) == expected
    folder = fair_students._local_path(StudentConfig(model=str(gguf)))
    assert folder.startswith(str(tmp_path / "cache" / "gguf" / "tiny-"))
    assert student(folder, batch_size=4).generate(questions) == expected
    assert fair_students._local_path(StudentConfig(model=str(gguf))) == folder  # converted once


def test_a_prompt_longer_than_the_model_s_positions_keeps_its_end(tiny, tmp_path, caplog):
    """A user's long passage must not run past the positions the model knows: a model with learned
    positions (GPT-2's shape) failed with an index error; each prompt keeps its last tokens, as
    training keeps them, and says so; a scored text likewise."""
    import shutil

    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    shutil.copytree(tiny, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    config = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=1, n_head=2)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(config, name, getattr(tok, name))
    for name in ("model.safetensors", "config.json"):
        (folder / name).unlink()
    GPT2LMHeadModel(config).save_pretrained(folder)
    long = "Tom has 3 apples and buys 4 more. " * 40 + "How many apples does he have?"
    s = student(folder, batch_size=2)
    assert len(s.encode(long)) > 128
    with caplog.at_level("WARNING", logger="fair_students.hf"):
        answers = s.generate([long, "Add 3 and 4."])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert f"1 prompt(s) longer than the {128 - NEW} tokens" in caplog.text
    assert math.isfinite(s.score([(long, "He has 7 apples.")])[0])  # scored as trained: cut from the left


def test_generation_ends_early_once_stop_is_true(tiny, questions):
    """An interrupted run must not wait for a batch to write all its tokens: generation polls
    ``stop`` per token and starts no further batch."""
    polls = []

    def stop():
        polls.append(1)
        return len(polls) > 3

    s = student(tiny, batch_size=4)
    cut = s.generate(questions, stop=stop)
    full = s.generate(questions)
    assert 3 < len(polls) < NEW  # polled while generating, not once per batch
    assert sum(a == "" for a in cut) == 4  # the second batch of four never started
    assert sum(map(len, cut)) < sum(map(len, full)) // 2


def test_rows_that_end_leave_the_batch_without_changing_answers(tiny, questions, tmp_path, monkeypatch):
    """With a frequent token made an end token, rows end at different chunks and leave the batch
    (and the cache) early; the others must still write what they write alone."""
    import shutil
    from collections import Counter

    import fair_students.hf as hf

    ended = tmp_path / "tiny"
    shutil.copytree(tiny, ended)
    s = student(ended, batch_size=4)
    first = s.generate(questions[:4])
    word = Counter(w for a in first for w in s.tokenizer(a)["input_ids"][1:]).most_common(1)[0][0]
    config = json.loads((ended / "generation_config.json").read_text())
    config["eos_token_id"] = [s.tokenizer.eos_token_id, word]
    (ended / "generation_config.json").write_text(json.dumps(config))
    monkeypatch.setattr(hf, "CHUNK", 2)
    got = student(ended, batch_size=4).generate(questions)
    assert got == reference(ended, chat(ended, questions))
    assert len({len(a) for a in got}) > 2


def test_the_roomy_cache_layer_holds_what_the_dynamic_one_holds_and_writes_in_place():
    """Token by token, then after rows are dropped, the cache cropped and rows repeated: the
    same keys and values as transformers' own layer; within its room no new buffer."""
    import torch
    from transformers.cache_utils import DynamicLayer

    from fair_students.kv_cache import ROOM, RoomyLayer

    torch.manual_seed(0)
    plain, roomy = DynamicLayer(), RoomyLayer()

    def update(rows: int, tokens: int):
        k, v = torch.randn(rows, 2, tokens, 8), torch.randn(rows, 2, tokens, 8)
        want, got = plain.update(k, v), roomy.update(k, v)
        assert all(torch.equal(w, g) for w, g in zip(want, got))
        return got[0].data_ptr()

    first = update(4, 7)
    assert all(update(4, 1) == first for _ in range(ROOM))  # written in place
    assert update(4, 1) != first  # out of room: a new buffer, the cache copied into it
    for layer in (plain, roomy):
        layer.batch_select_indices(torch.tensor([0, 2]))
    update(2, 1)
    for layer in (plain, roomy):
        layer.crop(-3)
    update(2, 2)
    for layer in (plain, roomy):
        layer.batch_repeat_interleave(3)
    update(6, 1)
    assert roomy.get_seq_length() == plain.get_seq_length() == 7 + ROOM + 1 + 1 - 3 + 2 + 1


def test_vllm_gets_the_token_ids_training_used_with_one_bos(tiny):
    """A Llama-like tokenizer adds BOS to any text, and its chat template writes one too: text
    handed to vLLM would start with two; the token prompts start with one, as training's do."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    from fair_core.training.data import Encoder
    from fair_students.vllm import token_prompts

    tok = AutoTokenizer.from_pretrained(tiny)
    bos = tok.bos_token_id
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    prompts = ["Tom has 3 apples. How many?", "What is 2 + 5?"]
    chat = [{"role": "user", "content": prompts[0]}]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert tok(text)["input_ids"][:2] == [bos, bos]  # what vLLM made of the text
    got = token_prompts(tok, prompts, chat_template=True)
    assert [g["prompt_token_ids"] for g in got] == [Encoder(tok, True, 4096).prompt_ids(p) for p in prompts]
    assert all(g["prompt_token_ids"][:2].count(bos) == 1 for g in got)
