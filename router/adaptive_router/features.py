"""Turn a prompt into the scorer's features.

Two kinds, both over a bounded window of the text:
- :func:`read_prompt`: what the learned model reads: the window's words (for word and word-pair
  weights), their WordPiece ids (for the token tables distilled from a sentence encoder, read
  over the whole window, its first and its last tokens, where the ask usually is) and the
  prompt's shape (length, lines);
- :func:`extract`: eight hand-written dimension scores (maths, code, reasoning depth...), which
  the model also weighs and which explain a decision in the ``/v1/route`` answer.

This runs on every request, so it is written for bounded, small cost rather than elegance:
- only a bounded window of the text is read (its head and its tail), so a 64 k-character RAG
  context costs about what a 2 k-character prompt does;
- :func:`read_prompt` splits words with one compiled regular expression and caches each word's
  WordPiece ids; :func:`extract` tokenises with one ``str.translate`` and one ``split``;
- character classes are counted with ``bytes.translate`` (also in C);
- all cue lists are merged into one dict, looked up once through a set intersection.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from . import _lexicon
from .wordpiece import WordPiece, basic_split

DIMENSIONS: tuple[str, ...] = (
    "math",
    "code",
    "reasoning",
    "constraints",
    "length",
    "entities",
    "negation",
    "simple",
)
"""The named dimensions, in the order of :attr:`Features.dimensions`."""

HEAD_CHARS = 500
"""Characters read from the start of a long text (where the ask usually is)."""
TAIL_CHARS = 250
"""Characters read from the end of a long text (where a question after a pasted document is)."""

_MATH, _CODE, _REASONING, _CONSTRAINT, _NEGATION, _SIMPLE = range(6)


def _merge_lexicons() -> dict[bytes, tuple[tuple[int, float], ...]]:
    merged: dict[bytes, list[tuple[int, float]]] = {}
    for index, lexicon in (
        (_MATH, _lexicon.MATH),
        (_CODE, _lexicon.CODE),
        (_REASONING, _lexicon.REASONING),
        (_CONSTRAINT, _lexicon.CONSTRAINT),
        (_NEGATION, _lexicon.NEGATION),
        (_SIMPLE, _lexicon.SIMPLE),
    ):
        for word, strength in lexicon.items():
            if strength > 0:
                merged.setdefault(word.encode(), []).append((index, strength))
    return {word: tuple(cues) for word, cues in merged.items()}


_CUES = _merge_lexicons()
_CUE_WORDS = frozenset(_CUES)

# ASCII punctuation becomes a space (apostrophes too, so "don't" gives "don" and "t"); the
# common non-ASCII marks are replaced separately. Bytes, because ``bytes.translate`` is a C
# table lookup while ``str.translate`` with a dict is slow on non-Latin-1 text.
_ASCII_PUNCTUATION = b"\"'`.,;:!?()[]{}<>/\\|=+-*^%$#@&~_\t\r\n"
_PUNCTUATION = bytes.maketrans(_ASCII_PUNCTUATION, b" " * len(_ASCII_PUNCTUATION))
_UNICODE_PUNCTUATION = re.compile(b"|".join(re.escape(c.encode()) for c in "´’‘“”¿¡«»…·—–\u00a0"))


def _char_classes() -> bytes:
    """A ``bytes.translate`` table mapping each byte to its class marker (space = no class)."""
    table = bytearray(b" " * 256)
    for chars, marker in (
        (b"0123456789", b"0"),
        (b"=+^*/<>%$\\", b"+"),  # maths symbols
        (b"{};()[]_#", b"{"),  # code symbols
        (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"A"),
        (b".!", b"."),  # sentence ends ("?" is its own class and ends sentences too)
        (b"?", b"?"),
    ):
        for char in chars:
            table[char] = marker[0]
    return bytes(table)


_CHAR_CLASSES = _char_classes()


def _phrases() -> tuple[tuple[bytes, bytes, int, float], ...]:
    """(gate word, phrase, dimension, strength): a phrase is searched for only when its gate
    word is among the text's words, which is a cheap set test."""
    out = []
    for index, strength, phrases in (
        (_REASONING, 0.8, _lexicon.STEP_PHRASES),
        (_REASONING, 0.6, _lexicon.REASONING_PHRASES),
        (_MATH, 0.6, _lexicon.MATH_PHRASES),
    ):
        for phrase in phrases:
            gate = phrase.split()[0].split("-")[0]
            out.append((gate.encode(), phrase.encode(), index, strength))
    return tuple(out)


