"""The learned part of the scorer: a logistic model over the dimension scores and words.

The weights are a small text file shipped with the package (``complexity_model.txt``), written
by ``benchmarks/train_scorer.py`` from the labelled dev set. One line per weight::

    bias -1.25
    dim math 2.10
    word prove 0.84

Words are stored as UTF-8 text; they never contain white space (the tokenizer splits on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .features import DIMENSIONS, Features

MODEL_FILE = "complexity_model.txt"


class ModelFileError(ValueError):
    """The weights file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class LinearModel:
    """``sigmoid(bias + dims · dim_weights + sum of weights of the words present)``."""

    bias: float
    dim_weights: tuple[float, ...]
    word_weights: dict[bytes, float] = field(default_factory=dict)
    header: tuple[str, ...] = ()
    _vocabulary: frozenset[bytes] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )

    def __post_init__(self) -> None:
        # A frozenset, so that ``words & vocabulary`` walks the (small) prompt's words only;
        # intersecting with ``dict.keys()`` would walk the whole vocabulary on every call.
        object.__setattr__(self, "_vocabulary", frozenset(self.word_weights))

    def logit(self, features: Features) -> float:
        total = self.bias
        for value, weight in zip(features.dimensions, self.dim_weights, strict=True):
            total += value * weight
        weights = self.word_weights
        for word in features.words & self._vocabulary:
            total += weights[word]
        return total

    def probability(self, features: Features) -> float:
        return sigmoid(self.logit(features))

    def dump(self) -> str:
        lines = [f"# {line}" for line in self.header]
        lines.append(f"bias {self.bias:.6f}")
        lines.extend(
            f"dim {name} {weight:.6f}"
            for name, weight in zip(DIMENSIONS, self.dim_weights, strict=True)
        )
        lines.extend(
            f"word {word.decode()} {weight:.6f}"
            for word, weight in sorted(self.word_weights.items(), key=lambda kv: -abs(kv[1]))
        )
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> LinearModel:
        bias: float | None = None
        dims: dict[str, float] = {}
        words: dict[bytes, float] = {}
        header: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if line.startswith("#"):
                header.append(line[1:].strip())
                continue
            parts = line.split()
            try:
                if parts[0] == "bias" and len(parts) == 2:
                    bias = float(parts[1])
                elif parts[0] == "dim" and len(parts) == 3 and parts[1] in DIMENSIONS:
                    dims[parts[1]] = float(parts[2])
                elif parts[0] == "word" and len(parts) == 3:
                    words[parts[1].encode()] = float(parts[2])
                else:
                    raise ValueError(line)
            except ValueError as exc:
                raise ModelFileError(f"{source}:{number}: cannot read {line!r}") from exc
        missing = [name for name in DIMENSIONS if name not in dims]
        if bias is None or missing:
            raise ModelFileError(f"{source}: missing bias or dims {missing}")
        return cls(
            bias=bias,
            dim_weights=tuple(dims[name] for name in DIMENSIONS),
            word_weights=words,
            header=tuple(header),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> LinearModel:
        """Load weights from ``path``, or the ones shipped with the package."""
        if path is None:
            ref = resources.files(__package__).joinpath(MODEL_FILE)
            return cls.parse(ref.read_text(encoding="utf-8"), source=MODEL_FILE)
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8"), source=str(path))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
