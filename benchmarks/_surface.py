"""Neutral surface variants of training prompts: a greeting, thanks, a framing line, quotes, a
line of personal context around the very same ask.

Why: in the training rows a prompt that opens with "please", "hi" or "thanks" is easy three
times as often as hard, and a prompt in quotation marks five times as often; both models learned
politeness and quotes as signs of an easy task: such words around the evaluation sets' prompts
moved 226 of the router's 5,010 decisions (``benchmarks/surface_probe.py``). A copy of a share
of the training rows, wrapped in words that change neither the ask nor how hard it is, with its
label kept, is meant to break that link for both labels alike.

Tried, not shipped (round 19, docs/BENCHMARKS.md, "Surface"): the linear model fitted with
copies of a quarter of the rows (``train_scorer.py --augment 0.25``) changed 190 decisions under
held-out wrappers against 226, short of the fifth fewer errors its rule asked; so ``SHARE`` is
0 and the shipped models are fitted on the rows as written. The encoder was not tried
(``finetune_encoder.py --augment``). ``benchmarks/surface_probe.py`` measures robustness with
other wrappers, written separately by someone who never saw these (held out, so its figure says
whether a model learned the invariance rather than these phrases).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WRAPPERS: tuple[tuple[str, str], ...] = (
    # greetings
    ("Hi! ", ""),
    ("hello, ", ""),
    ("Hey there.\n\n", ""),
    ("Hi team bot, ", ""),
    ("Dear assistant,\n", ""),
    ("yo ", ""),
    ("Greetings. ", ""),
    ("Hiya :) ", ""),
    # thanks and sign-offs
    ("", " Thanks!"),
    ("", "\n\nThank you."),
    ("", " thx"),
    ("", "\n\nCheers,\nSam"),
    ("", " Much appreciated 🙏"),
    ("", "\nthanks in advance"),
    ("", " Ty!"),
    ("", "\n\nBest regards"),
    # both
    ("Please help. ", " Thanks!"),
    ("Hi, ", " Thank you!"),
    ("hey, ", " cheers"),
    ("Good afternoon. ", "\n\nKind regards, Priya"),
    ("Hello!\n", "\nThanks a lot"),
    ("please ", " ty"),
    # framing lines
    ("Question: ", ""),
    ("I have a request.\n\n", ""),
    ("Can you help with this?\n", ""),
    ("Here's what I need:\n", ""),
    ("Q: ", ""),
    ("Task:\n", ""),
    ("Something I'd like your take on: ", ""),
    ("My question is this. ", ""),
    # quotes and punctuation around the ask
    ('"', '"'),
    ("'", "'"),
    ("> ", ""),
    ("«", "»"),
    ('Please answer this: "', '"'),
    ("[", "]"),
    ("“", "”"),
    ("---\n", "\n---"),
    # a line of personal context
    ("Typing this on my phone, sorry for any typos. ", ""),
    ("A colleague told me to ask you. ", ""),
    ("Writing from the office. ", ""),
    ("My friend and I were talking about this earlier. ", ""),
    ("First time using this chat. ", ""),
    ("Asking for my team. ", ""),
    ("I'm on a train right now. ", ""),
    ("Back again with another one. ", ""),
)
"""(prefix, suffix) pairs that change neither what is asked nor how hard it is."""

SHARE = 0.0
"""Share of the training rows that get one wrapped copy by default (none; see above)."""


def wrapped_copies(
    prompts: Sequence[str], seed: int, share: float = SHARE
) -> list[tuple[int, str]]:
    """(index of the original row, its wrapped text) for ``share`` of ``prompts``, each wrapped
    in one of :data:`WRAPPERS`; the same rows and wrappers for the same seed."""
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(rng.random(len(prompts)) < share)
    picks = rng.integers(len(WRAPPERS), size=len(chosen))
    out: list[tuple[int, str]] = []
    for row, pick in zip(chosen.tolist(), picks.tolist(), strict=True):
        prefix, suffix = WRAPPERS[pick]
        out.append((row, prefix + prompts[row] + suffix))
    return out
