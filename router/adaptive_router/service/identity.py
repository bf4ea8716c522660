"""Who is asking: the person a request counts for, in the fair queue, the accounting and the
regenerate signal.

Through the stack a request reaches the router from LiteLLM with the router's key, and LiteLLM
says whose key it carried; OpenWebUI says which of its users asked. Read, in this order:

1. **A LiteLLM key** (``x-litellm-user_api_key_hash``). LiteLLM adds ``x-litellm-<field>``
   headers for the key of each request when ``litellm_settings.add_user_information_to_llm_headers``
   is true, and sends headers to the model at all only with
   ``general_settings.forward_client_headers_to_llm_api: true`` (litellm 1.108.7 and 1.108.14,
   ``litellm/proxy/litellm_pre_call_utils.py``: ``add_litellm_data_for_backend_llm_call`` calls
   ``add_headers_to_llm_call``, which copies the client's ``x-*`` headers
   (``_get_forwardable_headers``) and then *overwrites* ``x-litellm-<field>`` with the key's
   values from ``get_sanitized_user_information_from_key``: ``user_api_key_hash`` (the key's
   sha256), ``user_api_key_alias``, ``user_api_key_auth_metadata`` (the key's metadata as JSON)
   and others; fields that are ``None`` are skipped). The hash is never ``None`` for a key, and
   a key's metadata is a dict (``{}`` by default, ``litellm/models/verification_token.py``), so
   a client cannot forge either: LiteLLM writes them over whatever the client sent. The person is
   the key; its name is the key's alias (``scripts/team_keys.py`` gives every key one). A key
   without an alias is named by its hash (the master key: ``master-key``), and an alias already
   taken by another key gets the
   hash appended (see :class:`Names`), so a client that sends a forged alias header through a
   key without one cannot pass for another person.
2. **An OpenWebUI user**, but only on a key whose LiteLLM metadata says
   ``"stratum_forwards_users": true`` (``team_keys.py ensure --name open-webui`` marks
   OpenWebUI's own key so). With ``ENABLE_FORWARD_USER_INFO_HEADERS=true`` OpenWebUI sends
   ``X-OpenWebUI-User-Id``, ``-User-Email``, ``-User-Name`` (URL-quoted) and ``-User-Role`` with
   every request to a model, set from its session's user, not from the browser (open-webui
   0.12.4, ``open_webui/env.py`` ``FORWARD_USER_INFO_HEADER_*`` and
   ``open_webui/utils/headers.py`` ``include_user_info_headers``, called by
   ``get_headers_and_cookies`` for chat, tasks, embeddings and reranking). On any other key these
   headers are ignored: a client could send them through LiteLLM's header forwarding.
3. **Direct callers** (no LiteLLM headers: they hold the router's own key): OpenAI's ``user``
   field when it is a non-empty string, else the client's address.

Behind a key, the ``user`` field does not make new people: a script could otherwise dodge its cap
by inventing users. A key marked ``"stratum_class": "batch"`` in its metadata, or a request with
the header ``x-router-class: batch`` (a client may lower its own class, never raise it), is batch
work: it waits behind people's chat turns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

KEY_HASH = b"x-litellm-user_api_key_hash"
KEY_ALIAS = b"x-litellm-user_api_key_alias"
KEY_METADATA = b"x-litellm-user_api_key_auth_metadata"
OWUI_ID = b"x-openwebui-user-id"
OWUI_EMAIL = b"x-openwebui-user-email"
OWUI_NAME = b"x-openwebui-user-name"
CLASS_HEADER = b"x-router-class"
_WANTED = frozenset({KEY_HASH, KEY_ALIAS, KEY_METADATA, OWUI_ID, OWUI_EMAIL, OWUI_NAME,
                     CLASS_HEADER})  # fmt: skip

FORWARDS_USERS = "stratum_forwards_users"
"""Key metadata flag: this key's requests carry a chat UI's user headers, which are trusted."""
CLASS_FIELD = "stratum_class"
"""Key metadata field: ``"batch"`` marks a key's work as batch."""

MASTER_KEY = "litellm_proxy_master_key"
"""What LiteLLM sends as the master key's "hash": a fixed alias, so that neither the key nor its
hash leaves it (litellm 1.108.7, constants.py LITELLM_PROXY_MASTER_KEY_ALIAS, used in
proxy/auth/user_api_key_auth.py)."""

MAX_NAME = 64
"""Longest name kept (a ``user`` field or an e-mail); longer ones are cut."""


@dataclass(frozen=True, slots=True)
class Person:
    """One person as the router counts them."""

    id: str
    """Stable and unforgeable within its source: ``key:<hash>``, ``owui:<key>:<user id>``,
    ``user:<user field>``, ``client:<address>``."""
    name: str
    """For people: the key's alias, the OpenWebUI user's e-mail, the ``user`` field, the
    address."""
    source: str
    """``key``, ``openwebui``, ``user`` or ``client``."""
    batch: bool = False
    """The key or the request says this is batch work."""


ANONYMOUS = Person(id="client:unknown", name="unknown", source="client")


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_NAME else text[:MAX_NAME]


def identify(headers: Iterable[tuple[bytes, bytes]], client: Any, user_field: Any) -> Person:
    """The person of one request: its ASGI headers, its ``scope["client"]`` and the body's
    ``user`` field."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name in _WANTED:
            found[name] = value.decode("latin-1")
    batch = found.get(CLASS_HEADER, "").strip().lower() == "batch"
    key_hash = found.get(KEY_HASH, "").strip()
    if key_hash:
        metadata = _metadata(found.get(KEY_METADATA))
        batch = batch or metadata.get(CLASS_FIELD) == "batch"
        user_id = found.get(OWUI_ID, "").strip()
        if user_id and metadata.get(FORWARDS_USERS) is True:
            label = found.get(OWUI_EMAIL) or unquote(found.get(OWUI_NAME, "")) or user_id
            return Person(id=f"owui:{key_hash[:16]}:{user_id}", name=_clip(label),
                          source="openwebui", batch=batch)  # fmt: skip
        alias = found.get(KEY_ALIAS, "").strip()
        fallback = "master-key" if key_hash == MASTER_KEY else f"key-{key_hash[:8]}"
        return Person(id=f"key:{key_hash}", name=_clip(alias or fallback), source="key",
                      batch=batch)  # fmt: skip
    if isinstance(user_field, str) and user_field.strip():
        user = _clip(user_field)
        return Person(id=f"user:{user}", name=user, source="user", batch=batch)
    host = client[0] if isinstance(client, (tuple, list)) and client else None
    if not host:
        return ANONYMOUS if not batch else Person(ANONYMOUS.id, ANONYMOUS.name, "client", True)
    return Person(id=f"client:{host}", name=str(host), source="client", batch=batch)


class Names:
    """One label per person for the metrics, at most ``limit`` of them (then ``other``).

    Labels go to people in the order they are first seen and stay theirs (a Prometheus counter
    cannot move to another label), so the label set is bounded: ``limit`` people and ``other``.
    A name already held by another person gets a short hash of the person's id appended.
    """

    OTHER = "other"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._labels: dict[str, str] = {}
        self._taken: set[str] = {self.OTHER}

    def label(self, person: Person) -> str:
        found = self._labels.get(person.id)
        if found is not None:
            return found
        if len(self._labels) >= self.limit:
            return self.OTHER
        label = person.name or "unknown"
        if label in self._taken:
            label = f"{label}#{hashlib.blake2b(person.id.encode(), digest_size=3).hexdigest()}"
        self._labels[person.id] = label
        self._taken.add(label)
        return label

    def __len__(self) -> int:
        return len(self._labels)
