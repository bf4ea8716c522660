"""The second opinion: a fine-tuned sentence encoder, asked only when the linear model is unsure.

The linear model (:mod:`.model`) reads words and static token tables, so it cannot see what a
word means in its sentence; held out by family it gets about 6 % of prompts wrong, most of them
close to its balanced point. all-MiniLM-L6-v2 fine-tuned end to end on the same training rows
(``benchmarks/finetune_encoder.py``) reads the tokens in context. It costs milliseconds where
the linear model costs microseconds, so it runs only on prompts whose calibrated logit is within
the band (``|logit| < band``, about one prompt in eight), or, for a prompt that reads as English
(:func:`reads_as_english`), within the wider ``english_band`` (about one in six in all): the
encoder was pre-trained on English, and held out it halves the linear model's errors on English
prompts near the line but not on others. There its logit and the linear one are combined by a
logistic regression fitted on prompts of families neither model saw
(``benchmarks/export_encoder.py``), so the result is still a calibrated probability and 0.5
still the balanced point.

The encoder ships as one ONNX file (int8 weights, per channel; ~23 MB) with the band and the
combination's weights in its metadata, and runs on onnxruntime's CPU provider with one thread,
in the caller's thread (the service calls it from a worker thread, never on the event loop).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENCODER_FILE = "difficulty_encoder.onnx"
CLS, SEP = 101, 102
"""all-MiniLM-L6-v2's [CLS] and [SEP] ids (its ``vocab.txt``, the router's vocabulary too)."""
HEAD_TOKENS = 96
TAIL_TOKENS = 30
"""A long prompt is read as its first and last tokens, as the encoder was fine-tuned."""
METADATA_KEYS = ("band", "linear_weight", "encoder_weight", "bias")
ENGLISH_BAND_KEY = "english_band"
"""Optional metadata (files written before it ask over ``band`` alone)."""

ENGLISH_WORDS = frozenset(
    (
        *("the", "a", "an", "and", "or", "of", "to", "in", "is", "are", "was", "were", "be"),
        *("it", "this", "that", "what", "how", "why", "which", "who", "with", "for", "on", "at"),
        *("by", "from", "as", "can", "do", "does", "you", "your", "i", "my", "me", "we", "not"),
        "if",
    )
)
"""Thirty-nine English function words: common in any English request, rare in other languages."""
ENGLISH_SHARE = 0.12
ENGLISH_READ_CHARS = 2000
_WORD = re.compile(r"[^\W\d_]+")


def reads_as_english(text: str) -> bool:
    """Whether at least :data:`ENGLISH_SHARE` of the words of ``text`` (runs of letters in its
    first :data:`ENGLISH_READ_CHARS` characters) are :data:`ENGLISH_WORDS`."""
    words = _WORD.findall(text[:ENGLISH_READ_CHARS].lower())
    if not words:
        return False
    return sum(word in ENGLISH_WORDS for word in words) >= ENGLISH_SHARE * len(words)


class EncoderFileError(ValueError):
    """The encoder file is missing, unreadable or lacks the cascade's metadata."""


@dataclass(frozen=True)
class Cascade:
    """Where the second opinion is asked and how the two logits combine."""

    band: float
    """Ask when the linear model's calibrated logit is within ``±band``."""
    linear_weight: float
    encoder_weight: float
    bias: float
    english_band: float | None = None
    """Ask within ``±english_band`` when the prompt :func:`reads_as_english` (``None``: no wider
    band)."""

    def unsure(self, logit: float, text: str = "") -> bool:
        """Whether to ask the encoder about ``text``, which the linear model scored ``logit``."""
        magnitude = abs(logit)
        if magnitude < self.band:
            return True
        wider = self.english_band
        return wider is not None and magnitude < wider and reads_as_english(text)

    def combine(self, linear_logit: float, encoder_logit: float) -> float:
        """The calibrated logit of both opinions together."""
        return self.linear_weight * linear_logit + self.encoder_weight * encoder_logit + self.bias


def encoder_input(ids: Sequence[int]) -> list[int]:
    """The encoder's token ids for a prompt's WordPiece ids: [CLS], at most the first
    :data:`HEAD_TOKENS` and last :data:`TAIL_TOKENS`, [SEP]."""
    if len(ids) > HEAD_TOKENS + TAIL_TOKENS:
        ids = [*ids[:HEAD_TOKENS], *ids[-TAIL_TOKENS:]]
    return [CLS, *ids, SEP]


class DifficultyEncoder:
    """The fine-tuned encoder as an onnxruntime session (built once; thread-safe)."""

    def __init__(self, path: str | Path | None = None) -> None:
        try:
            import numpy as np
            import onnxruntime as ort
        except ImportError as exc:  # a core dependency; only a broken install lacks it
            raise EncoderFileError(
                f"the second opinion needs onnxruntime and numpy ({exc}); "
                "pip install gemma4-adaptive-router, or set second_opinion: false"
            ) from None
        self._np = np
        source = str(path) if path is not None else str(_shipped_path())
        options = ort.SessionOptions()
        # One thread, the caller's: the router shares the host's cores with llama.cpp, and a
        # thread pool per session would spin on cores it does not need for a ~5 ms pass.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no initializer notices in the router's log
        try:
            self._session = ort.InferenceSession(
                source, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EncoderFileError(f"{source}: cannot load the encoder ({exc})") from None
        meta = self._session.get_modelmeta().custom_metadata_map
        try:
            values = {key: float(meta[key]) for key in METADATA_KEYS}
        except (KeyError, ValueError):
            raise EncoderFileError(
                f"{source}: metadata {METADATA_KEYS} expected (benchmarks/export_encoder.py "
                f"writes them), found {sorted(meta)}"
            ) from None
        english_band: float | None = None
        if ENGLISH_BAND_KEY in meta:
            try:
                english_band = float(meta[ENGLISH_BAND_KEY])
            except ValueError:
                value = meta[ENGLISH_BAND_KEY]
                raise EncoderFileError(
                    f"{source}: metadata {ENGLISH_BAND_KEY}={value!r} is not a number"
                ) from None
        self.cascade = Cascade(**values, english_band=english_band)
        self.source = source
        self.description = meta.get("description", "")

    def logit(self, ids: Sequence[int]) -> float:
        """The encoder's own logit for a prompt's WordPiece ids (see :func:`encoder_input`)."""
        np = self._np
        row = np.asarray([encoder_input(ids)], dtype=np.int64)
        out: Any = self._session.run(None, {"input_ids": row})[0]
        value = float(out[0][0])
        return value if math.isfinite(value) else 0.0


@cache
def shipped_encoder() -> DifficultyEncoder:
    """The encoder shipped with the package, loaded once per process and shared (~60 MiB)."""
    return DifficultyEncoder()


def _shipped_path() -> Path:
    ref = resources.files(__package__).joinpath(ENCODER_FILE)
    return Path(str(ref))