_PHRASES = _phrases()
# UTF-8 lead bytes of Cyrillic (0xD0, 0xD1) and of CJK (0xE3-0xE9). Deleting every other byte
# value tells in one C pass whether the slow stem search below can find anything.
_NOT_CJK_OR_CYRILLIC_LEAD = bytes(
    b for b in range(256) if b not in (0xD0, 0xD1, *range(0xE3, 0xEA))
)
_NON_LATIN = (
    (_REASONING, tuple(s.encode() for s in _lexicon.NON_LATIN_REASONING)),
    (_MATH, tuple(s.encode() for s in _lexicon.NON_LATIN_MATH)),
    (_CODE, tuple(s.encode() for s in _lexicon.NON_LATIN_CODE)),
)


def length_score(n_words: int) -> float:
    """The length dimension: log-scaled word count of the window, 1.0 from 120 words on
    (a full window holds about 130)."""
    return min(math.log1p(n_words) / _LOG_LONG, 1.0)


_LOG_LONG = math.log1p(120)


PROMPT_HEAD_CHARS = 1500
"""Characters of a long prompt's start the learned model reads."""
PROMPT_TAIL_CHARS = 500
"""Characters of a long prompt's end the learned model reads (a question after a paste)."""
SEGMENT_TOKENS = 24
"""Tokens in the "head" and "tail" segments: the ask is usually at one end of a paste."""
LONG_CHARS = 600
"""From this many characters on, a prompt's words and pairs also read a second weight table,
learnt on long prompts only: in a pasted document most words are the paste's topic, not the
ask, so a word says something different there than in a one-line question."""
SHAPE: tuple[str, ...] = ("log_chars", "log_lines")
"""The shape features, in the order of :attr:`PromptFeatures.shape`."""
_LOG_MAX_CHARS = math.log(64_000)
_LOG_MAX_LINES = math.log(1_000)


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """What the learned model reads of one prompt."""

    words: list[str]
    """Lower-cased, accent-stripped words and punctuation marks of the window, in order."""
    ids: list[int]
    """WordPiece ids of those words, in order."""
    shape: tuple[float, ...]
    """One value per name in :data:`SHAPE`, about 0 to 1."""
    long: bool = False
    """At least :data:`LONG_CHARS` characters: the long-prompt word weights apply too."""


def prompt_window(text: str) -> str:
    """The part of ``text`` the learned model reads: all of it, or its head and tail."""
    if len(text) <= PROMPT_HEAD_CHARS + PROMPT_TAIL_CHARS:
        return text
    return text[:PROMPT_HEAD_CHARS] + "\n" + text[-PROMPT_TAIL_CHARS:]


def read_prompt(text: str, tokenizer: WordPiece) -> PromptFeatures:
    """Words, token ids and shape of ``text``. Cost bounded by the window.

    Read without the whitespace around it: a trailing blank line (what some clients send)
    changes nothing that is asked, yet it used to count as lines."""
    text = text.strip()
    words = basic_split(prompt_window(text))
    word_ids = tokenizer.word_ids
    ids: list[int] = []
    for word in words:
        ids.extend(word_ids(word))
    shape = (
        math.log1p(len(text)) / _LOG_MAX_CHARS,
        math.log1p(text.count("\n")) / _LOG_MAX_LINES,
    )
    return PromptFeatures(words=words, ids=ids, shape=shape, long=len(text) >= LONG_CHARS)


def word_grams(words: list[str]) -> set[str]:
    """The distinct words and adjacent word pairs (joined by a space) of ``words``."""
    grams = set(words)
    grams.update(a + " " + b for a, b in pairwise(words))
    return grams


def segments(ids: list[int]) -> tuple[list[int], list[int], list[int]]:
    """(all, head, tail) token segments: the window, its first and its last tokens."""
    return ids, ids[:SEGMENT_TOKENS], ids[-SEGMENT_TOKENS:]


