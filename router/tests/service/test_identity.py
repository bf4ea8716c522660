"""Who is asking: LiteLLM keys, OpenWebUI users only on a key marked to forward them, the user
field, the client; what a client behind the gateway cannot forge."""

from __future__ import annotations

import json

from adaptive_router.service.identity import Names, Person, identify

CLIENT = ("10.0.0.7", 51234)


def litellm(
    key: str = "a" * 64, alias: str | None = "alice", metadata: object = None
) -> list[tuple[bytes, bytes]]:
    """The headers LiteLLM writes for a key (add_user_information_to_llm_headers)."""
    out = [(b"x-litellm-user_api_key_hash", key.encode()),
           (b"x-litellm-user_api_key_auth_metadata",
            json.dumps({} if metadata is None else metadata).encode())]  # fmt: skip
    if alias is not None:
        out.append((b"x-litellm-user_api_key_alias", alias.encode()))
    return out


OWUI = [(b"x-openwebui-user-id", b"u-123"), (b"x-openwebui-user-email", b"bob@team.example"),
        (b"x-openwebui-user-name", b"Bob%20B")]  # fmt: skip


def test_a_litellm_key_is_a_person_named_by_its_alias() -> None:
    person = identify(litellm(), CLIENT, "someone-else")
    assert person == Person(id="key:" + "a" * 64, name="alice", source="key")


def test_the_user_field_behind_a_key_makes_no_new_person() -> None:
    """Else a script could dodge its cap by inventing users."""
    assert identify(litellm(), CLIENT, "u1").id == identify(litellm(), CLIENT, "u2").id


def test_openwebui_users_count_only_on_a_key_marked_to_forward_them() -> None:
    marked = litellm(alias="open-webui", metadata={"stratum_forwards_users": True})
    person = identify([*marked, *OWUI], CLIENT, None)
    assert (person.source, person.name) == ("openwebui", "bob@team.example")
    assert person.id.endswith(":u-123")
    # Any other key: the headers came from a client through LiteLLM's header forwarding.
    forged = identify([*litellm(alias="mallory"), *OWUI], CLIENT, None)
    assert (forged.source, forged.name) == ("key", "mallory")


def test_openwebui_user_without_email_is_named_by_name_then_id() -> None:
    marked = litellm(metadata={"stratum_forwards_users": True})
    person = identify([*marked, *OWUI[:1], OWUI[2]], CLIENT, None)
    assert person.name == "Bob B"
    assert identify([*marked, OWUI[0]], CLIENT, None).name == "u-123"


def test_a_string_true_is_not_the_flag() -> None:
    marked = litellm(metadata={"stratum_forwards_users": "true"})
    assert identify([*marked, *OWUI], CLIENT, None).source == "key"


def test_direct_callers_fall_back_to_the_user_field_then_the_client() -> None:
    assert identify([], CLIENT, "carol") == Person(id="user:carol", name="carol", source="user")
    assert identify([], CLIENT, "  ").id == "client:10.0.0.7"
    assert identify([], CLIENT, {"id": 1}).id == "client:10.0.0.7"
    assert identify([], None, None).id == "client:unknown"
    assert len(identify([], CLIENT, "x" * 500).name) == 64


def test_batch_from_key_metadata_or_a_header_that_can_only_lower() -> None:
    assert identify(litellm(metadata={"stratum_class": "batch"}), CLIENT, None).batch
    assert identify([*litellm(), (b"x-router-class", b"Batch")], CLIENT, None).batch
    assert identify([(b"x-router-class", b"batch")], CLIENT, None).batch
    assert not identify([(b"x-router-class", b"interactive")], CLIENT, None).batch
    assert not identify(litellm(), CLIENT, None).batch


def test_bad_metadata_is_no_metadata() -> None:
    headers = [(b"x-litellm-user_api_key_hash", b"f" * 64),
               (b"x-litellm-user_api_key_auth_metadata", b"not json"), *OWUI]  # fmt: skip
    assert identify(headers, CLIENT, None).source == "key"


def test_labels_are_bounded_and_a_forged_alias_is_told_apart() -> None:
    names = Names(3)
    alice = identify(litellm("a" * 64, "alice"), CLIENT, None)
    # A key without an alias of its own, whose client forged LiteLLM's alias header.
    forger = identify(litellm("b" * 64, "alice"), CLIENT, None)
    assert names.label(alice) == "alice"
    assert names.label(forger).startswith("alice#")
    assert names.label(alice) == "alice"  # stable
    assert names.label(identify([], CLIENT, "carol")) == "carol"
    assert names.label(identify([], CLIENT, "dave")) == "other"
    assert len(names) == 3
    nameless = identify(litellm("c" * 64, None), CLIENT, None)
    assert nameless.name == "key-cccccccc"
    assert identify(litellm("litellm_proxy_master_key", None), CLIENT, None).name == "master-key"
