"""A tiny Llama-style student with a locally trained tokenizer, for tests and benchmarks.

Real components, no network: the tokenizer is a byte-level BPE trained on SVAMP questions in
well under a second, and the model is a randomly initialised (seeded) 2-layer Llama. It loads
with ``AutoModelForCausalLM`` / ``AutoTokenizer`` and has a chat template like a real instruct model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from fair_core.task import data_root

# Role markers are special tokens so a chat turn never splits them into byte pieces.
SPECIALS = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
FIXED_TEXTS = [
    "Answer the question step by step, then give the final answer.",
    "The answer is 42. So the answer is 7.",
    "Let's think step by step. First, we add the numbers. Then we subtract.",
    "Your answer is wrong because you added instead of subtracting.",
    "Score: 5. The rationale is correct and clear.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = ( ) . , ? !",
]
_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def default_texts(limit: int = 300) -> list[str]:
    """The first ``limit`` SVAMP questions (file order) plus fixed strings: deterministic."""
    texts = list(FIXED_TEXTS)
    root = data_root()
    source = root / "svamp" / "SVAMP.json" if root else None
    if source and source.is_file():
        items = json.loads(source.read_text())[:limit]
        texts += [f"{it['Body']} {it['Question']} {it['Equation']} = {it['Answer']}" for it in items]
    return texts


def _tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=SPECIALS[3:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_student(
    path,
    texts: list[str] | None = None,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    vocab_size: int = 512,
    seed: int = 0,
) -> Path:
    """Build (once) a tiny causal LM + tokenizer in ``path`` and return the path.

    The folder is written to a temporary sibling and renamed into place, so a crash or a
    concurrent caller never sees half a model; an existing complete folder is reused as is.
    """
    path = Path(path)
    if all((path / f).is_file() for f in _FILES):
        return path

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer(texts if texts is not None else default_texts(), vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        # Wider than Llama's 0.02 so an untrained model writes varied text, not one token
        # repeated: tests that compare generations then compare something.
        initializer_range=0.1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the renamed folder should read like any other
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if path.exists():  # an incomplete leftover; a complete one returned above
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError:  # another process finished first: keep its copy
            if not all((path / f).is_file() for f in _FILES):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def into_hub_cache(model: Path, cache: Path, repo_id: str) -> Path:
    """Lay ``model``'s files out as the hub cache holds a downloaded repo (refs/main naming a
    snapshot), so a hub id resolves offline with ``HF_HUB_CACHE=cache``; returns the snapshot."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    shutil.copytree(model, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


# llama.cpp's names for a Llama checkpoint's tensors: whole-model ones, then per-layer ones.
_GGUF_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
_GGUF_LAYER = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _rope_order(w, heads: int):
    """llama.cpp's layout of a query or key projection (rotary halves interleaved per head);
    transformers undoes it on load."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny_gguf(model: Path, out: Path) -> Path:
    """Write a tiny student folder as an fp32 GGUF file, as llama.cpp would: a real GGUF
    student for tests, which transformers loads back to the same logits and tokens."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    cfg = json.loads((model / "config.json").read_text())
    tok = json.loads((model / "tokenizer.json").read_text())
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    ids = {**tok["model"]["vocab"], **added}
    tokens = sorted(ids, key=lambda t: ids[t])
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in added else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_chat_template(CHAT_TEMPLATE)
    for name, a in load_file(model / "model.safetensors").items():
        base = name.removesuffix(".weight")
        if base in _GGUF_NAMES:
            w.add_tensor(f"{_GGUF_NAMES[base]}.weight", a)
            continue
        layer, part = base.split(".", 3)[2:]
        kind = _GGUF_LAYER[part]
        if kind in ("attn_q", "attn_k"):
            a = _rope_order(a, cfg["num_attention_heads" if kind == "attn_q" else "num_key_value_heads"])
        w.add_tensor(f"blk.{layer}.{kind}.weight", np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
