"""The user's own signal through the service: the same person's same messages again, after
reading the answer, come from tier_high; nobody else's, and not a script's loop."""

from __future__ import annotations

from typing import Any

from adaptive_router.service.identity import Person
from adaptive_router.service.regenerate import RecentAnswers

from .conftest import EASY, RouterHandle, chat

KEY = [(b"x-litellm-user_api_key_hash", b"a" * 64),
       (b"x-litellm-user_api_key_alias", b"alice")]  # fmt: skip


def clock(router: RouterHandle) -> list[float]:
    now = [1000.0]
    router.app.state.recent.clock = lambda: now[0]
    return now


def ask(router: RouterHandle, body: dict[str, Any], **headers: str) -> tuple[str, str]:
    r = router.client.post("/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == 200
    return r.headers["x-router-tier"], r.headers["x-router-reason"]


def test_the_same_question_again_after_its_answer_comes_from_tier_high(
    router: RouterHandle,
) -> None:
    now = clock(router)
    first = chat(EASY, user="alice", stream=True)
    assert ask(router, first) == ("tier_low", "complexity")
    now[0] += 0.2  # a loop, or several copies at once: not a person asking again
    assert ask(router, first) == ("tier_low", "complexity")
    now[0] += 5.0
    assert ask(router, first) == ("tier_high", "regenerate")
    assert router.metric("router_requests_total", reason="regenerate", tier="tier_high") == 1.0
    # Another person's identical question is a first question.
    assert ask(router, chat(EASY, user="bob", stream=True)) == ("tier_low", "complexity")
    # A follow-up is another conversation.
    follow = chat(EASY, user="alice", stream=True)
    follow["messages"] += [{"role": "assistant", "content": "9 am."},
                           {"role": "user", "content": "And in Paris?"}]  # fmt: skip
    assert ask(router, follow)[1] == "complexity"


def test_a_named_tier_is_never_moved_and_an_old_answer_is_forgotten(router: RouterHandle) -> None:
    now = clock(router)
    named = chat(EASY, model="tier_low", user="alice", stream=True)
    ask(router, named)
    now[0] += 5.0
    assert ask(router, named) == ("tier_low", "override")
    routed = chat(EASY, user="alice", stream=True)
    ask(router, routed)
    now[0] += router.app.state.service.regenerate_window_s + 1
    assert ask(router, routed) == ("tier_low", "complexity")


def test_behind_litellm_the_person_is_the_key(router: RouterHandle) -> None:
    now = clock(router)
    headers = {k.decode(): v.decode() for k, v in KEY}
    ask(router, chat(EASY, user="u1", stream=True), **headers)
    now[0] += 5.0
    # Another 'user' on the same key is the same person; another key is not.
    assert ask(router, chat(EASY, user="u2", stream=True), **headers)[1] == "regenerate"
    other = {**headers, "x-litellm-user_api_key_hash": "b" * 64}
    assert ask(router, chat(EASY, user="u1", stream=True), **other)[1] == "complexity"


def test_the_same_prompt_again_without_streaming_is_a_script_s_next_sample(
    router: RouterHandle,
) -> None:
    now = clock(router)
    ask(router, chat(EASY, user="alice"))
    now[0] += 5.0
    assert ask(router, chat(EASY, user="alice"))[1] == "complexity"
    ask(router, chat(EASY, user="alice", stream=True))
    now[0] += 5.0
    assert ask(router, chat(EASY, user="alice"))[1] == "complexity"  # not streamed: not asked


def test_off_and_an_unanswered_request_is_no_regenerate(make_router: Any) -> None:
    router = make_router(regenerate_window_s=0)
    assert not router.app.state.recent.enabled
    now = clock(router)
    ask(router, chat(EASY, user="alice", stream=True))
    now[0] += 5.0
    assert ask(router, chat(EASY, user="alice", stream=True))[1] == "complexity"
    memory = RecentAnswers(60.0, clock=lambda: now[0])
    alice = Person(id="user:alice", name="alice", source="user")
    key = memory.key(alice, [{"role": "user", "content": EASY}])
    assert not memory.repeated(key)  # asked, never answered
    memory.answered(key)
    now[0] += 2.0
    assert memory.repeated(key)
    assert key != memory.key(Person("user:bob", "bob", "user"), [{"role": "user", "content": EASY}])


def test_a_prompt_sent_over_and_over_takes_the_26b_a_few_times_only() -> None:
    now = [0.0]
    memory = RecentAnswers(600.0, clock=lambda: now[0])
    key = memory.key(Person("user:s", "s", "user"), [{"role": "user", "content": EASY}])
    memory.answered(key)
    counted = []
    for _ in range(6):
        now[0] += 5.0
        counted.append(memory.repeated(key))
        memory.answered(key)
    assert counted == [True, True, True, False, False, False]
    now[0] += 601.0  # a window later it is a new conversation
    memory.answered(key)
    now[0] += 5.0
    assert memory.repeated(key)


def test_memory_is_bounded() -> None:
    memory = RecentAnswers(60.0, capacity=3, min_gap_s=0.0)
    alice = Person(id="user:alice", name="alice", source="user")
    keys = [memory.key(alice, [{"role": "user", "content": str(i)}]) for i in range(5)]
    for key in keys:
        memory.answered(key)
    assert [memory.repeated(k) for k in keys] == [False, False, True, True, True]
