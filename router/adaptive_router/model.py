"""The learned part of the scorer: one calibrated logistic model, stored as a text file.

``benchmarks/train_scorer.py`` writes it (``complexity_model.txt``, shipped with the package).
Every input the model reads is linear in something cheap to compute, so the whole model is a
sum of looked-up weights::

    logit = bias
          + sum(dimension value x weight)               the eight rule dimensions
          + sum(shape value x weight)                   length, lines
          + sum(weights of the words and word pairs present) / sqrt(distinct words and pairs)
            (a prompt of LONG_CHARS or more adds its words' long-prompt weights to that sum)
          + for each segment (whole window, first tokens, last tokens):
                mean over its WordPiece tokens of that token's weight

The token weights are static token embeddings distilled from all-MiniLM-L6-v2 (see
``benchmarks/distill_embeddings.py``), each projected once, at training time, on the weight
vector the logistic regression learned for that segment's mean embedding: the mean of the
projections is the projection of the mean, so no vector is stored or averaged at request time.
The token lines are the tokenizer's vocabulary too, in id order. Calibration (Platt scaling on
out-of-fold predictions) is folded into the weights, so ``sigmoid(logit)`` is the probability
and 0.5 the balanced point. File format, one record a line::

    # comment
    format 3
    bias -0.42
    dim math 0.31
    shape log_chars -0.20
    gram why 0.12
    gram trade - 0.08            (a word pair: the words, then the weight)
    long list the 0.05           (a long-prompt weight, added for prompts of LONG_CHARS or more)
    token [PAD] 0.0 0.0 0.0      (every vocabulary entry, in id order: one weight per segment)
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from .features import DIMENSIONS, SHAPE, PromptFeatures, segments, word_grams
from .wordpiece import WordPiece

MODEL_FILE = "complexity_model.txt"
FORMAT = "3"
SEGMENTS: tuple[str, ...] = ("all", "head", "tail")


class ModelFileError(ValueError):
    """The weights file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class ComplexityModel:
    """Calibrated logistic model over rule dimensions, shape, words and token tables."""

    bias: float
    dim_weights: tuple[float, ...]
    shape_weights: tuple[float, ...]
    gram_weights: dict[str, float]
    long_gram_weights: dict[str, float]
    """Added to :attr:`gram_weights` for a long prompt (see :data:`~.features.LONG_CHARS`)."""
    vocabulary: tuple[str, ...]
    token_weights: tuple[array, ...]  # type: ignore[type-arg]
    """One ``array('d')`` per name in :data:`SEGMENTS`, indexed by token id."""
    header: tuple[str, ...] = ()
    tokenizer: WordPiece = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.token_weights) != len(SEGMENTS) or any(
            len(t) != len(self.vocabulary) for t in self.token_weights
        ):
            raise ModelFileError("one token weight per segment and vocabulary entry expected")
        object.__setattr__(
            self, "tokenizer", WordPiece({tok: i for i, tok in enumerate(self.vocabulary)})
        )

    def logit(self, dims: tuple[float, ...], prompt: PromptFeatures) -> float:
        total = self.bias
        for value, weight in zip(dims, self.dim_weights, strict=True):
            total += value * weight
        for value, weight in zip(prompt.shape, self.shape_weights, strict=True):
            total += value * weight
        if prompt.words:
            grams = word_grams(prompt.words)
            weights = self.gram_weights
            # fsum: exact, so the set's order (which changes with the hash seed) cannot change
            # the score in its last bits from one process to the next.
            found = [weights[gram] for gram in grams & weights.keys()]
            if prompt.long:
                extra = self.long_gram_weights
                found.extend([extra[gram] for gram in grams & extra.keys()])
            total += math.fsum(found) / math.sqrt(len(grams))
        if prompt.ids:
            for ids, table in zip(segments(prompt.ids), self.token_weights, strict=True):
                total += sum([table[i] for i in ids]) / len(ids)
        return total

    def dump(self) -> str:
        lines = [f"# {line}" for line in self.header]
        lines.append(f"format {FORMAT}")
        lines.append(f"bias {self.bias:.6f}")
        lines.extend(
            f"dim {name} {w:.6f}" for name, w in zip(DIMENSIONS, self.dim_weights, strict=True)
        )
        lines.extend(
            f"shape {name} {w:.6f}" for name, w in zip(SHAPE, self.shape_weights, strict=True)
        )
        lines.extend(
            f"gram {gram} {w:.5f}"
            for gram, w in sorted(self.gram_weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        )
        lines.extend(
            f"long {gram} {w:.5f}"
            for gram, w in sorted(
                self.long_gram_weights.items(), key=lambda kv: (-abs(kv[1]), kv[0])
            )
        )
        for i, token in enumerate(self.vocabulary):
            values = " ".join(f"{t[i]:.5f}" for t in self.token_weights)
            lines.append(f"token {token} {values}")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> ComplexityModel:
        bias: float | None = None
        fmt: str | None = None
        dims: dict[str, float] = {}
        shape: dict[str, float] = {}
        grams: dict[str, float] = {}
        long_grams: dict[str, float] = {}
        vocabulary: list[str] = []
        tables: tuple[array, ...] = tuple(array("d") for _ in SEGMENTS)  # type: ignore[type-arg]
        header: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if line.startswith("#"):
                header.append(line[1:].strip())
                continue
            parts = line.split(" ")
            kind = parts[0]
            try:
                if kind == "token" and len(parts) == 2 + len(SEGMENTS):
                    vocabulary.append(parts[1])
                    for table, value in zip(tables, parts[2:], strict=True):
                        table.append(float(value))
                elif kind in ("gram", "long") and len(parts) in (3, 4):
                    target = grams if kind == "gram" else long_grams
                    target[" ".join(parts[1:-1])] = float(parts[-1])
                elif kind == "dim" and len(parts) == 3 and parts[1] in DIMENSIONS:
                    dims[parts[1]] = float(parts[2])
                elif kind == "shape" and len(parts) == 3 and parts[1] in SHAPE:
                    shape[parts[1]] = float(parts[2])
                elif kind == "bias" and len(parts) == 2:
                    bias = float(parts[1])
                elif kind == "format" and len(parts) == 2:
                    fmt = parts[1]
                else:
                    raise ValueError(line)
            except ValueError as exc:
                raise ModelFileError(f"{source}:{number}: cannot read {line[:80]!r}") from exc
        missing = [n for n in DIMENSIONS if n not in dims] + [n for n in SHAPE if n not in shape]
        if fmt != FORMAT:
            raise ModelFileError(f"{source}: format {fmt!r}, expected {FORMAT} (retrain the model)")
        if bias is None or missing or not vocabulary:
            raise ModelFileError(f"{source}: missing bias, tokens or weights {missing}")
        return cls(
            bias=bias,
            dim_weights=tuple(dims[n] for n in DIMENSIONS),
            shape_weights=tuple(shape[n] for n in SHAPE),
            gram_weights=grams,
            long_gram_weights=long_grams,
            vocabulary=tuple(vocabulary),
            token_weights=tables,
            header=tuple(header),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> ComplexityModel:
        """Load weights from ``path``, or the ones shipped with the package (parsed once per
        process and shared: the model is immutable, and every app a process builds would
        otherwise keep its own ~70 MiB copy alive, since FastAPI 0.165 holds each endpoint, and
        so its app's router, in module-level ``lru_cache``s of up to 4,096 entries:
        ``fastapi/dependencies/models.py``, ``_is_gen_callable_cached``)."""
        if path is None:
            return _shipped_model()
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), source=str(path))


@cache
def _shipped_model() -> ComplexityModel:
    ref = resources.files(__package__).joinpath(MODEL_FILE)
    return ComplexityModel.parse(ref.read_text(encoding="utf-8"), source=MODEL_FILE)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
