"""Properties of the complexity scorer a user relies on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adaptive_router import DIMENSIONS, AdaptiveRouter, ComplexityScorer, RoutingConfig
from adaptive_router.features import (
    LONG_CHARS,
    PROMPT_HEAD_CHARS,
    PROMPT_TAIL_CHARS,
    extract,
    prompt_window,
    read_prompt,
)
from adaptive_router.model import ComplexityModel, ModelFileError

scorer = ComplexityScorer()

HARD = [
    "Prove the Riemann hypothesis step by step",
    "Write a Python function that parses a CSV file and computes the median of each column, "
    "handling missing values.",
    "Find all real x such that x^2 - 5x + 6 = 0 and prove there are no other solutions.",
    "Here is my code:\n```python\ndef f(xs):\n    return sorted(xs)[len(xs) // 2]\n```\n"
    "It fails for even-length lists. Find the bug and fix it.",
    "Compare the time complexity of quicksort and mergesort and derive the recurrences.",
]
# The issue's own examples of what length and opening words get wrong (data/README.md).
SHORT_HARD = [
    "how many ways can 8 rooks be placed on a chessboard so none attack each other?",
    "why does TCP slow start exist and what breaks without it?",
    "race condition in double-checked locking in Java — explain & fix",
]
TRIVIA = [
    "How many legs does a spider have?",
    "how many teaspoons in a tablespoon?",
]
EASY = [
    "What time is it in Tokyo?",
    "hi!",
    "Thanks, that was helpful.",
    "Tell me a joke about cats.",
    "Translate 'good morning' into French.",
    "Who wrote Pride and Prejudice?",
]


def test_readme_examples_with_the_01_settings() -> None:
    config = RoutingConfig(
        complexity_threshold=0.65,
        vram_headroom_gb=1.5,
        latency_sla_ms=2000.0,
        sla_warmup_seed_ms=800.0,
        gpu_monitor=False,
    )
    with AdaptiveRouter(config) as router:
        assert router.route("Prove the Riemann hypothesis step by step") == "tier_high"
        assert router.route("What time is it in Tokyo?") == "tier_low"


@pytest.mark.parametrize(
    "text", ["", " ", "a", "?" * 10_000, "\x00\udcff", "数学" * 500, *HARD, *EASY]
)
def test_score_is_a_probability(text: str) -> None:
    value = scorer.score(text)
    assert 0.0 <= value <= 1.0


def test_score_is_deterministic_across_instances() -> None:
    other = ComplexityScorer()
    for text in HARD + EASY:
        assert scorer.score(text) == other.score(text) == scorer.score(text)


@pytest.mark.parametrize("text", HARD)
def test_hard_prompts_score_above_default_threshold(text: str) -> None:
    assert scorer.score(text) >= RoutingConfig().complexity_threshold


@pytest.mark.parametrize("text", EASY + TRIVIA)
def test_easy_prompts_score_below_default_threshold(text: str) -> None:
    assert scorer.score(text) < RoutingConfig().complexity_threshold


@pytest.mark.parametrize("text", SHORT_HARD)
def test_short_hard_prompts_score_above_default_threshold(text: str) -> None:
    assert scorer.score(text) >= RoutingConfig().complexity_threshold


def test_a_long_paste_with_a_trivial_ask_is_easy_wherever_the_ask_is() -> None:
    notes = "\n".join(
        f"- {name} said the {topic} review moves to week {week}; {name} owns the follow-up."
        for week, (name, topic) in enumerate(
            [("Priya", "budget"), ("Tom", "hiring"), ("Ana", "roadmap"), ("Lee", "security")] * 6,
            start=1,
        )
    )
    assert len(notes) > 1500
    threshold = RoutingConfig().complexity_threshold
    assert scorer.score("List the names of the people mentioned:\n\n" + notes) < threshold
    assert scorer.score(notes + "\n\nlist the names of the people mentioned") < threshold


@pytest.mark.parametrize(
    ("hard", "easy"),
    [
        (  # Spanish
            "Demuestra paso a paso que la raíz cuadrada de 2 es irracional.",
            "¿Qué hora es en Tokio?",
        ),
        (  # French
            "Démontre étape par étape que la racine carrée de 2 est irrationnelle.",
            "Quelle heure est-il à Tokyo ?",
        ),
        (  # German
            "Beweise Schritt für Schritt, dass die Wurzel aus 2 irrational ist.",
            "Wie spät ist es in Tokio?",
        ),
        (  # Portuguese
            "Prove passo a passo que a raiz quadrada de 2 é irracional.",
            "Que horas são em Tóquio?",
        ),
        (  # round 12 as shipped: 0.63; its linear model alone 0.44 (round 7's 0.52, round 6's
            # 0.45, round 5's 0.70): the second opinion decides this one
            "Escribe una función en Python que ordene una lista enlazada con merge sort y analiza "
            "su complejidad.",
            "Resume este correo en una frase: Hola equipo, la reunión se mueve al jueves.",
        ),
        (
            "Schreibe eine Funktion in Java, die prüft, ob ein Binärbaum balanciert ist, und "
            "begründe die Laufzeit.",
            "Fasse diese E-Mail zusammen: Hallo Team, das Meeting ist am Donnerstag.",
        ),
    ],
)
def test_multilingual_wording(router: AdaptiveRouter, hard: str, easy: str) -> None:
    """The decision a user gets (the default configuration: the second opinion on)."""
    threshold = router.config.complexity_threshold
    assert router.decide(hard).score >= threshold > router.decide(easy).score


def test_long_document_with_a_simple_ask_is_easy() -> None:
    email = (
        "Dear team, the quarterly review meeting is moved to Thursday at 3pm in room 4B. "
        "Please bring your slides and the budget numbers. "
    ) * 500  # ~65 k characters
    text = "Summarise this email in one sentence:\n\n" + email
    assert len(text) > 60_000
    assert scorer.score(text) < RoutingConfig().complexity_threshold


def test_long_code_with_a_debugging_ask_is_hard() -> None:
    """A hard ask at the head is not drowned by a long paste. (The ask was "crashes with a
    KeyError. Find the bug": by data/README.md's rule a cause on the surface is tier_low work,
    and the model trained on that rule says so; the ask now needs the 26B by the rule.)"""
    code = "def handler(event, context):\n    items = event['items']\n    return len(items)\n" * 800
    text = (
        "This Lambda returns stale counts only under concurrent invocations in production, "
        "never locally. Find the root cause and explain the fix:\n```python\n" + code + "```"
    )
    assert scorer.score(text) >= RoutingConfig().complexity_threshold


def test_window_reads_head_and_tail_only() -> None:
    text = "a " * 5_000 + "prove" + " b" * 5_000
    assert len(prompt_window(text)) == PROMPT_HEAD_CHARS + PROMPT_TAIL_CHARS + 1
    # What sits in the middle of a long text cannot change its score...
    assert scorer.score(text) == scorer.score("a " * 5_000 + "hello" + " b" * 5_000)
    # ...but the ask at the end does.
    assert scorer.score("x " * 5000 + "prove it step by step") > scorer.score(
        "x " * 5000 + "thanks"
    )


@pytest.mark.parametrize("text", [*HARD, *SHORT_HARD, *TRIVIA, *EASY])
def test_whitespace_around_a_prompt_changes_nothing(text: str) -> None:
    """Some clients send a trailing blank line: it used to count as lines and move the score
    (a tenth of the evaluation prompts' decisions moved; benchmarks/surface_probe.py)."""
    padded = "\n" + text + " \n\n"
    assert scorer.explain(padded) == scorer.explain(text)
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False)) as router:  # the encoder's opinion too
        assert router.decide(padded).score == router.decide(text).score


