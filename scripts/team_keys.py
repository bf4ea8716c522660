#!/usr/bin/env python3
"""Team keys on the LiteLLM gateway: one key per person or tool, with limits, usage in tokens.

    python3 scripts/team_keys.py create --name alice [--rpm 30] [--tpm 100000] [--max-budget 5]
    python3 scripts/team_keys.py create --name nightly-eval --batch
    python3 scripts/team_keys.py list
    python3 scripts/team_keys.py usage [--name alice]
    python3 scripts/team_keys.py revoke --name alice
    python3 scripts/team_keys.py ensure --name open-webui --key-env OPENWEBUI_LITELLM_KEY \
        --forwards-users

Talks to LiteLLM's key management API (POST /key/generate, GET /key/list, GET /key/info,
POST /key/delete, GET /spend/logs; LiteLLM proxy/management_endpoints/key_management_endpoints.py
and spend_management_endpoints.py) with the master key. Keys live in LiteLLM's PostgreSQL
database: without it (no DATABASE_URL) LiteLLM refuses them, and this script says so.

Usage is counted in tokens, and in "spend": docker/litellm/config.yaml prices each model alias in
26B-seconds (a slot of the 26B for a second is 1.0), so ``--max-budget`` stops a key that used
that much (``--budget-duration`` resets it). ``ensure`` registers a key whose value is already
known (OpenWebUI's, generated into .env by start.sh) unless it exists; docker-compose.yml runs it
once before OpenWebUI starts. Standard library only: it runs inside the LiteLLM image too.

Two marks in a key's metadata tell the router (router/adaptive_router/service/identity.py) how to
count its requests, which LiteLLM passes on in ``x-litellm-user_api_key_auth_metadata``:
``--batch`` (``"stratum_class": "batch"``): its work waits behind people's chat turns;
``--forwards-users`` (``"stratum_forwards_users": true``): the key is a chat UI's (OpenWebUI's),
whose ``X-OpenWebUI-User-*`` headers name the person; on any other key those headers are ignored.
``ensure`` adds the marks to a key registered without them.

Settings: --url (default $LITELLM_URL or http://127.0.0.1:${LITELLM_PORT:-4000}) and the master
key from $LITELLM_MASTER_KEY. scripts/team-keys.sh reads both from .env.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MODELS = ("gemma4-fast", "gemma4-smart", "gemma4-tasks")


class GatewayError(Exception):
    """LiteLLM answered with an error (or not at all); the message says what to do."""


class Gateway:
    def __init__(self, url: str, master_key: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.master_key = master_key
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.master_key}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise GatewayError(_explain(exc.code, exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GatewayError(
                f"cannot reach LiteLLM at {self.url} ({reason}); is the stack up? "
                "(bash scripts/health-check.sh)"
            ) from None

    def find(self, alias: str) -> dict[str, Any] | None:
        query = urllib.parse.urlencode({"key_alias": alias, "return_full_object": "true"})
        found = self.call("GET", f"/key/list?{query}")
        keys = found.get("keys", []) if isinstance(found, dict) else []
        return next((k for k in keys if isinstance(k, dict) and k.get("key_alias") == alias), None)


def _explain(status: int, raw: bytes) -> str:
    text = raw.decode(errors="replace")
    try:
        error = json.loads(text).get("error", {})
        message = error.get("message", text) if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        message = text
    if "DB not connected" in message or "database" in message.lower():
        return (
            f"LiteLLM has no database: {message.strip()[:300]} -- team keys need the stack's "
            "PostgreSQL (DATABASE_URL in docker-compose.yml); check 'docker compose ps postgres'."
        )
    if status == 401:
        return (
            f"LiteLLM refused the master key (HTTP 401): {message[:200]}; check LITELLM_MASTER_KEY"
        )
    return f"LiteLLM answered HTTP {status}: {message[:300]}"


def key_hash(key: str) -> str:
    """How LiteLLM stores and names a key (sha256 of the key, hex)."""
    return hashlib.sha256(key.encode()).hexdigest()


def marks(args: argparse.Namespace) -> dict[str, Any]:
    """The metadata the router reads (see the module's docstring)."""
    out: dict[str, Any] = {}
    if args.batch:
        out["stratum_class"] = "batch"
    if args.forwards_users:
        out["stratum_forwards_users"] = True
    return out


def create(gateway: Gateway, args: argparse.Namespace, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key_alias": args.name,
        "models": list(args.models),
        "metadata": {"created_by": "scripts/team_keys.py", **marks(args)},
    }
    for field, value in (("rpm_limit", args.rpm), ("tpm_limit", args.tpm),
                         ("max_budget", args.max_budget), ("budget_duration", args.budget_duration),
                         ("key", key)):  # fmt: skip
        if value is not None:
            body[field] = value
    created: dict[str, Any] = gateway.call("POST", "/key/generate", body)
    return created


def usage(gateway: Gateway, row: dict[str, Any]) -> dict[str, Any]:
    """Tokens and requests of one key, from LiteLLM's spend logs."""
    token = row.get("token") or ""
    logs = gateway.call("GET", "/spend/logs?" + urllib.parse.urlencode({"api_key": token}))
    logs = logs if isinstance(logs, list) else []
    return {
        "name": row.get("key_alias"),
        "requests": len(logs),
        "prompt_tokens": sum(int(log.get("prompt_tokens") or 0) for log in logs),
        "completion_tokens": sum(int(log.get("completion_tokens") or 0) for log in logs),
        "total_tokens": sum(int(log.get("total_tokens") or 0) for log in logs),
        "rpm_limit": row.get("rpm_limit"),
        "tpm_limit": row.get("tpm_limit"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    port = os.environ.get("LITELLM_PORT", "4000")
    parser.add_argument("--url", default=os.environ.get("LITELLM_URL", f"http://127.0.0.1:{port}"))
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("create", "ensure"):
        p = sub.add_parser(name, help="create a key" if name == "create"
                           else "register a known key value unless it exists")  # fmt: skip
        p.add_argument("--name", required=True, help="who or what the key is for (its alias)")
        p.add_argument("--rpm", type=int, help="requests per minute (429 above)")
        p.add_argument("--tpm", type=int, help="tokens per minute")
        p.add_argument("--max-budget", type=float,
                       help="26B-seconds of use (docker/litellm/config.yaml's prices) before "
                       "LiteLLM refuses the key's requests")  # fmt: skip
        p.add_argument("--budget-duration", help='budget window, e.g. "30d"')
        p.add_argument("--batch", action="store_true",
                       help="its work is batch: it waits behind people's chat turns")  # fmt: skip
        p.add_argument("--forwards-users", action="store_true",
                       help="a chat UI's key: the router counts its X-OpenWebUI-User-* "
                       "headers as the person")  # fmt: skip
        p.add_argument(
            "--models",
            type=lambda s: tuple(s.split(",")),
            default=MODELS,
            help="comma-separated models the key may use (default: all three)",
        )
        if name == "ensure":
            p.add_argument("--key-env", required=True, help="environment variable with the key")
    sub.add_parser("list", help="keys by name, with their limits")
    u = sub.add_parser("usage", help="requests and tokens per key")
    u.add_argument("--name", help="one key (default: all)")
    r = sub.add_parser("revoke", help="delete a key: its next request gets 401")
    r.add_argument("--name", required=True)
    args = parser.parse_args(argv)

    master = os.environ.get("LITELLM_MASTER_KEY", "")
    if not master:
        print("error: LITELLM_MASTER_KEY is not set (scripts/team-keys.sh reads it from .env)",
              file=sys.stderr)  # fmt: skip
        return 2
    gateway = Gateway(args.url, master)
    try:
        if args.command == "create":
            if gateway.find(args.name) is not None:
                print(f"error: a key named {args.name!r} exists; revoke it first", file=sys.stderr)
                return 1
            created = create(gateway, args)
            print(json.dumps({"name": args.name, "key": created.get("key"),
                              "rpm_limit": args.rpm, "tpm_limit": args.tpm}, indent=2))  # fmt: skip
            print("Give this key to its user: it is shown once.", file=sys.stderr)
        elif args.command == "ensure":
            key = os.environ.get(args.key_env, "")
            if not key:
                print(f"error: {args.key_env} is empty (start.sh generates it into .env)",
                      file=sys.stderr)  # fmt: skip
                return 2
            existing = gateway.find(args.name)
            if existing is not None and existing.get("token") == key_hash(key):
                metadata = existing.get("metadata") or {}
                missing = {k: v for k, v in marks(args).items() if metadata.get(k) != v}
                if missing:  # registered by an older version: add the marks the router reads
                    update = {"key_alias": args.name, "metadata": {**metadata, **missing}}
                    gateway.call("POST", "/key/update", update)
                    print(f"key {args.name!r} is registered; marked {', '.join(missing)}")
                else:
                    print(f"key {args.name!r} is registered")
            else:
                if existing is not None:  # the value in .env changed: replace the old one
                    gateway.call("POST", "/key/delete", {"key_aliases": [args.name]})
                create(gateway, args, key=key)
                print(f"key {args.name!r} registered")
        elif args.command == "list":
            found = gateway.call("GET", "/key/list?return_full_object=true&size=100")
            rows = found.get("keys", []) if isinstance(found, dict) else []
            for row in rows:
                models = ",".join(row.get("models") or [])
                print(f"{row.get('key_alias') or '(no name)':24s} rpm={row.get('rpm_limit')} "
                      f"tpm={row.get('tpm_limit')} models={models}")  # fmt: skip
        elif args.command == "usage":
            found = gateway.call("GET", "/key/list?return_full_object=true&size=100")
            rows = found.get("keys", []) if isinstance(found, dict) else []
            rows = [r for r in rows if not args.name or r.get("key_alias") == args.name]
            if args.name and not rows:
                print(f"error: no key named {args.name!r}", file=sys.stderr)
                return 1
            print(json.dumps([usage(gateway, row) for row in rows], indent=2))
        elif args.command == "revoke":
            if gateway.find(args.name) is None:
                print(f"error: no key named {args.name!r}", file=sys.stderr)
                return 1
            gateway.call("POST", "/key/delete", {"key_aliases": [args.name]})
            print(f"key {args.name!r} revoked")
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
