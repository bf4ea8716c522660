"""Read what the scorer needs out of an OpenAI ``messages`` list.

The last user turn is the ask; the system prompt and earlier user turns are context. Content
may be a string or a list of parts (``{"type": "text", "text": ...}``, ``image_url``,
``input_audio``...): text parts are joined, images are counted for the vision rule. Assistant
turns are not read: they are long, and the user's own words say what the task is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Message = Mapping[str, Any]

IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})


@dataclass(frozen=True, slots=True)
class Conversation:
    """The parts of a chat request that routing looks at."""

    last_user: str
    """Text of the last user turn (the ask)."""
    context: str
    """System prompt and up to ``context_turns`` earlier user turns, newest last."""
    images: int
    """Image parts anywhere in the request."""
    total_chars: int
    """Characters of text in all messages (for the context-length estimate)."""
    system: str = ""
    """The system (and developer) messages, joined."""


def content_text(content: Any) -> tuple[str, int]:
    """(joined text, number of image parts) of one message's ``content``."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        texts: list[str] = []
        images = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in IMAGE_PART_TYPES:
                images += 1
        return "\n".join(texts), images
    return str(content), 0


def read_conversation(messages: Sequence[Message], context_turns: int = 2) -> Conversation:
    """Split ``messages`` into ask, context and counts. Tolerates odd shapes, never raises."""
    system: list[str] = []
    users: list[str] = []
    images = 0
    total = 0
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        text, n_images = content_text(message.get("content"))
        images += n_images
        total += len(text)
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            users.append(text)
    last = users[-1] if users else ""
    earlier = users[-1 - context_turns : -1] if context_turns > 0 and len(users) > 1 else []
    context = "\n".join([*system, *earlier]).strip()
    return Conversation(
        last_user=last,
        context=context,
        images=images,
        total_chars=total,
        system="\n".join(system),
    )
