#!/usr/bin/env python3
"""Read and edit a .env file exactly as Docker Compose reads it: the one reader of the scripts.

    python3 scripts/envfile.py get .env KEY            # KEY's value ("" when unset)
    python3 scripts/envfile.py export .env             # `export KEY=...` lines for bash's eval
    python3 scripts/envfile.py set .env KEY=VALUE ...  # change the line Compose reads, or append

Compose parses .env with compose-go's dotenv package (dotenv/parser.go; the rules below are
that file's), and start.sh, health-check.sh, stop.sh, team-keys.sh and the Python tools
(scripts/plan_vram.py, scripts/sync_kubernetes.py) read it through this module, so a value means
the same to all of them. tests/test_envfile.py checks it against `docker compose config` on a
file with every rule in it:

- blank lines and lines starting with ``#`` are skipped; ``export KEY=value`` is ``KEY=value``;
  ``KEY: value`` (YAML style) works too; a later line of a key wins;
- unquoted: up to the end of the line, cut at the first `` #`` (an inline comment), trailing
  space trimmed, then ``$VAR`` / ``${VAR}`` / ``${VAR:-default}``... expanded;
- ``'single'``: literal, may span lines; ``"double"``: ``\\n``, ``\\t``, ``\\"``, ``\\\\``,
  ``\\$`` escapes, then expanded; may span lines;
- a key alone on a line takes the environment's value, if any;
- ``$VAR`` looks in the process environment first, then at the file's earlier lines;
  ``$$`` is a literal ``$``.

Standard library only: start.sh runs it with the host's python3 before anything is installed.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

Lookup = Callable[[str], "str | None"]

_KEY_CHARS = re.compile(r"[A-Za-z0-9_.\-\[\]]")
_ESCAPES = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-7]{0,3})")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           '"': '"', "\\": "\\"}  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = " \t\v\f\r\x85\xa0"  # compose-go's isSpace: white space but not a line break


class EnvFileError(ValueError):
    """The file cannot be read as Compose reads it; the message names the file and line."""


def _expand_escapes(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        seq = m.group(0)[1:]
        if seq == "$":
            return "$$"  # kept literal by the expansion that follows
        if seq.startswith("0"):
            return chr(int(seq[1:] or "0", 8))
        return _SIMPLE[seq]

    return _ESCAPES.sub(one, text)


def expand(text: str, lookup: Lookup) -> str:
    """Compose's interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-x}``, ``${VAR-x}``,
    ``${VAR:+x}``, ``${VAR+x}``, ``${VAR:?msg}``, ``${VAR?msg}`` (nested in defaults too)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            out.append(_braced(text[i + 2 : end], lookup))
            i = end + 1
        elif m := _NAME.match(text, i + 1):
            out.append(lookup(m.group(0)) or "")
            i = m.end()
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise EnvFileError(f"unclosed '${{' in {text!r}")


def _braced(body: str, lookup: Lookup) -> str:
    m = _NAME.match(body)
    if not m:
        raise EnvFileError(f"invalid variable name in '${{{body}}}'")
    name, rest = m.group(0), body[m.end() :]
    value = lookup(name)
    if not rest:
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            present = bool(value) if op.startswith(":") else value is not None
            if op.endswith("-"):
                return value or "" if present else expand(arg, lookup)
            if op.endswith("+"):
                return expand(arg, lookup) if present else ""
            if not present:
                raise EnvFileError(f"{name}: {expand(arg, lookup) or 'required'}")
            return value or ""
    raise EnvFileError(f"invalid substitution '${{{body}}}'")


