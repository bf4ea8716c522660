"""BERT's uncased WordPiece tokenizer, in pure Python, for the scorer's token table.

The scorer's vocabulary is all-MiniLM-L6-v2's (``bert-base-uncased``'s 30,522 entries). This
module splits text the way that model's tokenizer does (Hugging Face ``BertNormalizer`` with
``lowercase`` and accent stripping, ``BertPreTokenizer``, greedy longest-match WordPiece with the
``##`` prefix) closely enough that the ids it returns are the model's own on ordinary text; the
rare differences (a non-ASCII symbol next to a letter, say) only need to be the same at
training and at request time, and they are, because both use this module.

Why not the ``tokenizers`` package: measured on this repository's prompts, the Python call
overhead of the Rust tokenizer is about what this module costs on the short windows the scorer
reads, and one dependency less keeps the router image small. Words are cached, so the common
ones cost one dict look-up.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

UNK = "[UNK]"
MAX_WORD_CHARS = 100
"""A longer "word" is one ``[UNK]``, as in BERT."""

# BERT's pre-tokenizer: a word is a run of characters that are neither white space nor
# punctuation; each punctuation mark is a token of its own, and so is each CJK ideograph.
# Punctuation is every printable ASCII character that is not a letter or digit, and every
# character of a Unicode "P" category (built once, for the Basic Multilingual Plane).
_CJK = (
    "\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\U0002f800-\U0002fa1f"
)


def _punctuation_class() -> str:
    marks = [
        chr(c)
        for c in range(33, 0x10000)
        if (c < 128 and not chr(c).isalnum()) or unicodedata.category(chr(c)).startswith("P")
    ]
    return "".join(re.escape(m) for m in marks)


_PUNCT = _punctuation_class()
_TOKEN = re.compile(rf"[{_CJK}]|[{_PUNCT}]|[^\s{_PUNCT}{_CJK}]+")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# BERT's clean_text drops NUL, U+FFFD and control and format characters (category C).
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffd]"
)


def basic_split(text: str) -> list[str]:
    """Lower-case, strip accents, split into words and single punctuation marks."""
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFD", _CONTROL.sub("", text)))
    return _TOKEN.findall(text)


class WordPiece:
    """Greedy longest-match WordPiece over a fixed vocabulary (token -> id)."""

    def __init__(self, vocab: Mapping[str, int], cache_size: int = 1 << 16) -> None:
        self.vocab = dict(vocab)
        self.unk_id = self.vocab.get(UNK, 0)
        self._max_piece = max((len(t) for t in self.vocab), default=1)
        # The cache is per instance: a bound lru_cache would keep every instance alive.
        self.word_ids = lru_cache(maxsize=cache_size)(self._word_ids)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        vocab = self.vocab
        hit = vocab.get(word)
        if hit is not None:
            return (hit,)
        if len(word) > MAX_WORD_CHARS:
            return (self.unk_id,)
        ids: list[int] = []
        start, n = 0, len(word)
        while start < n:
            end = min(n, start + self._max_piece)
            found = None
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk_id,)
            ids.append(found)
            start = end
        return tuple(ids)

    def ids(self, text: str) -> list[int]:
        """Token ids of ``text`` (no [CLS]/[SEP])."""
        out: list[int] = []
        word_ids = self.word_ids
        for word in basic_split(text):
            out.extend(word_ids(word))
        return out
