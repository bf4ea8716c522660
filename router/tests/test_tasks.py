"""Chat UIs' background tasks go to tier_low with the reason "task"; real questions do not."""

from __future__ import annotations

from typing import Any

import pytest

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.conversation import read_conversation
from adaptive_router.tasks import is_housekeeping

HARD = "Prove that there are infinitely many primes, then derive the sieve's complexity."
ANSWER = "Suppose there were finitely many primes p1..pn; consider p1*...*pn + 1."


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# Written in the style of several UIs' task prompts (not copied from them).
TASKS = {
    "tagged history, title as JSON": user(
        "### Task:\nGive the conversation a short title.\n### Output:\nJSON format: "
        f'{{ "title": "..." }}\n### Chat History:\n<chat_history>\nUSER: {HARD}\n'
        f"ASSISTANT: {ANSWER}\n</chat_history>"
    ),
    "follow-ups after speaker lines": user(
        f"USER: {HARD}\nASSISTANT: {ANSWER}\n\nSuggest 3 follow-up questions the user might "
        "ask next, one per line."
    ),
    "instruction in the system message": [
        {
            "role": "system",
            "content": "Write a concise title for this conversation.\n"
            f'||>User:\n"{HARD}"\n||>Response:\n"{ANSWER}"',
        },
        {"role": "user", "content": "Language: English"},
    ],
    "Chinese instruction after the transcript": user(
        f"user: {HARD}\nassistant: {ANSWER}\n\n请总结上述对话为10个字以内的标题"
    ),
    "search queries over a transcript": user(
        f"Human: {HARD}\nAI: {ANSWER}\nHuman: and for twin primes?\n\nGenerate 1-3 search "
        "queries for this chat."
    ),
    "emoji for a quoted message": user(
        "Reflect the speaker's mood with one emoji.\n\nMessage: ```I finally proved it!```"
    ),
    "tags in a multi-turn history with a non-English instruction": user(
        f"<conversation>\nuser: {HARD}\nassistant: {ANSWER}\n</conversation>\n"
        "Genera 1-3 etiquetas para esta conversación."
    ),
}

NOT_TASKS = {
    "a hard question that wants JSON": user(
        "Design a rate limiter for 10k tenants and return the configuration as JSON with a "
        "title field; prove it never starves a tenant."
    ),
    "a question about a pasted transcript": user(
        f"USER: {HARD}\nASSISTANT: {ANSWER}\n\nThe assistant's argument above has a gap. "
        "Explain exactly where, and give a complete, rigorous proof."
    ),
    "code with a JSON title key": user(
        'Fix this:\n```python\nprint(json.dumps({"title": x}))\n```\nIt raises TypeError.'
    ),
    "one speaker line is no transcript": user("User: how do I summarize a book well?"),
    "a plain title request without transcript": user(
        "Suggest a title for my novel about a lighthouse keeper."
    ),
}


@pytest.mark.parametrize("messages", TASKS.values(), ids=TASKS.keys())
def test_background_tasks_are_recognised_and_go_to_tier_low(
    router: AdaptiveRouter, messages: list[dict[str, Any]]
) -> None:
    assert is_housekeeping(read_conversation(messages))
    decision = router.decide(messages)
    assert (decision.tier, decision.reason) == ("tier_low", "task")


@pytest.mark.parametrize("messages", NOT_TASKS.values(), ids=NOT_TASKS.keys())
def test_questions_that_look_like_tasks_are_not(messages: list[dict[str, Any]]) -> None:
    assert not is_housekeeping(read_conversation(messages))


@pytest.mark.parametrize(
    "name", ["follow-ups after speaker lines", "Chinese instruction after the transcript"]
)
def test_the_embedded_hard_question_would_have_sent_the_task_high(name: str) -> None:
    """Why the rule exists: scored as a prompt, the task looks hard."""
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False, detect_tasks=False)) as router:
        assert router.decide(TASKS[name]).tier == "tier_high"


def test_a_hard_question_that_mentions_json_still_goes_high(router: AdaptiveRouter) -> None:
    assert router.decide(NOT_TASKS["a hard question that wants JSON"]).tier == "tier_high"
    assert router.decide(NOT_TASKS["a question about a pasted transcript"]).tier == "tier_high"


def test_named_tier_context_and_vision_still_come_first(router: AdaptiveRouter) -> None:
    task = TASKS["follow-ups after speaker lines"]
    assert router.decide(task, requested_tier="tier_high").reason == "override"
    long_task = user(task[0]["content"] + " filler" * 6000)  # longer than tier_low's window
    assert router.decide(long_task).reason == "context"