def test_explain_gives_every_dimension_in_range() -> None:
    breakdown = scorer.explain("Prove that the sum of two even integers is even, step by step.")
    assert set(breakdown.dimensions) == set(DIMENSIONS)
    assert all(0.0 <= v <= 1.0 for v in breakdown.dimensions.values())
    assert breakdown.dimensions["reasoning"] > 0.5
    assert breakdown.dimensions["math"] > 0.0
    assert breakdown.score == scorer.score(
        "Prove that the sum of two even integers is even, step by step."
    )


def test_dimensions_respond_to_their_cues() -> None:
    def dims(text: str) -> dict[str, float]:
        return dict(extract(text).as_dict())

    assert (
        dims("Solve the equation x^2 = 16 for integer x")["math"]
        > dims("Tell me about dogs")["math"]
    )
    assert dims("def f():\n    return 1\n```")["code"] > dims("a nice poem")["code"]
    assert dims("Do not use commas, never repeat")["negation"] > 0.5
    assert dims("Use exactly 3 bullet points and at least 200 words")["constraints"] > 0.5
    assert dims("hello, thanks!")["simple"] > 0.5
    assert dims("word " * 1500)["length"] == 1.0
    assert dims("one two three")["length"] < 0.35


HARD_TURN = (
    "Design a lock-free multi-producer multi-consumer queue in C++ and prove that it is "
    "linearizable."
)


def _after(first: str, follow_up: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": follow_up},
    ]