def parse(
    text: str, where: str = "<env>", environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every KEY's value, as Compose reads ``text`` (``where`` names it in errors)."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}

    def lookup(key: str) -> str | None:
        return environ[key] if key in environ else values.get(key)

    text = text.removeprefix("\ufeff")
    pos, line = 0, 1
    while True:
        # The next statement: skip white space and comment lines.
        while pos < len(text) and (text[pos].isspace() or text[pos] == "#"):
            if text[pos] == "#":
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
                continue
            line += text[pos] == "\n"
            pos += 1
        if pos >= len(text):
            return values
        if m := re.match(r"export[ \t]+", text[pos:]):
            pos += m.end()
        start = pos
        while pos < len(text) and text[pos] not in "=:\n":
            if text[pos] not in _SPACE and not _KEY_CHARS.fullmatch(text[pos]):
                raise EnvFileError(
                    f"{where}:{line}: unexpected character {text[pos]!r} in variable name "
                    f"{text[start:].splitlines()[0]!r}"
                )
            pos += 1
        key = text[start:pos].rstrip()
        if " " in key:
            raise EnvFileError(f"{where}:{line}: key cannot contain a space")
        if pos >= len(text) or text[pos] == "\n":  # a key alone: the environment's value
            if key in environ:
                values[key] = environ[key]
            continue
        pos += 1
        while pos < len(text) and text[pos] in _SPACE:
            pos += 1
        try:
            quote = text[pos] if pos < len(text) and text[pos] in "'\"" else ""
            if not quote:
                end = text.find("\n", pos)
                end = len(text) if end < 0 else end
                raw = text[pos:end].split(" #", 1)[0].rstrip()
                values[key] = expand(raw, lookup)
                pos = end
                continue
            chars: list[str] = []
            escaped = False
            for j in range(pos + 1, len(text)):
                char = text[j]
                if char != quote:
                    if not escaped and char == "\\":
                        escaped = True
                        continue
                    if escaped:
                        escaped = False
                        chars.append("\\")
                    chars.append(char)
                    continue
                if escaped:
                    escaped = False
                    chars.append(char)
                    continue
                value = "".join(chars)
                if quote == '"':
                    value = expand(_expand_escapes(value), lookup)
                values[key] = value
                line += text.count("\n", pos, j)
                pos = j + 1
                break
            else:
                raise EnvFileError(
                    f"{where}:{line}: unterminated quoted value {text[pos:].splitlines()[0]}"
                )
        except EnvFileError as exc:
            if str(exc).startswith(where):
                raise
            raise EnvFileError(f"{where}:{line}: {exc}") from None


def read_env(path: Path | str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The file's values as Compose reads them (the process environment only for ``$VAR``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, str(path), environ)


def _needs_quotes(value: str) -> bool:
    return value != value.strip() or any(c in value for c in "#$\"'\\\n") or value[:1] in "'\""


def format_line(key: str, value: str) -> str:
    """``KEY=value``, single-quoted where Compose would otherwise read it differently."""
    if not _needs_quotes(value):
        return f"{key}={value}"
    if "'" not in value:
        return f"{key}='{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'{key}="{escaped}"'


def set_values(path: Path | str, changes: Mapping[str, str]) -> None:
    """Give each key its value where Compose reads it: the key's last line is replaced (its
    ``export`` kept), other lines stay as they are; a key without a line is appended. The file
    keeps mode 0600."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").removesuffix("\n").split("\n")
    last: dict[str, int] = {}
    for number, text in enumerate(lines):
        if m := re.match(r"\s*(export\s+)?([A-Za-z0-9_.\-\[\]]+)\s*[=:]", text):
            last[m.group(2)] = number
    appended = []
    for key, value in changes.items():
        if key in last:
            export = "export " if re.match(r"\s*export\s", lines[last[key]]) else ""
            lines[last[key]] = export + format_line(key, value)
        else:
            appended.append(format_line(key, value))
    text = "\n".join(lines + appended) + "\n"
    read_back = parse(text, str(path), {})
    if any(read_back.get(key) != value for key, value in changes.items()):
        raise EnvFileError(
            f"{path}: a changed line would not read back as written; edit it by hand"
        )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    usage = __doc__.split("\n\n")[1] if __doc__ else ""
    if not args or args[0] in ("-h", "--help"):
        print(f"Usage:\n{usage}")
        return 0
    command, rest = args[0], args[1:]
    try:
        if command == "get" and len(rest) == 2:
            path = Path(rest[0])
            print(read_env(path).get(rest[1], "") if path.exists() else "")
        elif command == "export" and len(rest) == 1:
            # As for Compose, what the environment already has wins over the file.
            for key, value in read_env(rest[0]).items():
                if key not in os.environ and _NAME.fullmatch(key):
                    print(f"export {key}={shlex.quote(value)}")
        elif command == "set" and len(rest) >= 2 and all("=" in a for a in rest[1:]):
            set_values(rest[0], dict(a.split("=", 1) for a in rest[1:]))
        else:
            print(f"envfile: bad arguments {args!r}\nUsage:\n{usage}", file=sys.stderr)
            return 2
    except EnvFileError as exc:
        print(f"envfile: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
