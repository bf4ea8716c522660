"""One .env reader: scripts/envfile.py, the scripts' load_env/env_get and the Python tools read a
tricky .env exactly as `docker compose config` does (the Compose CLI needs no engine for it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import envfile
import pytest
from stackutil import ROOT, require_tool
from vram.settings import read_env

TRICKY = r"""# a comment line
PLAIN=8192
COMMENTED=8192 # smaller, said the user
HASH_INSIDE=a#b
export EXPORTED=4
  INDENTED = spaced
YAML_STYLE: yes
SINGLE='not # a comment, not $PLAIN'
DOUBLE="tab\there \"quoted\" $PLAIN ${MISSING:-fallback}"
MULTI="line one
line two"
EXPANDED=${PLAIN}x$PLAIN
FROM_SHELL=$STRATUM_TEST_SHELL
LITERAL_DOLLAR=$$HOME
TWICE=first
TWICE=second, the one that counts
EMPTY=
EMPTY_COLON_DEFAULT=${EMPTY:-used}
EMPTY_DASH_DEFAULT=${EMPTY-not used}
TRAILING=value   
QUOTED_THEN_COMMENT="v" # a comment
SPACES=--mmproj /models/mmproj.gguf
CRLF=windows
"""
KEYS = [
    "PLAIN", "COMMENTED", "HASH_INSIDE", "EXPORTED", "INDENTED", "YAML_STYLE", "SINGLE", "DOUBLE",
    "MULTI", "EXPANDED", "FROM_SHELL", "LITERAL_DOLLAR", "TWICE", "EMPTY", "EMPTY_COLON_DEFAULT",
    "EMPTY_DASH_DEFAULT", "TRAILING", "QUOTED_THEN_COMMENT", "SPACES", "CRLF", "NEW", "NOT_IN_FILE",
]  # fmt: skip
SHELL = {"STRATUM_TEST_SHELL": "from the shell"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text(TRICKY.replace("CRLF=windows\n", "CRLF=windows\r\n"))
    services = "\n".join(f'      {k}: "${{{k}-<unset>}}"' for k in KEYS)
    (tmp_path / "compose.yml").write_text(
        f"services:\n  probe:\n    image: busybox\n    environment:\n{services}\n"
    )
    return tmp_path


def compose_reads(project: Path) -> dict[str, str]:
    docker = require_tool("docker")
    env = {"PATH": os.environ["PATH"], "HOME": str(project), **SHELL}
    out = subprocess.run(
        [docker, "compose", "config", "--format", "json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if out.returncode != 0 and "is not a docker command" in out.stderr:
        require_tool("docker-compose-plugin")  # skips here, fails in CI
    assert out.returncode == 0, out.stderr
    environment = json.loads(out.stdout)["services"]["probe"]["environment"]
    # `config` prints a model Compose can read again: a literal $ comes out as $$.
    return {k: v.replace("$$", "$") for k, v in environment.items() if v != "<unset>"}


def test_the_reader_reads_what_compose_reads(project: Path) -> None:
    expected = compose_reads(project)
    assert expected["COMMENTED"] == "8192" and expected["TWICE"].startswith("second")
    assert envfile.read_env(project / ".env", environ=SHELL) == expected


def test_the_scripts_read_what_compose_reads(project: Path) -> None:
    """load_env (start.sh, stop.sh, health-check.sh, team-keys.sh) and env_get, in bash."""
    expected = compose_reads(project)
    script = (
        f'source "{ROOT}/scripts/lib/common.sh"; load_env "{project}/.env"; '
        'for k in "$@"; do printf "%s\\0%s\\0" "$k" "${!k-<unset>}"; done'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(project), **SHELL}
    out = subprocess.run(["bash", "-c", script, "bash", *KEYS], env=env, capture_output=True,
                         check=True).stdout.decode().split("\0")  # fmt: skip
    pairs = zip(out[:-1:2], out[1::2], strict=True)
    loaded = {k: v for k, v in pairs if v != "<unset>"}
    assert loaded == expected
    for key in ("COMMENTED", "EXPORTED", "TWICE", "MULTI", "SINGLE"):
        got = subprocess.run(
            ["bash", "-c", f'source "{ROOT}/scripts/lib/common.sh"; env_get "$1" "$2"', "bash",
             str(project / ".env"), key],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert got == expected[key] + "\n"


def test_the_planner_reads_what_compose_reads(project: Path) -> None:
    expected = compose_reads(project)
    os.environ.update(SHELL)
    try:
        assert read_env(project / ".env") == expected
    finally:
        os.environ.pop("STRATUM_TEST_SHELL")


def test_the_shell_environment_wins_over_the_file_as_for_compose(project: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PLAIN": "from the shell"}
    out = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/lib/common.sh"; load_env "{project}/.env"; '
                       'echo "$PLAIN|$EXPANDED"'],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == "from the shell|from the shellxfrom the shell\n"


def test_set_changes_the_line_compose_reads_and_keeps_every_other(project: Path) -> None:
    env = project / ".env"
    before = env.read_text()
    envfile.set_values(env, {"TWICE": "third", "EXPORTED": "5", "NEW": "a # b", "SPACES": ""})
    after = env.read_text()
    assert "TWICE=first\n" in after and "TWICE=third\n" in after  # the last line changed
    assert "export EXPORTED=5\n" in after
    assert after.endswith("NEW='a # b'\n")
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    values = envfile.read_env(env, environ=SHELL)
    assert (values["TWICE"], values["EXPORTED"], values["NEW"], values["SPACES"]) == (
        "third", "5", "a # b", "")  # fmt: skip
    untouched = [line for line in before.splitlines() if not line.startswith(
        ("TWICE=second", "export EXPORTED", "SPACES="))]  # fmt: skip
    assert all(line in after.splitlines() for line in untouched)
    assert compose_reads(project)["NEW"] == "a # b"


@pytest.mark.parametrize(
    ("text", "message"),
    [("BAD KEY=1\n", "key cannot contain a space"), ('Q="open\n', "unterminated quoted value"),
     ("K=${A:?set A}\n", "A: set A"), ("K@=1\n", "unexpected character")],
)  # fmt: skip
def test_a_file_compose_would_refuse_is_refused_with_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    env = tmp_path / ".env"
    env.write_text("OK=1\n" + text)
    with pytest.raises(envfile.EnvFileError, match=message) as refused:
        envfile.read_env(env, environ={})
    assert f"{env}:2" in str(refused.value)
