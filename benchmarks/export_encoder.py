#!/usr/bin/env python3
"""Export the fine-tuned encoder as the router's second opinion (``difficulty_encoder.onnx``).

    .venv/bin/python benchmarks/export_encoder.py results/finetune/finetuned.npz \\
        --out router/adaptive_router/difficulty_encoder.onnx

Input: the weights ``benchmarks/finetune_encoder.py --out DIR`` writes (``DIR/finetuned.npz``:
all-MiniLM-L6-v2, Apache-2.0, fine-tuned with one linear unit on its mean-pooled output, on the
training rows less two family groups). Steps, all deterministic:

1. The encoder as an ONNX graph (opset 18; batch of one, so no attention mask; positions cut to
   the 128 the router ever sends), built with ``onnx.helper`` from the weights.
2. Its weights quantised to int8, per output channel (``onnxruntime.quantization.
   quantize_dynamic``): a quarter of the size and about three times faster on one core than
   float32, for a handful more errors held out (printed).
3. The held-out rows (the fine-tune's two family groups, which neither model saw): the linear
   recipe refitted without them (``finetune_encoder.linear_scores``, as in round 9) and Platt-
   calibrated, the quantised encoder run on the router's own WordPiece ids. Where the calibrated
   linear logit is within ``--band``, a logistic regression (classes balanced, so 0.5 stays the
   balanced point) combines the two logits; for a prompt that reads as English
   (``adaptive_router.encoder.reads_as_english``) the band is the wider ``--english-band`` (the
   encoder was pre-trained on English: held out, 168 -> 154 errors of 4,154 at ±2.5, round 15).
   Its figures are printed cross-fitted (fitted on one group, read on the other), and the fit on
   both is written into the file's metadata with the bands, where :mod:`adaptive_router.encoder`
   reads them.

Needs ``onnx`` and ``onnxruntime`` (requirements-dev.txt). About a minute on two cores.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HEADS = 12
MAX_POSITIONS = 128
DEFAULT_BAND = 1.5
DEFAULT_ENGLISH_BAND = 2.5


def build_graph(w: dict[str, np.ndarray]) -> object:
    """The classifier as an ONNX model: input_ids [1, n] -> logit [1, 1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list[object] = []
    nodes: list[object] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{op.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def layer_norm(x: str, prefix: str) -> str:
        weight, bias = (
            const(prefix + "w", w[prefix + "weight"]),
            const(prefix + "b", w[prefix + "bias"]),
        )
        return node("LayerNormalization", [x, weight, bias], axis=-1, epsilon=1e-12)

    def dense(x: str, prefix: str) -> str:
        product = node("MatMul", [x, const(prefix + "wT", w[prefix + "weight"].T.copy())])
        return node("Add", [product, const(prefix + "b", w[prefix + "bias"])])

    e = "enc."
    width = w[e + "embeddings.word_embeddings.weight"].shape[1]
    head_width = width // HEADS
    word = const("word", w[e + "embeddings.word_embeddings.weight"])
    # Token type 0 is the only one a single sentence uses: folded into the positions.
    positions = (
        w[e + "embeddings.position_embeddings.weight"][:MAX_POSITIONS]
        + w[e + "embeddings.token_type_embeddings.weight"][0][None]
    )
    pos = const("pos", positions.astype(np.float32))
    length = node("Shape", ["input_ids"], start=1, end=2)
    zero = const("zero", np.array([0], dtype=np.int64))
    x = node("Add", [node("Gather", [word, "input_ids"]), node("Slice", [pos, zero, length, zero])])
    x = layer_norm(x, e + "embeddings.LayerNorm.")
    split = const("split", np.array([1, -1, HEADS, head_width], dtype=np.int64))
    merge = const("merge", np.array([1, -1, width], dtype=np.int64))
    scale = const("scale", np.array(1 / math.sqrt(head_width), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    one = const("one", np.array(1.0, dtype=np.float32))
    root2 = const("root2", np.array(math.sqrt(2.0), dtype=np.float32))
    layer = 0
    while f"{e}encoder.layer.{layer}.attention.self.query.weight" in w:
        p = f"{e}encoder.layer.{layer}."

        def heads(name: str, perm: list[int], x: str = x, p: str = p) -> str:
            return node("Transpose", [node("Reshape", [dense(x, p + name), split])], perm=perm)

        q = heads("attention.self.query.", [0, 2, 1, 3])
        k = heads("attention.self.key.", [0, 2, 3, 1])
        v = heads("attention.self.value.", [0, 2, 1, 3])
        probs = node("Softmax", [node("Mul", [node("MatMul", [q, k]), scale])], axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        attended = dense(node("Reshape", [context, merge]), p + "attention.output.dense.")
        x = layer_norm(node("Add", [x, attended]), p + "attention.output.LayerNorm.")
        h = dense(x, p + "intermediate.dense.")
        erf = node("Erf", [node("Div", [h, root2])])
        gelu = node("Mul", [node("Mul", [h, half]), node("Add", [erf, one])])
        x = layer_norm(node("Add", [x, dense(gelu, p + "output.dense.")]), p + "output.LayerNorm.")
        layer += 1
    axes = const("axes", np.array([1], dtype=np.int64))
    pooled = node("ReduceMean", [x, axes], keepdims=0)
    product = node("MatMul", [pooled, const("headT", w["head.weight"].T.copy())])
    nodes.append(helper.make_node("Add", [product, const("headb", w["head.bias"])], ["logit"]))
    graph = helper.make_graph(
        nodes,  # type: ignore[arg-type]
        "difficulty",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "n"])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, [1, 1])],
        inits,  # type: ignore[arg-type]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def quantise(model: object, out: Path) -> None:
    """int8 weights, per output channel, for MatMul and the token table (Gather)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "float.onnx"
        onnx.save(model, source)  # type: ignore[arg-type]
        quantize_dynamic(
            source,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def encoder_logits(path: Path, prompts: list[str]) -> np.ndarray:
    """The exported encoder's logits, as the router computes them (its tokenizer, its code)."""
    from adaptive_router.encoder import DifficultyEncoder
    from adaptive_router.features import read_prompt
    from adaptive_router.model import ComplexityModel

    tokenizer = ComplexityModel.load().tokenizer
    encoder = DifficultyEncoder(path)
    return np.array([encoder.logit(read_prompt(p, tokenizer).ids) for p in prompts])


def combine_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(linear weight, encoder weight, bias): balanced logistic regression on both logits."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, class_weight="balanced").fit(x, y)
    return float(model.coef_[0][0]), float(model.coef_[0][1]), float(model.intercept_[0])


def write_metadata(path: Path, values: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", type=Path, help="finetuned.npz from finetune_encoder.py")
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument("--band", type=float, default=DEFAULT_BAND)
    parser.add_argument(
        "--english-band",
        type=float,
        default=DEFAULT_ENGLISH_BAND,
        help="the band for prompts that read as English (0: the same band for every prompt)",
    )
    parser.add_argument(
        "--linear-scores",
        type=Path,
        help="the held-out rows' linear decision values saved by an earlier run (.npy); "
        "default: refit the linear recipe (under a minute)",
    )
    args = parser.parse_args(argv)

    from finetune_encoder import HELD_OUT_GROUPS, linear_scores, report, split
    from train_scorer import platt

    weights = {k: v.astype(np.float32) for k, v in np.load(args.weights).items()}
    quantise(build_graph(weights), args.out)
    # Placeholder metadata, so the router's own class can run it before the fit is known.
    write_metadata(
        args.out, {"band": "0", "linear_weight": "1", "encoder_weight": "1", "bias": "0"}
    )
    prompts, y, held, groups = split()
    groups = groups[held]
    held_prompts = [p for p, h in zip(prompts, held, strict=True) if h]
    y_held = y[held]
    if args.linear_scores:
        raw = np.load(args.linear_scores)
    else:
        raw = linear_scores(prompts, y, held)
        np.save(args.out.with_suffix(".linear-held.npy"), raw)
    a, b = platt(raw, y_held)
    linear = a * raw + b
    encoder = encoder_logits(args.out, held_prompts)
    from adaptive_router.encoder import reads_as_english

    english = np.array([reads_as_english(p) for p in held_prompts])
    unsure = (np.abs(linear) < args.band) | (english & (np.abs(linear) < args.english_band))
    print(
        f"{int(held.sum())} held-out rows ({', '.join(HELD_OUT_GROUPS)}; {english.mean():.1%} "
        f"read as English); {unsure.mean():.1%} within ±{args.band} of the calibrated linear "
        f"logit, or ±{args.english_band} for English"
    )
    print("\n| held out | AUROC | balanced accuracy | errors |\n|---|---:|---:|---:|")
    report("linear (the shipped recipe), calibrated", y_held, linear)
    report("encoder, int8", y_held, encoder)
    crossed = linear.copy()
    for group in HELD_OUT_GROUPS:
        fit_rows, read_rows = unsure & (groups != group), unsure & (groups == group)
        lw, ew, bias = combine_fit(np.c_[linear, encoder][fit_rows], y_held[fit_rows])
        crossed[read_rows] = lw * linear[read_rows] + ew * encoder[read_rows] + bias
    report("cascade within the bands, combination cross-fitted", y_held, crossed)
    # The encoder was pre-trained on English: errors in the band, split as the bands are.
    for name, part in (("not read as English", ~english), ("read as English", english)):
        rows = unsure & part
        before = int(((linear[rows] >= 0) != (y_held[rows] == 1)).sum())
        after = int(((crossed[rows] >= 0) != (y_held[rows] == 1)).sum())
        print(f"in the band, {name}: {int(rows.sum())} rows, errors {before} -> {after}")
    lw, ew, bias = combine_fit(np.c_[linear, encoder][unsure], y_held[unsure])
    print(
        f"\ncombination fitted on both groups: {lw:.4f} x linear + {ew:.4f} x encoder + {bias:.4f}"
    )
    write_metadata(
        args.out,
        {
            "band": f"{args.band}",
            **({"english_band": f"{args.english_band}"} if args.english_band > args.band else {}),
            "linear_weight": f"{lw:.6f}",
            "encoder_weight": f"{ew:.6f}",
            "bias": f"{bias:.6f}",
            "description": "all-MiniLM-L6-v2 (Apache-2.0) fine-tuned as a difficulty classifier "
            "by benchmarks/finetune_encoder.py, int8 per channel; written by "
            "benchmarks/export_encoder.py",
        },
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
