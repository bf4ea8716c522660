"""docker-compose.yml as Compose reads it: interpolation, override files merged, a service's argv.

The tests check the stack against it, and the benchmarks and the GPU check start engines with
compose's own commands (swapping container paths for local ones) instead of copies of them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from stratum_tools import ROOT

_COMPOSE_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?)([-?])([^}]*))?\}")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Compose-style interpolation: ``${VAR}``, ``${VAR:-default}`` (unset or empty: default),
    ``${VAR-default}`` (unset: default; set but empty stays empty) and ``${VAR:?error}``."""

    def one(m: re.Match[str]) -> str:
        name, colon, op, arg = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        value = values.get(name)
        if value or (value is not None and op == "-" and not colon):
            return value
        if op == "?":
            raise KeyError(f"{name} must be set: {arg}")
        return arg if op == "-" else ""

    return _COMPOSE_VAR.sub(one, text)


class Reset:
    """A ``!reset`` value of a Compose override file: the key goes away in the merge."""


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())

REPLACED = {"command", "entrypoint"}
"""Keys Compose replaces instead of merging (docs.docker.com/reference/compose-file/merge)."""


def _merge(base: Any, over: Any, key: str = "") -> Any:
    if isinstance(over, Reset):
        return over
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            merged = _merge(base.get(k), v, k) if k in base else v
            if isinstance(merged, Reset):
                out.pop(k, None)
            else:
                out[k] = merged
        return out
    if isinstance(base, list) and isinstance(over, list) and key not in REPLACED:
        if key == "test":  # healthcheck.test is replaced too
            return over
        if key == "volumes":  # unique by target: the override's mount wins
            targets = {str(v).split(":")[1] for v in over if ":" in str(v)}
            return [v for v in base if str(v).split(":")[1] not in targets] + over
        return base + over
    return over


def load_compose_file(name: str) -> dict[str, Any]:
    """One compose file as written (``!reset`` kept as a :class:`Reset`), not merged."""
    data: dict[str, Any] = yaml.load((ROOT / name).read_text(), Loader=_ComposeLoader)
    return data


def load_compose(*files: str) -> dict[str, Any]:
    """docker-compose.yml merged with override files as Compose merges them (``!reset``
    removes a key, ``command`` is replaced, lists are appended, volumes unique by target)."""
    merged: dict[str, Any] = {}
    for name in ("docker-compose.yml", *files):
        merged = _merge(merged, load_compose_file(name))
    return merged


def compose_command(
    service: str, values: Mapping[str, str], files: tuple[str, ...] = ()
) -> list[str]:
    """The argv a service's ``command:`` gives with these .env values (and override files)."""
    compose = load_compose(*files)
    command = compose["services"][service]["command"]
    if isinstance(command, list):
        return [substitute(str(part), values) for part in command]
    return shlex.split(substitute(command, values))


def compose_argv(
    service: str,
    values: Mapping[str, str],
    swap: Mapping[str, str],
    files: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
) -> list[str]:
    """:func:`compose_command` with the value of each flag in ``swap`` replaced (container paths
    and addresses for loopback ones) and each flag in ``drop`` left out with its value."""
    args = iter(compose_command(service, values, files))
    out: list[str] = []
    for arg in args:
        if arg in drop:
            next(args)
        elif arg in swap:
            next(args)
            out += [arg, swap[arg]]
        else:
            out.append(arg)
    return out
