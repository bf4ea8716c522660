"""scripts/team_keys.py against LiteLLM's key API.

LiteLLM keeps keys in PostgreSQL through Prisma, whose engine binaries are downloaded from
binaries.prisma.sh at first use; that host is out of reach here, so LiteLLM's database mode
cannot run on this machine. These tests therefore use a stand-in that answers the endpoints the
script calls as LiteLLM 1.103.3 and 1.108.7 do (proxy/management_endpoints/key_management_endpoints.py:
/key/generate returns the key, /key/list?return_full_object=true returns {"keys": [rows with
"token" = sha256 of the key]}, /key/delete takes {"key_aliases": [...]};
proxy/spend_tracking/spend_management_endpoints.py: /spend/logs?api_key=<hash> returns the
key's logs with prompt/completion/total tokens), and the real LiteLLM for what it does without a
database (tests/e2e/test_e2e_clients.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from stackutil import ROOT

MASTER = "sk-master-test"
SCRIPT = ROOT / "scripts" / "team_keys.py"


class KeyStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}  # by hash
        self.logs: list[dict[str, Any]] = []
        self.database = True


def serve_litellm(store: KeyStore) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if self.headers.get("authorization") != f"Bearer {MASTER}":
                self._send(401, {"error": {"message": "Authentication Error", "code": "401"}})
                return False
            if not store.database:
                self._send(500, {"error": {"message": "DB not connected. This endpoint needs a "
                                                      "database; set DATABASE_URL", "code": "500"}})  # fmt: skip
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorised():
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/key/list":
                rows = list(store.rows.values())
                if "key_alias" in query:
                    rows = [r for r in rows if r["key_alias"] == query["key_alias"][0]]
                self._send(200, {"keys": rows, "total_count": len(rows)})
            elif url.path == "/spend/logs":
                self._send(
                    200, [log for log in store.logs if log["api_key"] == query["api_key"][0]]
                )
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path == "/key/generate":
                key = body.get("key") or "sk-" + os.urandom(8).hex()
                token = hashlib.sha256(key.encode()).hexdigest()
                store.rows[token] = {
                    "token": token,
                    **{k: v for k, v in body.items() if k != "key"},
                }
                self._send(200, {"key": key, "key_alias": body.get("key_alias"), "token": token})
            elif self.path == "/key/update":  # a merge patch, by key_alias
                row = next(r for r in store.rows.values() if r["key_alias"] == body["key_alias"])
                row.update({k: v for k, v in body.items() if k != "key_alias"})
                self._send(200, row)
            elif self.path == "/key/delete":
                gone = [t for t, r in store.rows.items() if r["key_alias"] in body["key_aliases"]]
                for token in gone:
                    del store.rows[token]
                self._send(200, {"deleted_keys": gone})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def litellm() -> Iterator[tuple[KeyStore, str]]:
    store = KeyStore()
    server, url = serve_litellm(store)
    yield store, url
    server.shutdown()
    server.server_close()


def run(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url, *args], capture_output=True, text=True,
        timeout=60, env={**os.environ, "LITELLM_MASTER_KEY": MASTER, **env},
    )  # fmt: skip


def test_create_list_usage_revoke(litellm: tuple[KeyStore, str]) -> None:
    store, url = litellm
    out = run(url, "create", "--name", "alice", "--rpm", "30", "--tpm", "100000")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["key"].startswith("sk-") and created["rpm_limit"] == 30
    row = next(iter(store.rows.values()))
    assert (row["key_alias"], row["rpm_limit"], row["tpm_limit"]) == ("alice", 30, 100000)
    assert row["models"] == ["gemma4-fast", "gemma4-smart", "gemma4-tasks"]
    assert run(url, "create", "--name", "alice").returncode == 1  # one key per name

    store.logs += [{"api_key": row["token"], "prompt_tokens": 10, "completion_tokens": 5,
                    "total_tokens": 15}] * 3  # fmt: skip
    usage = json.loads(run(url, "usage", "--name", "alice").stdout)
    assert usage == [{"name": "alice", "requests": 3, "prompt_tokens": 30,
                      "completion_tokens": 15, "total_tokens": 45, "rpm_limit": 30,
                      "tpm_limit": 100000}]  # fmt: skip
    assert "alice" in run(url, "list").stdout

    assert run(url, "revoke", "--name", "alice").returncode == 0
    assert store.rows == {}
    assert "no key named 'alice'" in run(url, "revoke", "--name", "alice").stderr


def test_ensure_registers_a_known_key_once_and_replaces_a_changed_one(
    litellm: tuple[KeyStore, str],
) -> None:
    store, url = litellm
    args = ("ensure", "--name", "open-webui", "--key-env", "OWUI_KEY")
    assert "registered" in run(url, *args, OWUI_KEY="sk-first").stdout
    assert "is registered" in run(url, *args, OWUI_KEY="sk-first").stdout
    assert [r["token"] for r in store.rows.values()] == [hashlib.sha256(b"sk-first").hexdigest()]
    run(url, *args, OWUI_KEY="sk-second")  # the value in .env changed
    assert [r["token"] for r in store.rows.values()] == [hashlib.sha256(b"sk-second").hexdigest()]
    assert run(url, *args, OWUI_KEY="").returncode == 2


def test_keys_carry_the_marks_the_router_reads(litellm: tuple[KeyStore, str]) -> None:
    """--batch and --forwards-users become key metadata, which LiteLLM passes to the router
    (x-litellm-user_api_key_auth_metadata); ensure adds them to a key registered without."""
    store, url = litellm
    assert run(url, "create", "--name", "nightly", "--batch").returncode == 0
    row = next(iter(store.rows.values()))
    assert row["metadata"] == {"created_by": "scripts/team_keys.py", "stratum_class": "batch"}
    args = ("ensure", "--name", "open-webui", "--key-env", "OWUI_KEY")
    run(url, *args, OWUI_KEY="sk-owui")  # as an older version registered it: no marks
    out = run(url, *args, "--forwards-users", OWUI_KEY="sk-owui")
    assert "marked stratum_forwards_users" in out.stdout, out.stderr
    owui = store.rows[hashlib.sha256(b"sk-owui").hexdigest()]
    assert owui["metadata"] == {"created_by": "scripts/team_keys.py",
                                "stratum_forwards_users": True}  # fmt: skip
    assert "is registered\n" in run(url, *args, "--forwards-users", OWUI_KEY="sk-owui").stdout


def test_without_a_database_it_says_what_is_missing(litellm: tuple[KeyStore, str]) -> None:
    store, url = litellm
    store.database = False
    out = run(url, "create", "--name", "bob")
    assert out.returncode == 1
    assert "LiteLLM has no database" in out.stderr and "DATABASE_URL" in out.stderr
    assert "Traceback" not in out.stderr


def test_wrong_master_key_and_unreachable_gateway(litellm: tuple[KeyStore, str]) -> None:
    _, url = litellm
    out = run(url, "list", LITELLM_MASTER_KEY="sk-wrong")
    assert out.returncode == 1 and "check LITELLM_MASTER_KEY" in out.stderr
    out = run("http://127.0.0.1:9", "list")
    assert out.returncode == 1 and "cannot reach LiteLLM" in out.stderr
    out = run(url, "list", LITELLM_MASTER_KEY="")
    assert out.returncode == 2
