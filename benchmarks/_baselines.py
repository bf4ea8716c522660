"""Earlier scorers, rebuilt from this repository's history, to compare against.

- ``seed-0.1``: the scorer of the first commit (the 0.1 seed: eight rule dimensions plus words,
  trained on the dev set alone);
- ``before-i23``: the scorer shipped until the model trained on prompts written by family
  (same design, retrained on the dev set).

Each is the package's scorer modules and weights at that commit, written to a temporary
package and imported as is: what a user of that version got. Needs ``git`` and a clone that
holds those commits (a shallow clone does not: then the baseline is reported as missing).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITS = {
    "seed-0.1": "20c0cd13071af51d00081b0626f1e4220721d397",
    "before-i23": "4ffee20",
}
_FILES = (
    "__init__.py",
    "scorer.py",
    "features.py",
    "model.py",
    "_lexicon.py",
    "conversation.py",
    "complexity_model.txt",
)
_TEMP: list[tempfile.TemporaryDirectory[str]] = []


def load(name: str) -> Callable[[str], float] | None:
    """``score(text)`` of the named baseline, or None when its commit is not in this clone."""
    commit = COMMITS[name]
    folder = tempfile.TemporaryDirectory(prefix="baseline-")
    _TEMP.append(folder)
    package = "baseline_" + name.replace("-", "_").replace(".", "_")
    target = Path(folder.name) / package
    target.mkdir()
    for file in _FILES:
        if file == "__init__.py":
            (target / file).write_text("", encoding="utf-8")
            continue
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:router/adaptive_router/{file}"],
            capture_output=True,
        )
        if shown.returncode != 0:
            return None
        (target / file).write_bytes(shown.stdout)
    sys.path.insert(0, folder.name)
    try:
        scorer = importlib.import_module(f"{package}.scorer").ComplexityScorer()
    finally:
        sys.path.remove(folder.name)
    score: Callable[[str], float] = scorer.score
    return score
