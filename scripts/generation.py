"""What the generators of ``scripts/generate.py`` share: the checkout as it will read once the
generators before have run (:class:`Tree`), and the replacement of a marked block in a file.
Standard library only, as is every generator but the router's settings table."""

from __future__ import annotations

from pathlib import Path


class GenerationError(Exception):
    """A source a generator needs is missing or malformed: a message for the user."""


class Tree:
    """The files of a checkout as the generators see them: what a generator before this one
    produced replaces the file on disk (the Kubernetes copies copy the dashboards just built,
    the planner's .env.example), so one run is consistent with itself and ``--check`` compares
    each file with what a run would write. Names are relative to the root, with ``/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.produced: dict[str, bytes] = {}

    def read(self, name: str) -> bytes:
        if name in self.produced:
            return self.produced[name]
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            raise GenerationError(f"{name} is missing") from None

    def text(self, name: str) -> str:
        return self.read(name).decode("utf-8")

    def names(self, folder: str, suffix: str) -> list[str]:
        """The files directly in ``folder`` whose names end in ``suffix``, sorted."""
        on_disk = {
            f"{folder}/{p.name}" for p in (self.root / folder).glob(f"*{suffix}") if p.is_file()
        }
        made = {n for n in self.produced if n.rpartition("/")[0] == folder and n.endswith(suffix)}
        return sorted(on_disk | made)


def replace_block(text: str, begin: str, end: str, body: str, where: str) -> str:
    """``text`` with what lies between the lines ``begin`` and ``end`` replaced by ``body``."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < 0:
        raise GenerationError(f"{where} has no generated block ({begin!r} ... {end!r})")
    return text[: start + len(begin)] + "\n" + body + "\n" + text[stop:]
