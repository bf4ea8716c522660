"""The lock files (scripts/lock.sh) agree with the pins people edit, and the installs use them.

Offline: the resolver needs PyPI, so a stale lock is caught here by what it must contain (every
pin at its version, every package hashed, the image's versions in the development lock) instead
of by resolving again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from stackutil import ROOT

LOCKS = {
    "router/requirements.lock": ["router/requirements.txt", "router/build-requirements.txt"],
    "requirements-dev.lock": ["requirements-dev.txt"],
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file, following its -r includes."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            out |= pins(path.parent / line[3:].strip())
        elif m := PIN.match(line):
            out[norm(m.group(1))] = m.group(2)
    return out


def locked(path: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """name -> [(version, hashes)] of a lock (a package may appear once per marker)."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    entries = re.split(r"\n(?=[A-Za-z0-9])", path.read_text())
    for entry in entries:
        if m := PIN.match(entry):
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
            out.setdefault(norm(m.group(1)), []).append((m.group(2), hashes))
    return out


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_is_locked_at_its_version_with_hashes(lock: str) -> None:
    entries = locked(ROOT / lock)
    wanted: dict[str, str] = {}
    for source in LOCKS[lock]:
        wanted |= pins(ROOT / source)
    stale = {n: v for n, v in wanted.items() if v not in [ver for ver, _ in entries.get(n, [])]}
    assert not stale, f"{lock} is older than its pins {stale}: run bash scripts/lock.sh"
    unhashed = [n for n, found in entries.items() if any(not hashes for _, hashes in found)]
    assert not unhashed, f"{lock} has packages without hashes: {unhashed}"
    header = (ROOT / lock).read_text().splitlines()[:2]
    assert header[1] == "#    bash scripts/lock.sh", (
        "the header names the command that regenerates it"
    )


def test_the_tests_run_on_the_versions_the_image_ships() -> None:
    image = locked(ROOT / "router/requirements.lock")
    dev = locked(ROOT / "requirements-dev.lock")
    differ = {n: (image[n], dev.get(n)) for n in image if image[n] != dev.get(n)}
    assert not differ, f"requirements-dev.lock differs from router/requirements.lock: {differ}"


def test_installs_require_hashes() -> None:
    dockerfile = (ROOT / "router/Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps --no-build-isolation" in dockerfile
    test_sh = (ROOT / "scripts/test.sh").read_text()
    assert "--require-hashes -r requirements-dev.lock" in test_sh
    assert "bash scripts/lock.sh" in test_sh, "test.sh --help says how to update the locks"
