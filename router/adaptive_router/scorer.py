"""Complexity scoring: how likely a prompt needs the strong model, as a number in [0, 1].

A calibrated logistic model (:mod:`.model`) reads a bounded window of the prompt: its words and
word pairs, token tables distilled once from a sentence encoder (all-MiniLM-L6-v2) over the
whole window and over its first and last tokens, the prompt's shape, and eight hand-written
dimensions (maths, code, reasoning depth, constraints, length, entities, negation, "simple
task" cues), which also explain the score. It was trained on prompts written by family, both
labels in each, so that neither length nor opening words decide. No inference, no network, no
model download at run time: a few hundred dictionary and array look-ups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .conversation import Conversation, Message, read_conversation
from .features import DIMENSIONS, extract, length_score, read_prompt
from .model import ComplexityModel, sigmoid

FOLLOW_UP_WORDS = 40
"""A last turn shorter than this many words is a follow-up whose meaning leans on context."""
_FOLLOW_UP_LENGTH = length_score(FOLLOW_UP_WORDS)
_LENGTH = DIMENSIONS.index("length")
_SIMPLE = DIMENSIONS.index("simple")
ACKNOWLEDGEMENT = 0.5
"""A short last turn whose "simple" dimension (thanks, hello...) reaches this is an
acknowledgement, not a follow-up: its context does not make it hard."""


@dataclass(frozen=True, slots=True)
class ScoreBreakdown:
    """A score and why: the per-dimension values it was computed from."""

    score: float
    dimensions: Mapping[str, float]
    context_score: float | None = None
    """Score of context and last turn read together, when the last turn was a follow-up."""


class ComplexityScorer:
    """Deterministic, CPU-only complexity scorer. Safe to share between threads."""

    def __init__(self, model: ComplexityModel | None = None, model_path: str | Path | None = None):
        self.model = model if model is not None else ComplexityModel.load(model_path)

    def _logit(self, text: str, dims: tuple[float, ...] | None = None) -> float:
        if dims is None:
            dims = extract(text).dimensions
        return self.model.logit(dims, read_prompt(text, self.model.tokenizer))

    def score(self, text: str) -> float:
        """Calibrated probability in [0, 1] that ``text`` needs tier_high."""
        return sigmoid(self._logit(text))

    def explain(self, text: str) -> ScoreBreakdown:
        features = extract(text)
        return ScoreBreakdown(
            score=sigmoid(self._logit(text, features.dimensions)), dimensions=features.as_dict()
        )

    def score_conversation(
        self, conversation: Conversation, context_weight: float = 0.6
    ) -> ScoreBreakdown:
        """Score the last user turn; a short follow-up is read together with its context.

        "now prove it" means little alone; after a maths question it is a proof. So when the
        last turn is short, the context (system prompt, earlier user turns) and the turn are
        scored as one text, and the final logit moves ``context_weight`` of the way towards
        that joint logit, never down: a hard question stays hard under an easy system prompt.
        A short turn that only thanks or greets ("thanks!", "merci") is not read with its
        context: it stays easy after the hardest question.
        """
        features = extract(conversation.last_user)
        logit = self._logit(conversation.last_user, features.dimensions)
        context_score: float | None = None
        if (
            conversation.context
            and context_weight > 0
            and features.dimensions[_LENGTH] < _FOLLOW_UP_LENGTH
            and features.dimensions[_SIMPLE] < ACKNOWLEDGEMENT
        ):
            joint = self._logit(conversation.context + "\n" + conversation.last_user)
            context_score = sigmoid(joint)
            logit += context_weight * max(0.0, joint - logit)
        return ScoreBreakdown(
            score=sigmoid(logit), dimensions=features.as_dict(), context_score=context_score
        )

    def score_messages(
        self, messages: Sequence[Message], context_turns: int = 2, context_weight: float = 0.6
    ) -> ScoreBreakdown:
        return self.score_conversation(
            read_conversation(messages, context_turns), context_weight=context_weight
        )
