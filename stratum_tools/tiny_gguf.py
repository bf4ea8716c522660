"""Write a tiny random-weight llama GGUF that a real llama-server loads and streams from.

The weights are noise, so the text is gibberish, but tokenization, slots, streaming, `/health`,
`/metrics` and `timings` are llama.cpp's own. About 0.3 MB, written in milliseconds, so the tests
make it on the fly instead of committing a model file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np

# Gemma 4's control tokens (its chat template's turn, tool and channel markers). A model that has
# them as single tokens can be served with Gemma 4's own template: llama-server then builds its
# tool-call grammar and parses tool calls exactly as for the real model.
GEMMA4_TOKENS = (
    "<|turn>", "<turn|>", "<|tool>", "<tool|>", "<|tool_call>", "<tool_call|>",
    "<|tool_response>", "<tool_response|>", "<|channel>", "<channel|>", '<|"|>', "<|think|>",
)  # fmt: skip

# <unk> <s> </s> and one token per byte: the vocabulary before any control tokens.
BYTE_VOCAB_SIZE = 3 + 256

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def write_tiny_llama(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx: int = 4096,
    seed: int = 0,
    control_tokens: tuple[str, ...] = (),
) -> Path:
    """Write the model to `path` and return it. Same seed, same bytes. `control_tokens` are
    added to the byte vocabulary as single control tokens (e.g. GEMMA4_TOKENS)."""
    rng = np.random.default_rng(seed)

    def weight(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    write_llama(
        path, weight, gguf.LlamaFileType.ALL_F32, name="stratum-tiny-test-model",
        n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_ff=n_ff, n_ctx=n_ctx,
        control_tokens=control_tokens,
    )  # fmt: skip
    return path


def write_llama(
    path: Path,
    matrix: Callable[[int, int], np.ndarray],
    file_type: gguf.LlamaFileType,
    *,
    name: str,
    n_embd: int,
    n_layer: int,
    n_head: int,
    n_ff: int,
    n_ctx: int,
    control_tokens: tuple[str, ...] = (),
) -> int:
    """A llama-architecture GGUF with the byte vocabulary (plus `control_tokens`) and
    CHAT_TEMPLATE, each weight matrix from `matrix(rows, cols)` in the order below, norms F32.
    Returns the vocabulary size."""
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    tokens += [t.encode() for t in control_tokens]
    token_types = (
        [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
        + [gguf.TokenType.BYTE] * 256
        + [gguf.TokenType.CONTROL] * len(control_tokens)
    )
    n_vocab = len(tokens)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(file_type)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types(token_types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    if control_tokens:
        # No SentencePiece space before the first word: a template's "<|turn>model\n" must
        # tokenize to the text llama-server's grammar expects after the control token.
        writer.add_add_space_prefix(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    ones = np.ones(n_embd, dtype=np.float32)
    writer.add_tensor("token_embd.weight", matrix(n_vocab, n_embd))
    for layer in range(n_layer):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", ones)
        for tensor in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(prefix + tensor + ".weight", matrix(n_embd, n_embd))
        writer.add_tensor(prefix + "ffn_norm.weight", ones)
        writer.add_tensor(prefix + "ffn_gate.weight", matrix(n_ff, n_embd))
        writer.add_tensor(prefix + "ffn_up.weight", matrix(n_ff, n_embd))
        writer.add_tensor(prefix + "ffn_down.weight", matrix(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", ones)
    # The end-of-text token gets a zero output row: its logit sits mid-pack, never among the top
    # 40 that llama-server samples from by default, so answers run to max_tokens instead of
    # stopping after a random handful of tokens. "{" and "}" get one too, so free text never
    # holds half a JSON object: OpenWebUI reads a task answer without a whole object as plain
    # text (its retrieval query), but cuts "...}...{..." to an empty query (utils/middleware.py,
    # 0.12.4). Grammars and logit biases still produce them when a request asks.
    output = np.array(matrix(n_vocab, n_embd), copy=True)
    output[2] = 0.0
    for brace in b"{}":
        output[3 + brace] = 0.0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return n_vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="where to write the .gguf file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_tiny_llama(args.path, seed=args.seed))


if __name__ == "__main__":
    main()
