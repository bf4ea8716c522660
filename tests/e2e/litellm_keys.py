"""Team keys for the end-to-end LiteLLM, which runs without its database.

LiteLLM keeps virtual keys in PostgreSQL through Prisma, whose engines download from
binaries.prisma.sh at first start, out of reach here (stack.litellm). This module is LiteLLM's
own hook for that case, ``general_settings.custom_auth`` (litellm 1.108.7,
proxy/auth/user_api_key_auth.py: the returned ``UserAPIKeyAuth`` is the request's key from then
on): it answers for the keys a database would hold, as ``scripts/team_keys.py`` creates them (an
alias each, the sha256 of the key as LiteLLM stores it, the metadata marks). Everything after
authentication is LiteLLM's: the x-litellm-* headers it sends the router, its header forwarding,
prices and spend. Copied beside the rendered config; runs inside LiteLLM's virtual environment.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from fastapi import HTTPException, Request
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

CREATED_BY = {"created_by": "scripts/team_keys.py"}
KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    # OpenWebUI's own key, as `team_keys.py ensure --name open-webui --forwards-users` marks it.
    "sk-e2e-open-webui": ("open-webui", {**CREATED_BY, "stratum_forwards_users": True}),
    "sk-e2e-alice": ("alice", CREATED_BY),
    "sk-e2e-script": ("script", CREATED_BY),
    # `team_keys.py create --name nightly --batch`
    "sk-e2e-nightly": ("nightly", {**CREATED_BY, "stratum_class": "batch"}),
}


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    key = api_key.removeprefix("Bearer ").strip()
    token = hashlib.sha256(key.encode()).hexdigest()
    if key == os.environ["LITELLM_MASTER_KEY"]:  # as LiteLLM names it (constants.py)
        return UserAPIKeyAuth(api_key="litellm_proxy_master_key",
                              user_role=LitellmUserRoles.PROXY_ADMIN)  # fmt: skip
    if key in KEYS:
        alias, metadata = KEYS[key]
        return UserAPIKeyAuth(api_key=token, key_alias=alias, metadata=dict(metadata))
    raise HTTPException(status_code=401, detail="Authentication Error: invalid key")
