"""Housekeeping prompts: a chat UI asking the model for a title, tags, follow-up suggestions,
search queries, a summary or an emoji about a conversation it embeds.

Chat UIs (OpenWebUI, LibreChat, LobeChat...) send these beside every chat message, to the same
model. Their instructions are full of constraints and output formats ("JSON format:", "2-4
words", "no punctuation") and they quote the conversation, hard questions included: scored as
prompts they look hard (OpenWebUI's default templates scored near 1.0). They are not: a 4B model
writes a title as well as a 26B one, and they must not take the big model's few slots.

Recognised by structure, not by one UI's wording: an embedded transcript (``<chat_history>``
tags, or at least two turns that start with speaker labels such as ``USER:`` / ``Assistant:``)
or a quoted message (``Message: ```...``), *and* an instruction outside it that asks for one of
the housekeeping products or for machine-readable output. A question that merely mentions JSON
or a title, with no transcript, is not a task; a pasted transcript with a hard question about
it ("explain why this proof is wrong") is not either.

Cost: lower-casing and a few substring searches over at most ``2 * WINDOW`` characters of each
of the system prompt and the last user turn; the line-by-line reading only runs when one of
the markers is there.
"""

from __future__ import annotations

import re

from .conversation import Conversation

WINDOW = 2000
"""Characters read from each end of the system prompt and of the last user turn."""

SPEAKERS = frozenset({"user", "human", "assistant", "ai", "bot", "model", "response", "system"})
"""Labels that start a quoted turn (``USER:``, ``Assistant:``, LibreChat's ``||>User:``...)."""

_TAG_MARKERS = ("<chat_history", "<conversation", "<transcript", "<dialogue", "<history")
_QUOTE_MARKERS = ("message:", "text:", "input:")

# Matched against "\n" + the lower-cased text: no re.IGNORECASE, and a pattern that starts with
# a literal newline lets the engine jump from line to line (measured: 5-10x faster than ^ + M).
_TAGS = re.compile(r"</?\s*(?:chat_history|conversation|history|transcript|dialogue)\s*>")
_SPEAKER_LINE = re.compile(r"\n[ \t>*|-]*(" + "|".join(sorted(SPEAKERS)) + r")[ \t]*[:：]")
_QUOTED_MESSAGE = re.compile(r"\n[ \t]*(?:message|text|input)[ \t]*[:：][ \t]*(?:```|\"|<text>)")

# What the instruction asks for (English, Spanish, French, German, Portuguese, Chinese): word
# starts, found with str.find (a regular expression over the whole instruction was 30x slower).
_PRODUCTS = (
    "title", "tag", "follow-up", "follow up", "followup", "follow_up", "suggestion",
    "search quer", "queries", "summar", "emoji", "autocomplet", "keyword", "categori", "topic",
    "títul", "titul", "titre", "titel", "etiquet", "résum", "resum", "zusammenfass", "schlagw",
    "标题", "总结", "摘要", "标签", "概括",
)  # fmt: skip
_MACHINE_OUTPUT = (
    "json", '{"', '{ "', "respond only", "return only", "output only", "no punctuation",
    "no quotation", "without any introductory", "without any additional", "without any extra",
)  # fmt: skip


def _mentions(text: str, starts: tuple[str, ...]) -> bool:
    """Does ``text`` contain a word that begins with one of ``starts``?"""
    for start in starts:
        i = text.find(start)
        while i >= 0:
            if i == 0 or not start.isascii() or not text[i - 1].isalnum():
                return True
            i = text.find(start, i + 1)
    return False


def _ends(text: str) -> str:
    return text if len(text) <= 2 * WINDOW else text[:WINDOW] + "\n" + text[-WINDOW:]


def _split(text: str) -> tuple[str, int, int]:
    """(the instruction, quoted turns, distinct speakers) of ``text`` (lower-cased): the text
    around what transcript tags enclose, or else around the quoted turns (from the first speaker
    line to the end of the last turn: a blank line, or the end of the text)."""
    tagged = False
    if any(marker in text for marker in _TAG_MARKERS):
        tags = list(_TAGS.finditer(text))
        if len(tags) >= 2:
            instruction = text[: tags[0].start()] + text[tags[-1].end() :]
            text, tagged = text[tags[0].end() : tags[-1].start()], True
    first = last = None
    turns = 0
    speakers: set[str] = set()
    for turn in _SPEAKER_LINE.finditer(text):
        if first is None:
            first = turn
        if turns < 16:
            speakers.add(turn.group(1))
        turns += 1
        last = turn
    if tagged:  # a tagged history is a transcript, whatever its lines look like
        return instruction, max(turns, 2), len(speakers) + 1
    if first is None or last is None:
        return text, 0, 0
    end = text.find("\n\n", last.end())
    return text[: first.start()] + ("" if end < 0 else text[end:]), turns, len(speakers)


def is_housekeeping(conversation: Conversation) -> bool:
    """True when the request is a UI's background task about an embedded conversation."""
    text = _ends(conversation.last_user)
    if conversation.system:
        text = _ends(conversation.system) + "\n" + text
    text = "\n" + text.lower()
    message = "<text>" in text or (
        any(m in text for m in _QUOTE_MARKERS) and _QUOTED_MESSAGE.search(text) is not None
    )
    instruction, turns, speakers = _split(text)
    if not (message or (turns >= 2 and (speakers >= 2 or turns >= 3))):
        return False
    return _mentions(instruction, _PRODUCTS) or _mentions(instruction, _MACHINE_OUTPUT)