def _saturate(x: float, half: float) -> float:
    """Map a non-negative count to [0, 1): ``half`` maps to 0.5."""
    return x / (x + half) if x > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Features:
    """What the scorer knows about one text."""

    dimensions: tuple[float, ...]
    """One value in [0, 1] per name in :data:`DIMENSIONS`."""
    words: frozenset[bytes]
    """Distinct lower-cased words (UTF-8) of the window read."""

    def as_dict(self) -> Mapping[str, float]:
        return dict(zip(DIMENSIONS, self.dimensions, strict=True))


def window(text: str) -> str:
    """The part of ``text`` the scorer reads: all of it, or its head and tail when long."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def extract(text: str) -> Features:
    """Features of ``text``. Deterministic; cost bounded by the window, not the text.

    Length is measured on the window too: a long pasted document does not by itself make a
    task hard (what is asked of it does), and the ask is at the start or the end. The
    whitespace around ``text`` is not read (as in :func:`read_prompt`).
    """
    part = window(text.strip())
    lower = part.lower()
    raw_lower = lower.encode("utf-8", "surrogatepass")
    non_ascii = len(raw_lower) != len(lower)
    if non_ascii:
        raw_lower = _UNICODE_PUNCTUATION.sub(b" ", raw_lower)
    tokens = raw_lower.translate(_PUNCTUATION).split()
    n_words = len(tokens)
    if n_words:  # how the text opens says much about the task ("write a", "what is", "how many")
        tokens.append(b"^" + tokens[0])
        if n_words > 1:
            tokens.append(b"^" + tokens[0] + b"_" + tokens[1])
    words = frozenset(tokens)

    cue = [0.0] * 6
    # Sorted: a set's order changes with the process's hash seed, and floating-point sums
    # with their order; the trainer must see the same value in every run (a few words, ~1 µs).
    for word in sorted(words & _CUE_WORDS):
        for index, strength in _CUES[word]:
            cue[index] += strength

    raw = part.encode("utf-8", "surrogatepass")
    classes = raw.translate(_CHAR_CLASSES)  # one byte per character class, then fast counts
    digits = classes.count(b"0")
    math_symbols = classes.count(b"+")
    code_symbols = classes.count(b"{")
    upper = classes.count(b"A")
    questions = classes.count(b"?")
    sentences = classes.count(b".") + questions + 1

    for gate, phrase, index, strength in _PHRASES:
        if gate in words and phrase in raw_lower:
            cue[index] += strength
    if non_ascii and raw_lower.translate(None, _NOT_CJK_OR_CYRILLIC_LEAD):
        for index, stems in _NON_LATIN:
            cue[index] += sum(1.0 for stem in stems if stem in raw_lower)
    # Multi-byte searches cost ~1 µs per 2 kB each: gate them on a one-byte test (memchr).
    if b"`" in raw and b"```" in raw:
        cue[_CODE] += 1.5
    if b"\\" in raw and (b"\\frac" in raw or b"\\sqrt" in raw or b"\\(" in raw):
        cue[_MATH] += 1.0
    code_lines = list_items = 0
    if b"\n" in raw:
        code_lines = raw.count(b"\n    ") + raw.count(b"\n\t")
        list_items = raw.count(b"\n- ") + raw.count(b"\n* ") + raw.count(b"\n1")

    dimensions = (
        _saturate(cue[_MATH] + 0.25 * min(math_symbols, 12) + 0.08 * min(digits, 25), 2.0),
        _saturate(cue[_CODE] + 0.12 * min(code_symbols, 40) + 0.3 * min(code_lines, 10), 2.5),
        _saturate(cue[_REASONING], 1.0),
        _saturate(cue[_CONSTRAINT] + 0.5 * max(questions - 1, 0) + 0.4 * list_items, 2.0),
        length_score(n_words),
        _saturate(max(upper - sentences, 0), 6.0),
        _saturate(cue[_NEGATION], 1.5),
        _saturate(cue[_SIMPLE], 1.0),
    )
    return Features(dimensions=dimensions, words=words)
