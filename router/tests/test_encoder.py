"""The second opinion: the shipped encoder is asked only where the linear model is unsure, the
result stays a calibrated probability, and the deferred form (the service's) decides the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.encoder import (
    CLS,
    HEAD_TOKENS,
    SEP,
    TAIL_TOKENS,
    Cascade,
    DifficultyEncoder,
    EncoderFileError,
    encoder_input,
    reads_as_english,
    shipped_encoder,
)
from adaptive_router.model import sigmoid
from adaptive_router.scorer import ComplexityScorer

# Written for this test: a spread of asks, from trivia to expert work. Which of them the linear
# model is unsure of is computed, not assumed; the test needs a few on each side of the band.
PROMPTS = [
    "What time is it in Tokyo?",
    "Prove that there are infinitely many primes, step by step.",
    "how many teaspoons are in a tablespoon",
    "what's a good name for a grey cat",
    "Write a haiku about autumn rain.",
    "Summarise this: the meeting moved to Thursday because the room was booked.",
    "Compare Adam and SGD with momentum for training transformers and explain the theory.",
    "Which is heavier, a kilo of feathers or a kilo of steel?",
    "Plan a zero-downtime migration of a 2 TB Postgres table to a new schema.",
    "Is a tomato a fruit?",
    "Explain why the derivative of the softmax cross-entropy loss is p minus y.",
    "give me three synonyms for happy",
    "Critique the argument that minimum wage increases always reduce employment.",
    "Fix the grammar: me and him goes to the store yesterday.",
    "What does HTTP 404 mean?",
    "Design a rate limiter for a multi-region API and discuss its failure modes.",
    "Translate 'where is the station' into Spanish.",
    "Why does ice float on water?",
    "Write a SQL query that returns each customer's second most recent order.",
    "How do I undo the last git commit but keep the changes?",
    "Outline a study plan for learning linear algebra in a month.",
    "What is the capital of Australia?",
    "Explain the difference between a process and a thread.",
    "Draft a polite reply declining a meeting invitation.",
    "Estimate how many piano tuners work in Chicago, showing your reasoning.",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "What are the trade-offs of event sourcing for an inventory system?",
    "Recommend a board game for four players who like strategy.",
    "How do vaccines train the immune system?",
    "How does a transistor amplify a signal?",
    "How do noise-cancelling headphones work?",
    "Explain how HTTPS keeps a password safe on the wire.",
    "What is overfitting and how do I spot it?",
    "Explain how a hash map handles collisions.",
    "What is the halting problem?",
]


@pytest.fixture(scope="module")
def linear() -> ComplexityScorer:
    return ComplexityScorer()


@pytest.fixture(scope="module")
def scorer() -> ComplexityScorer:
    return ComplexityScorer(encoder=shipped_encoder())


def _logit(p: float) -> float:
    import math

    return math.log(p / (1 - p))


def split_by_band(linear: ComplexityScorer) -> tuple[list[str], list[str]]:
    cascade = shipped_encoder().cascade
    unsure = [p for p in PROMPTS if cascade.unsure(_logit(linear.score(p)), p)]
    sure = [p for p in PROMPTS if p not in unsure]
    return unsure, sure


def test_the_shipped_encoder_carries_its_cascade_and_stays_small() -> None:
    encoder = shipped_encoder()
    cascade = encoder.cascade
    assert 0 < cascade.band < 5
    assert cascade.english_band is not None and cascade.band < cascade.english_band < 5
    assert cascade.linear_weight > 0 and cascade.encoder_weight > 0
    assert "all-MiniLM-L6-v2" in encoder.description
    # int8 weights: ~23 MB. A float32 export (~70 MB) or a bigger encoder fails here.
    assert Path(encoder.source).stat().st_size < 25_000_000


# Written for this test: requests as people type them, in English and in other languages (Latin
# script included, where a test of letters alone would take them for English).
ENGLISH = [
    "can you check if this regex matches an email with a plus sign in it",
    "Why is the sky blue? Keep it short.",
    "Write a cover letter for a junior accountant role at a mid-size firm.",
    "My sourdough never rises in the fridge overnight, what am I doing wrong?",
]
OTHER = [
    "Schreibe eine kurze Einladung zum Sommerfest im Büro am Freitag.",
    "¿Cuál es la diferencia entre ser y estar? Dame ejemplos sencillos.",
    "Peux-tu résumer ce paragraphe en deux phrases, s'il te plaît ?",
    "Hoe lang moet ik een ei koken voor een zachte dooier?",
    "Объясни, как работает сборщик мусора в Java, с примерами.",
    "请用三句话介绍一下长城的历史。",
    "",
    "12 + 7 * 3 = ?",
]


def test_a_prompt_reads_as_english_by_its_function_words() -> None:
    assert all(reads_as_english(prompt) for prompt in ENGLISH)
    assert not any(reads_as_english(prompt) for prompt in OTHER)


def test_the_wider_band_is_asked_for_english_prompts_only() -> None:
    cascade = Cascade(band=1.5, linear_weight=0.5, encoder_weight=0.4, bias=0.2, english_band=2.5)
    english, german = ENGLISH[2], OTHER[0]
    assert cascade.unsure(1.0, german) and cascade.unsure(-1.0, english)
    assert cascade.unsure(2.0, english) and cascade.unsure(-2.4, english)
    assert not cascade.unsure(2.0, german)
    assert not cascade.unsure(2.6, english)
    narrow = Cascade(band=1.5, linear_weight=0.5, encoder_weight=0.4, bias=0.2)
    assert not narrow.unsure(2.0, english) and narrow.unsure(1.0, english)


def test_a_long_prompt_reaches_the_encoder_as_its_first_and_last_tokens() -> None:
    ids = list(range(1000, 1300))
    row = encoder_input(ids)
    assert row == [CLS, *ids[:HEAD_TOKENS], *ids[-TAIL_TOKENS:], SEP]
    assert encoder_input([7, 8]) == [CLS, 7, 8, SEP]


def test_sure_prompts_keep_the_linear_score_exactly(
    linear: ComplexityScorer, scorer: ComplexityScorer
) -> None:
    _, sure = split_by_band(linear)
    assert len(sure) >= 5
    for prompt in sure:
        breakdown = scorer.explain(prompt)
        assert breakdown.second_opinion is None and breakdown.linear_score is None
        assert breakdown.score == linear.score(prompt)


def test_unsure_prompts_get_both_opinions_combined_as_a_probability(
    linear: ComplexityScorer, scorer: ComplexityScorer
) -> None:
    unsure, _ = split_by_band(linear)
    assert len(unsure) >= 3, "no prompt of the list falls in the band: widen PROMPTS"
    cascade = shipped_encoder().cascade
    tokenizer = scorer.model.tokenizer
    for prompt in unsure:
        breakdown = scorer.explain(prompt)
        assert breakdown.linear_score == linear.score(prompt)
        assert breakdown.second_opinion is not None
        encoder_logit = shipped_encoder().logit(tokenizer.ids(prompt))
        assert breakdown.second_opinion == pytest.approx(sigmoid(encoder_logit))
        expected = cascade.combine(_logit(breakdown.linear_score), encoder_logit)
        assert breakdown.score == pytest.approx(sigmoid(expected), rel=1e-9)
        assert 0.0 < breakdown.score < 1.0


def test_the_encoder_is_deterministic(linear: ComplexityScorer) -> None:
    unsure, _ = split_by_band(linear)
    ids = linear.model.tokenizer.ids(unsure[0])
    assert shipped_encoder().logit(ids) == shipped_encoder().logit(ids)


def test_deferred_and_inline_decisions_agree(linear: ComplexityScorer) -> None:
    unsure, sure = split_by_band(linear)
    router = AdaptiveRouter(RoutingConfig(gpu_monitor=False))
    for prompt in [*unsure, *sure[:3]]:
        inline = router.decide(prompt)
        assessment = router.assess(prompt, defer=True)
        assert assessment.needs_second_opinion == (prompt in unsure)
        opinion = router.second_opinion(assessment) if assessment.needs_second_opinion else None
        deferred = router.decide(assessment, second_opinion=opinion)
        assert (deferred.tier, deferred.score, deferred.second_opinion) == (
            inline.tier,
            inline.score,
            inline.second_opinion,
        )
        assert deferred.as_dict()["linear_score"] == inline.as_dict()["linear_score"]


def test_no_second_opinion_where_the_score_does_not_decide(linear: ComplexityScorer) -> None:
    unsure, _ = split_by_band(linear)
    router = AdaptiveRouter(RoutingConfig(gpu_monitor=False))
    prompt = unsure[0]
    assert router.decide(prompt).second_opinion is not None
    named = router.decide(prompt, requested_tier="tier_low")
    assert named.second_opinion is None and named.score == linear.score(prompt)
    assert router.decide(prompt, regenerate=True).second_opinion is None
    assert not router.assess(prompt, requested_tier="tier_high", defer=True).needs_second_opinion


def test_turned_off_the_linear_model_decides_alone(linear: ComplexityScorer) -> None:
    unsure, _ = split_by_band(linear)
    router = AdaptiveRouter(RoutingConfig(gpu_monitor=False, second_opinion=False))
    assert router.scorer.encoder is None
    decision = router.decide(unsure[0])
    assert decision.second_opinion is None and decision.score == linear.score(unsure[0])


def test_a_named_encoder_file_that_cannot_load_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(EncoderFileError, match=r"nope\.onnx"):
        AdaptiveRouter(RoutingConfig(gpu_monitor=False, second_opinion_model_path=str(missing)))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(EncoderFileError, match="cannot load"):
        DifficultyEncoder(garbage)


def test_an_encoder_file_without_the_cascade_metadata_is_refused(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")  # a dev dependency (export_encoder.py)
    model = onnx.load(shipped_encoder().source)
    del model.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    with pytest.raises(EncoderFileError, match="metadata"):
        DifficultyEncoder(path)


def test_an_encoder_file_without_the_english_band_asks_over_one_band(tmp_path: Path) -> None:
    """Files written before the English band still load: one band for every prompt."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(shipped_encoder().source)
    kept = [prop for prop in model.metadata_props if prop.key != "english_band"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    path = tmp_path / "one-band.onnx"
    onnx.save(model, str(path))
    assert DifficultyEncoder(path).cascade.english_band is None
    model.metadata_props.add(key="english_band", value="wide")
    onnx.save(model, str(path))
    with pytest.raises(EncoderFileError, match="english_band"):
        DifficultyEncoder(path)


def test_a_follow_up_still_follows_its_context() -> None:
    """The encoder reads the short last turn alone ("how does that work?" means little alone);
    the context step comes after, so a follow-up of a hard question stays hard."""
    hard = (
        "Derive the closed form of the variance of a binomial distribution and explain each step."
    )
    on = AdaptiveRouter(RoutingConfig(gpu_monitor=False))
    off = AdaptiveRouter(RoutingConfig(gpu_monitor=False, second_opinion=False))
    asked = 0
    for follow_up in ("how does that work?", "show the derivation", "why?", "give an example"):
        messages = [
            {"role": "user", "content": hard},
            {"role": "assistant", "content": "Var(X) = np(1 - p)."},
            {"role": "user", "content": follow_up},
        ]
        with_encoder, alone = on.decide(messages), off.decide(messages)
        assert with_encoder.tier == alone.tier == "tier_high", follow_up
        if with_encoder.second_opinion is not None:
            asked += 1
            assert with_encoder.linear_score == alone.score
    assert asked, "no follow-up of the list falls in the band: widen it"
