"""Cache-friendly RAG prompts: what stays the same goes first, what changes goes last.

Prefix caches (SGLang's RadixAttention, vLLM's automatic prefix caching, llama.cpp's slot cache)
reuse the work for the longest prefix a new prompt shares with earlier ones. So:

1. the fixed system prompt first (no dates, user names or request ids in it),
2. then the retrieved documents, in a stable order (by id, not by score, so two questions that
   retrieve the same documents send the same bytes),
3. then the conversation so far, and the new question last.

``shared_prefix`` measures how much two prompts have in common, as an engine would see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    title: str = ""


def format_documents(documents: Sequence[Document]) -> str:
    ordered = sorted(documents, key=lambda d: d.id)
    return "\n\n".join(
        f"[{d.id}] {d.title}\n{d.text}".strip() if d.title else f"[{d.id}]\n{d.text}"
        for d in ordered
    )


def build_messages(
    system: str,
    documents: Sequence[Document],
    question: str,
    history: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The right structure: system, documents, history, question."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "Documents:\n" + format_documents(documents)},
        {"role": "assistant", "content": "I have read the documents."},
        *history,
        {"role": "user", "content": question},
    ]


def build_messages_wrong(
    system: str, documents: Sequence[Document], question: str, stamp: str
) -> list[dict[str, Any]]:
    """A common anti-pattern, for comparison: a per-request stamp (time, user) and the question
    at the top of the system prompt, documents in retrieval order after it. Nothing is shared
    from the first bytes on, so no prefix cache can help."""
    return [
        {"role": "system", "content": f"{stamp}\nQuestion: {question}\n{system}"},
        {
            "role": "user",
            "content": "Documents:\n"
            + "\n\n".join(f"[{d.id}]\n{d.text}" for d in reversed(documents)),
        },
    ]


def render(messages: Sequence[dict[str, Any]]) -> str:
    """A plain rendering of a chat, enough to compare prefixes (engines add their template)."""
    return "".join(f"<{m['role']}>{m['content']}\n" for m in messages)


def shared_prefix(a: str | Sequence[dict[str, Any]], b: str | Sequence[dict[str, Any]]) -> int:
    """Characters two prompts share from the start (messages are rendered first)."""
    left = a if isinstance(a, str) else render(a)
    right = b if isinstance(b, str) else render(b)
    n = 0
    for x, y in zip(left, right, strict=False):
        if x != y:
            break
        n += 1
    return n


def shared_fraction(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> float:
    """Shared prefix as a share of the second prompt (the one that would hit the cache)."""
    second = render(b)
    return shared_prefix(render(a), second) / len(second) if second else 0.0