@pytest.mark.parametrize("follow_up", ["now write it in Java", "and in Go?", "go on"])
def test_follow_up_is_read_with_its_context(follow_up: str) -> None:
    threshold = RoutingConfig().complexity_threshold
    alone = scorer.score(follow_up)
    in_context = scorer.score_messages(_after(HARD_TURN, follow_up))
    assert alone < threshold <= in_context.score
    assert in_context.context_score is not None


def test_follow_up_after_an_easy_turn_stays_easy() -> None:
    messages = _after("What is the capital of Australia?", "and of Canada?")
    assert scorer.score_messages(messages).score < RoutingConfig().complexity_threshold


@pytest.mark.parametrize("thanks", ["thanks!", "great, thanks", "merci", "thank you so much"])
def test_thanks_after_a_hard_turn_stays_easy(thanks: str) -> None:
    for first in (
        HARD_TURN,
        "What is the integral of x^2 sin(x) dx? Derive it step by step.",
    ):
        score = scorer.score_messages(_after(first, thanks)).score
        assert score < RoutingConfig().complexity_threshold


def test_easy_system_prompt_does_not_lower_a_hard_question() -> None:
    hard = "Prove that there are infinitely many primes, step by step."
    messages = [
        {"role": "system", "content": "You are a friendly assistant. Keep it short."},
        {"role": "user", "content": hard},
    ]
    assert scorer.score_messages(messages).score >= scorer.score(hard) - 1e-9


def test_multimodal_text_parts_are_scored() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "Prove the Riemann hypothesis step by step"},
            ],
        }
    ]
    assert scorer.score_messages(messages).score == pytest.approx(
        scorer.score("Prove the Riemann hypothesis step by step")
    )


def test_model_file_errors_name_the_line() -> None:
    good = scorer.model.dump().splitlines()
    broken = "\n".join([*good[:5], "dim math not-a-number", *good[5:]])
    with pytest.raises(ModelFileError, match=r"weights.txt:6"):
        ComplexityModel.parse(broken, source="weights.txt")
    with pytest.raises(ModelFileError, match="missing"):
        ComplexityModel.parse("format 3\nbias 0.1\n", source="weights.txt")
    with pytest.raises(ModelFileError, match="format"):  # a 0.2 model file: retrain, say so
        ComplexityModel.parse("bias 0.1\ndim math 1.0\n", source="weights.txt")


def test_a_long_prompt_reads_the_long_prompt_word_weights_too() -> None:
    """Words in a pasted document get weights of their own; a short prompt never reads them."""
    model = scorer.model
    assert model.long_gram_weights
    without = dataclasses.replace(model, long_gram_weights={})
    paste = (
        "Please give this report a title.\n\n"
        + (
            "Revenue grew in the north region while support tickets fell after the new onboarding "
            "guide shipped; the team plans to extend it to the south region next quarter. "
        )
        * 5
    )
    short = "Give this report a title: revenue grew in the north region."
    assert len(short) < LONG_CHARS <= len(paste)
    for text, reads_long in ((paste, True), (short, False)):
        prompt = read_prompt(text, model.tokenizer)
        dims = extract(text).dimensions
        assert prompt.long is reads_long
        assert (model.logit(dims, prompt) != without.logit(dims, prompt)) is reads_long


def test_model_round_trips_through_its_text_format() -> None:
    model = scorer.model
    again = ComplexityModel.parse(model.dump())
    assert again.dump() == model.dump()
    assert again.long_gram_weights == model.long_gram_weights
    for text in [*HARD, *EASY, "Summarise this in one line:\n" + "The meeting moved. " * 60]:
        dims = extract(text).dimensions
        assert again.logit(dims, read_prompt(text, again.tokenizer)) == pytest.approx(
            model.logit(dims, read_prompt(text, model.tokenizer)), abs=1e-9
        )


def test_the_shipped_model_is_parsed_once_per_process() -> None:
    """FastAPI keeps every app's endpoints, and with them its router, for the life of the
    process: with a model each, the test suite held 6 GiB by the time the compose suite ran,
    and start.sh refused to start the stack for want of RAM."""
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False)) as router:
        assert router.scorer.model is ComplexityScorer().model is ComplexityModel.load()


def test_a_model_file_named_in_the_config_is_read_from_that_file(tmp_path: Path) -> None:
    """The shipped model is shared; one named by `scorer_model_path` is its own."""
    shipped = ComplexityModel.load()
    text = shipped.dump().replace(f"bias {shipped.bias:.6f}", f"bias {shipped.bias + 5:.6f}", 1)
    path = tmp_path / "model.txt"
    path.write_text(text)
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False, scorer_model_path=str(path))) as router:
        assert router.scorer.model is not shipped
        assert router.scorer.model.bias == pytest.approx(shipped.bias + 5)
        prompt = "What is the capital of France?"
        assert router.scorer.score(prompt) > scorer.score(prompt)
