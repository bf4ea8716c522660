"""One image, Gemma 4's vision token budgets, and what they cost: prompt tokens and TTFT.

    python rag-integration/vision_demo.py --base-url http://127.0.0.1:8000 --model gemma-4-e4b \
        --budgets 70,280,1120

Gemma 4 turns an image into 70, 140, 280 (default), 560 or 1120 "soft tokens" (model card).
vLLM sets the budget per server (``--mm-processor-kwargs '{"max_soft_tokens": N}'``); with
--per-request-budget this script also sends ``mm_processor_kwargs`` in each request, which
engines that support per-request processor settings honour. The image is drawn locally with
Pillow (nothing is downloaded). For each budget the script sends the image with a question,
then the question alone, and reports prompt tokens of both (the difference is what the image
cost), and TTFT. An endpoint without vision (no mmproj on llama-server, a text-only model)
answers with an error, which the script reports and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

import httpx

# An entry script that measures with the benchmarks' client (benchmarks/measure.py): run from
# anywhere, it finds it beside its own folder (pytest and mypy read pyproject.toml's paths).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from measure import (
    RequestResult,
    add_endpoint_arguments,
    auth_headers,
    chat_body,
    int_list,
    stream_chat,
)

BUDGETS = (70, 140, 280, 560, 1120)
QUESTION = "What shapes and colours are in this picture? Answer in one sentence."


def test_image_png(width: int = 768, height: int = 512) -> bytes:
    """A picture with clear content to describe: three coloured shapes and a label."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 60, 260, 280), fill=(220, 40, 40))
    draw.ellipse((300, 80, 520, 300), fill=(40, 90, 220))
    draw.polygon([(600, 300), (700, 80), (740, 300)], fill=(40, 170, 60))
    draw.text((40, 400), "Stratum vision test", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_messages(png: bytes, question: str = QUESTION) -> list[dict[str, Any]]:
    """OpenAI image input; Gemma 4 wants the image before the text (model card)."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": question},
            ],
        }
    ]


def image_request(
    model: str, png: bytes, budget: int | None, max_tokens: int, per_request_budget: bool
) -> dict[str, Any]:
    if budget is not None and budget not in BUDGETS:
        raise ValueError(f"Gemma 4's vision budgets are {BUDGETS}, not {budget}")
    extra: dict[str, Any] = {}
    if per_request_budget and budget is not None:
        extra["mm_processor_kwargs"] = {"max_soft_tokens": budget}
    return chat_body(model, image_messages(png), max_tokens, **extra)


async def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None]:
    url = args.base_url.rstrip("/") + "/v1/chat/completions"
    headers = auth_headers(args.api_key)
    png = test_image_png()
    rows: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout, connect=10)) as client:
        text_only = await stream_chat(
            client, url, chat_body(args.model, [{"role": "user", "content": QUESTION}], 8), headers
        )
        for budget in args.budgets:
            body = image_request(args.model, png, budget, args.max_tokens, args.per_request_budget)
            result: RequestResult = await stream_chat(client, url, body, headers)
            if not result.ok:
                return rows, result.error
            image_tokens = (
                result.prompt_tokens - text_only.prompt_tokens
                if result.prompt_tokens is not None and text_only.prompt_tokens is not None
                else None
            )
            rows.append(
                {
                    "budget": budget,
                    "prompt_tokens": result.prompt_tokens,
                    "prompt_tokens_without_image": text_only.prompt_tokens,
                    "image_tokens": image_tokens,
                    "ttft_ms": round(result.ttft_s * 1000, 1) if result.ttft_s else None,
                }
            )
    return rows, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_endpoint_arguments(parser)
    parser.add_argument(
        "--budgets", type=int_list, default=[280], help=f"comma-separated, from {BUDGETS}"
    )
    parser.add_argument("--per-request-budget", action="store_true")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--save-image", type=Path, help="also write the test picture here")
    args = parser.parse_args(argv)
    if bad := [b for b in args.budgets if b not in BUDGETS]:
        parser.error(f"unknown budget(s) {bad}: Gemma 4 uses {list(BUDGETS)}")
    if args.save_image:
        args.save_image.write_bytes(test_image_png())
    try:
        rows, error = asyncio.run(run(args))
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {args.base_url}: {exc}", file=sys.stderr)
        return 2
    if rows:
        print(json.dumps(rows, indent=2))
    if error:
        print(
            f"error: {args.base_url} did not accept the image: {error}\n"
            "hint: llama-server needs --mmproj for images; on vLLM, check that the model is "
            "multimodal and --limit-mm-per-prompt allows images",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
