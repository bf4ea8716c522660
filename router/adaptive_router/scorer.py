"""Complexity scoring: how likely a prompt needs the strong model, as a number in [0, 1].

A calibrated logistic model (:mod:`.model`) reads a bounded window of the prompt: its words and
word pairs, token tables distilled once from a sentence encoder (all-MiniLM-L6-v2) over the
whole window and over its first and last tokens, the prompt's shape, and eight hand-written
dimensions (maths, code, reasoning depth, constraints, length, entities, negation, "simple
task" cues), which also explain the score. It was trained on prompts written by family, both
labels in each, so that neither length nor opening words decide. No inference, no network, no
model download at run time: a few hundred dictionary and array look-ups.

Where that model is unsure (its logit within the bands of :class:`~.encoder.Cascade`, about one
prompt in six), a fine-tuned sentence encoder (:mod:`.encoder`) gives a second opinion on the
last user turn, and the two are combined into a calibrated logit before the context step. The
encoder costs milliseconds, so an async caller asks for the deferred form
(``score_conversation(..., defer=True)``), runs :meth:`ComplexityScorer.second_opinion` off its
event loop, and finishes with :meth:`ComplexityScorer.settle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .conversation import Conversation, Message, read_conversation
from .encoder import DifficultyEncoder
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
class Pending:
    """A score waiting for the encoder's second opinion (see :meth:`ComplexityScorer.settle`)."""

    ids: tuple[int, ...]
    """The last user turn's WordPiece ids: the encoder's input."""
    last_logit: float
    """The linear model's logit of the last user turn."""
    joint_logit: float | None
    context_weight: float


@dataclass(frozen=True, slots=True)
class ScoreBreakdown:
    """A score and why: the per-dimension values it was computed from."""

    score: float
    dimensions: Mapping[str, float]
    context_score: float | None = None
    """Score of context and last turn read together, when the last turn was a follow-up."""
    linear_score: float | None = None
    """The score the linear model alone gives (the context step included), when the encoder
    was asked too."""
    second_opinion: float | None = None
    """The encoder's own score of the last turn, when it was asked."""
    pending: Pending | None = None
    """Set by ``score_conversation(defer=True)`` when the encoder should be asked: ``score``
    is then the linear model's alone, until :meth:`ComplexityScorer.settle`."""


def _with_context(logit: float, joint: float | None, weight: float) -> float:
    """Move a follow-up's logit ``weight`` of the way towards its joint logit, never down."""
    return logit if joint is None else logit + weight * max(0.0, joint - logit)


class ComplexityScorer:
    """Deterministic, CPU-only complexity scorer. Safe to share between threads."""

    def __init__(
        self,
        model: ComplexityModel | None = None,
        model_path: str | Path | None = None,
        encoder: DifficultyEncoder | None = None,
    ):
        self.model = model if model is not None else ComplexityModel.load(model_path)
        self.encoder = encoder
        """The second opinion; ``None``: the linear model decides alone."""

    def _logit(self, text: str, dims: tuple[float, ...] | None = None) -> float:
        return self._read(text, dims)[0]

    def _read(self, text: str, dims: tuple[float, ...] | None = None) -> tuple[float, list[int]]:
        """The linear logit of ``text`` and its WordPiece ids (the encoder's input)."""
        if dims is None:
            dims = extract(text).dimensions
        prompt = read_prompt(text, self.model.tokenizer)
        return self.model.logit(dims, prompt), prompt.ids

    def score(self, text: str) -> float:
        """Calibrated probability in [0, 1] that ``text`` needs tier_high."""
        return self.explain(text).score

    def explain(self, text: str) -> ScoreBreakdown:
        return self.score_conversation(
            Conversation(last_user=text, context="", images=0, total_chars=len(text))
        )

    def second_opinion(self, pending: Pending) -> float:
        """The encoder's logit for a pending score (milliseconds of CPU: call it off an event
        loop)."""
        if self.encoder is None:
            raise ValueError("this scorer has no encoder")
        return self.encoder.logit(pending.ids)

    def settle(self, breakdown: ScoreBreakdown, encoder_logit: float) -> ScoreBreakdown:
        """The final score of a deferred breakdown, given the encoder's logit."""
        pending = breakdown.pending
        if pending is None or self.encoder is None:
            return breakdown
        combined = self.encoder.cascade.combine(pending.last_logit, encoder_logit)
        return ScoreBreakdown(
            score=sigmoid(_with_context(combined, pending.joint_logit, pending.context_weight)),
            dimensions=breakdown.dimensions,
            context_score=breakdown.context_score,
            linear_score=breakdown.score,
            second_opinion=sigmoid(encoder_logit),
        )

    def score_conversation(
        self,
        conversation: Conversation,
        context_weight: float = 0.6,
        *,
        defer: bool = False,
        second_opinion: bool = True,
    ) -> ScoreBreakdown:
        """Score the last user turn; a short follow-up is read together with its context.

        "now prove it" means little alone; after a maths question it is a proof. So when the
        last turn is short, the context (system prompt, earlier user turns) and the turn are
        scored as one text, and the final logit moves ``context_weight`` of the way towards
        that joint logit, never down: a hard question stays hard under an easy system prompt.
        A short turn that only thanks or greets ("thanks!", "merci") is not read with its
        context: it stays easy after the hardest question.

        Where the linear model is unsure of the last turn, the encoder's second opinion is
        combined with it before the context step (``second_opinion=False``: not asked; with
        ``defer=True`` it is left to the caller, see :attr:`ScoreBreakdown.pending`).
        """
        features = extract(conversation.last_user)
        logit, ids = self._read(conversation.last_user, features.dimensions)
        context_score: float | None = None
        joint: float | None = None
        if (
            conversation.context
            and context_weight > 0
            and features.dimensions[_LENGTH] < _FOLLOW_UP_LENGTH
            and features.dimensions[_SIMPLE] < ACKNOWLEDGEMENT
        ):
            joint = self._logit(conversation.context + "\n" + conversation.last_user)
            context_score = sigmoid(joint)
        breakdown = ScoreBreakdown(
            score=sigmoid(_with_context(logit, joint, context_weight)),
            dimensions=features.as_dict(),
            context_score=context_score,
        )
        encoder = self.encoder
        if not (
            second_opinion
            and ids
            and encoder is not None
            and encoder.cascade.unsure(logit, conversation.last_user)
        ):
            return breakdown
        pending = Pending(tuple(ids), logit, joint, context_weight)
        if defer:
            return replace(breakdown, pending=pending)
        return self.settle(replace(breakdown, pending=pending), encoder.logit(ids))

    def score_messages(
        self, messages: Sequence[Message], context_turns: int = 2, context_weight: float = 0.6
    ) -> ScoreBreakdown:
        """:meth:`score_conversation` of an OpenAI ``messages`` list (second opinion included)."""
        return self.score_conversation(
            read_conversation(messages, context_turns), context_weight=context_weight
        )
