"""The routing data and the training recipe: what the published figures rest on.

- the evaluation set stays disjoint from every training prompt (same prompt or near-duplicate);
- every row carries its label, family, provenance and licence;
- the model the trainer writes scores exactly as the trainer's own fit does (the folding of
  calibration and embeddings into token weights loses nothing);
- training is reproducible to the byte: two runs under different hash seeds fit the same
  weights, bit for bit, and write the same file;
- the shipped model keeps its quality on the evaluation set: floors a little under the figures
  in docs/BENCHMARKS.md (``python benchmarks/routing_eval.py``). A floor is a regression check,
  not a target: the model is chosen on the training data only.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import _routing_data as data
import pytest
from _metrics import auroc, balanced_accuracy

from adaptive_router import AdaptiveRouter, RoutingConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def train() -> list[dict[str, Any]]:
    return data.training_rows()


@pytest.fixture(scope="module", params=data.EVAL_SETS, ids=lambda path: path.name)
def evaluation(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return data.read_jsonl(request.param)


def test_no_training_prompt_overlaps_the_evaluation_set(
    train: list[dict[str, Any]], evaluation: list[dict[str, Any]]
) -> None:
    assert len(train) > 5000 and len(evaluation) > 250
    assert data.overlaps(train, evaluation) == []


def test_the_evaluation_sets_share_no_prompt() -> None:
    sets = [data.read_jsonl(path) for path in data.EVAL_SETS]
    for first, second in itertools.combinations(sets, 2):
        assert data.overlaps(first, second) == []
        assert {r["id"] for r in first}.isdisjoint(r["id"] for r in second)


def test_the_overlap_check_finds_copies_and_near_copies() -> None:
    paste = " ".join(f"line {i} of the meeting notes says item {i * 7} is done" for i in range(40))
    evaluation = [{"id": "e1", "prompt": "How many legs does a spider have?"},
                  {"id": "e2", "prompt": paste + "\nWho owns item 14?"}]  # fmt: skip
    train = [
        {"id": "t1", "prompt": "how many LEGS does a spider have"},  # same after normalising
        {"id": "t2", "prompt": "Summarise these notes:\n" + paste},  # same paste, other ask
        {"id": "t3", "prompt": "How many legs does an ant have?"},  # a different prompt
    ]
    found = {(t, e) for t, e, _ in data.overlaps(train, evaluation)}
    assert found == {("t1", "e1"), ("t2", "e2")}


def test_the_overlap_check_finds_a_near_copy_beside_an_exact_one() -> None:
    """A prompt the same as one evaluation prompt and near another: both pairs (eval10's merge
    missed the second, and the test of the sets caught it)."""
    evaluation = [{"id": "e1", "prompt": "whats the capital of mongolia"},
                  {"id": "e2", "prompt": "whats the capital of mongolia again"}]  # fmt: skip
    train = [{"id": "t1", "prompt": "Whats the capital of Mongolia?"}]
    found = {(t, e) for t, e, _ in data.overlaps(train, evaluation)}
    assert found == {("t1", "e1"), ("t1", "e2")}


def test_every_row_has_a_label_family_provenance_and_licence(
    train: list[dict[str, Any]], evaluation: list[dict[str, Any]]
) -> None:
    for row in train + evaluation:
        assert row["label"] in data.LABELS, row["id"]
        assert all(row.get(key) for key in data.REQUIRED), row["id"]
    ids = Counter(r["id"] for r in train + evaluation)
    assert [i for i, n in ids.items() if n > 1] == []


def test_the_blind_audit_covers_every_evaluation_set_exactly() -> None:
    """benchmarks/label_audit.py's input: two labels per evaluation prompt, from the rule's
    values (or borderline), no prompt missing, none extra."""
    audit = data.read_jsonl(data.EVAL_AUDIT)
    ids = [r["id"] for path in data.EVAL_SETS for r in data.read_jsonl(path)]
    assert sorted(r["id"] for r in audit) == sorted(ids)
    for row in audit:
        assert len(row["labels"]) == 2 and set(row["labels"]) <= {*data.LABELS, "borderline"}


def test_every_evaluation_family_has_both_labels(evaluation: list[dict[str, Any]]) -> None:
    labels: dict[str, set[str]] = {}
    for row in evaluation:
        labels.setdefault(row["family"], set()).add(row["label"])
    assert len(labels) >= 30
    assert {f for f, seen in labels.items() if len(seen) < 2} == set()


def test_the_written_model_scores_as_the_trainer_fitted_it(train: list[dict[str, Any]]) -> None:
    """Fits a small model, folds it into a model file and checks both give the same logits."""
    np = pytest.importorskip("numpy")
    import train_scorer

    from adaptive_router.features import extract, read_prompt
    from adaptive_router.model import ComplexityModel
    from adaptive_router.wordpiece import WordPiece

    rows = train[::6]
    y = np.array([data.label_of(r) for r in rows])
    vectors, vocab = train_scorer.load_static()
    tokenizer = WordPiece({t: i for i, t in enumerate(vocab)})
    inputs = train_scorer.read_inputs([r["prompt"] for r in rows], vectors, tokenizer)
    everything = np.arange(len(rows))
    fitted = train_scorer.fit(inputs, y, everything, train_scorer.Recipe())  # NB-scaled words
    model = ComplexityModel.parse(
        train_scorer.to_model(fitted, vectors, vocab, a=1.0, b=0.0, header=[]).dump()
    )
    expected = fitted.decision(inputs, everything)
    got = np.array(
        [
            model.logit(extract(r["prompt"]).dimensions, read_prompt(r["prompt"], model.tokenizer))
            for r in rows
        ]
    )
    assert np.abs(got - expected).max() < 2e-3  # weights are written to 5 decimals
    assert auroc(list(y), list(got)) > 0.9  # it learned something from its training rows


def test_wrapped_copies_are_reproducible_and_keep_the_ask() -> None:
    import _surface

    prompts = [f"What is the boiling point of substance number {i}?" for i in range(2_000)]
    copies = _surface.wrapped_copies(prompts, seed=7, share=0.25)
    assert copies == _surface.wrapped_copies(prompts, seed=7, share=0.25)
    assert copies != _surface.wrapped_copies(prompts, seed=8, share=0.25)
    assert 0.2 * len(prompts) < len(copies) < 0.3 * len(prompts)  # about a quarter of them
    assert _surface.wrapped_copies(prompts, seed=7) == []  # none by default: not shipped
    assert all(prompts[row] in text and text != prompts[row] for row, text in copies)
    assert len({text.replace(prompts[row], "") for row, text in copies}) > 30  # many wrappers


def test_the_surface_probe_keeps_wrappers_of_every_kind_apart_from_training() -> None:
    import _surface
    import surface_probe

    written = json.loads(surface_probe.PROBE.read_text(encoding="utf-8"))["wrappers"]
    kept = surface_probe.held_out_wrappers()
    assert 30 <= len(kept) < len(written)  # some are common phrases the training list has too
    assert {w["kind"] for w in kept} == {w["kind"] for w in written}
    training_text = {(p + s).strip().lower() for p, s in _surface.WRAPPERS}
    assert not any((w["prefix"] + w["suffix"]).strip().lower() in training_text for w in kept)


def test_training_is_reproducible_to_the_byte(tmp_path: Path) -> None:
    """The recipe on a sample of the rows, twice, under different hash seeds (a set's order
    changes with the seed; a sum in that order changed the fitted weights in their last bits).
    """
    pytest.importorskip("sklearn")
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"model-{seed}.txt"
        run = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "train_scorer.py"), "--quick",
             "--every", "12", "--family-folds", "4", "--out", str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True,
            timeout=600, check=True,
        )  # fmt: skip
        digest = re.search(r"sha256 ([0-9a-f]{64})", run.stdout)
        assert digest, run.stdout
        outputs.append((digest.group(1), out.read_bytes()))
    assert outputs[0][0] == outputs[1][0]  # the fitted weights, bit for bit
    assert outputs[0][1] == outputs[1][1]  # the file


# Floors a little under the figures measured with round 12's models, alone and with the encoder's
# second opinion as round 15 asks it (docs/BENCHMARKS.md): AUROC, balanced accuracy at 0.5, AUROC
# where length points the wrong way. The figures beside them are round 19S's (the models as they
# ship, read without the whitespace around a prompt; docs/BENCHMARKS.md, "Surface").
FLOORS = {
    (data.EVAL_SET, True): (0.985, 0.945, 0.98),  # measured 0.992, 0.961, 0.992
    (data.EVAL_SET_2, True): (0.99, 0.97, 0.99),  # measured 0.999, 0.991, 1.000
    (data.EVAL_SET, False): (0.98, 0.935, 0.975),  # measured 0.989, 0.953, 0.990
    (data.EVAL_SET_2, False): (0.99, 0.97, 0.99),  # measured 0.999, 0.989, 1.000
    (data.EVAL_SET_3, True): (0.975, 0.95, 0.99),  # measured 0.984, 0.959, 0.999
    (data.EVAL_SET_3, False): (0.965, 0.915, 0.99),  # measured 0.976, 0.927, 0.997
    (data.EVAL_SET_4, True): (0.975, 0.93, 0.99),  # measured 0.985, 0.947, 1.000
    (data.EVAL_SET_4, False): (0.97, 0.925, 0.99),  # measured 0.982, 0.940, 1.000
    (data.EVAL_SET_5, True): (0.97, 0.925, 0.975),  # measured 0.981, 0.938, 0.991
    (data.EVAL_SET_5, False): (0.965, 0.915, 0.975),  # measured 0.975, 0.928, 0.987
    (data.EVAL_SET_6, True): (0.98, 0.935, 0.99),  # measured 0.988, 0.950, 1.000
    (data.EVAL_SET_6, False): (0.975, 0.915, 0.99),  # measured 0.982, 0.929, 0.999
    (data.EVAL_SET_7, True): (0.98, 0.95, 0.985),  # measured 0.989, 0.967, 0.996
    (data.EVAL_SET_7, False): (0.975, 0.935, 0.985),  # measured 0.984, 0.943, 0.992
    (data.EVAL_SET_8, True): (0.98, 0.94, 0.99),  # measured 0.989, 0.952, 0.999
    (data.EVAL_SET_8, False): (0.975, 0.92, 0.99),  # measured 0.982, 0.925, 0.996
    (data.EVAL_SET_9, True): (0.98, 0.955, 0.99),  # measured 0.989, 0.961, 1.000
    (data.EVAL_SET_9, False): (0.975, 0.925, 0.99),  # measured 0.985, 0.927, 0.998
    (data.EVAL_SET_10, True): (0.97, 0.935, 0.97),  # measured 0.984, 0.954, 0.985
    (data.EVAL_SET_10, False): (0.965, 0.91, 0.97),  # measured 0.978, 0.932, 0.986
    (data.EVAL_SET_11, True): (0.98, 0.965, 0.99),  # measured 0.990, 0.976, 0.995
    (data.EVAL_SET_11, False): (0.975, 0.93, 0.985),  # measured 0.985, 0.953, 0.994
    (data.EVAL_SET_12, True): (0.985, 0.945, 0.985),  # measured 0.992, 0.957, 0.997
    (data.EVAL_SET_12, False): (0.98, 0.94, 0.98),  # measured 0.990, 0.961, 0.994
}


@pytest.mark.parametrize(
    ("case", "floors"),
    FLOORS.items(),
    ids=[f"{p.name}-{'second-opinion' if on else 'linear'}" for p, on in FLOORS],
)
def test_shipped_model_on_the_evaluation_set_with_defaults(
    case: tuple[Path, bool], floors: tuple[float, float, float]
) -> None:
    path, second_opinion = case
    evaluation = data.read_jsonl(path)
    config = RoutingConfig(gpu_monitor=False, second_opinion=second_opinion)
    with AdaptiveRouter(config) as router:
        scores = [router.decide(r["prompt"]).score for r in evaluation]
    labels = [data.label_of(r) for r in evaluation]
    floor_auroc, floor_ba, floor_adverse = floors
    assert auroc(labels, scores) >= floor_auroc
    assert balanced_accuracy(labels, [s >= 0.5 for s in scores]) >= floor_ba
    # Where length points the wrong way: tier_high under 120 characters, tier_low over 600.
    adverse = [
        i
        for i, r in enumerate(evaluation)
        if (labels[i] and len(r["prompt"]) < 120) or (not labels[i] and len(r["prompt"]) > 600)
    ]
    assert auroc([labels[i] for i in adverse], [scores[i] for i in adverse]) >= floor_adverse


def test_shipped_weights_are_small() -> None:
    """13.9 MB with round 19S (315,905 words and pairs, 214,459 long-prompt weights; the
    engine's resident memory 287.7 MiB with the second opinion's encoder, against a budget of 318
    MiB: 31.9 before issue 23 + 300 MB; docs/BENCHMARKS.md): this keeps it from growing unseen.
    (Round 19L's first fit, whose wrapped copies added their own pairs, wrote 19.8 MB.)
    (13.4 MB with round 7's data; each round of ~1,400-2,500 rows adds ~0.5.) The next round
    needs a new look at the budget first."""
    path = ROOT / "router" / "adaptive_router" / "complexity_model.txt"
    assert path.stat().st_size < 14_000_000


# Neutral words around a prompt (benchmarks/surface_probe.py's held-out wrappers: greetings,
# thanks, a framing line, quotes, a line of context) should not move the decision; they still
# move some (docs/BENCHMARKS.md, "Surface"). A ceiling a little above the decisions they changed
# over the twelve sets, so that a model more easily swayed does not ship unseen.
SURFACE_CEILING = 230  # round 19S: 217 of 5,010 (round 15: 226)


def test_neutral_words_around_a_prompt_move_few_decisions() -> None:
    import surface_probe

    texts = [r["prompt"] for path in data.EVAL_SETS for r in data.read_jsonl(path)]
    inside, _ = surface_probe.wrapped(texts)
    with AdaptiveRouter(RoutingConfig(gpu_monitor=False)) as router:
        changed = surface_probe.decisions(router, texts) != surface_probe.decisions(router, inside)
    assert int(changed.sum()) <= SURFACE_CEILING
