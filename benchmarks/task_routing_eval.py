#!/usr/bin/env python3
"""Where chat UIs' background tasks land, with and without the router's task rule.

    python benchmarks/task_routing_eval.py [--open-webui-config PATH] [--json out.json]

1. OpenWebUI's own default task templates (title, tags, follow-ups, search/retrieval queries,
   autocomplete, image prompt, emoji), read from the installed package's ``open_webui/config.py``
   (``DEFAULT_*_PROMPT_TEMPLATE``; by default the one scripts/e2e-deps.sh installs), rendered
   the way OpenWebUI renders them (``{{MESSAGES:END:n}}`` -> ``ROLE: content`` lines) over a
   two-turn conversation built from each prompt of the dev set (the user's prompt, a short
   assistant answer).
2. The same kinds of task in other UIs' styles (a system instruction above an embedded
   ``User:/Assistant:`` transcript; a transcript followed by an instruction in Chinese; a
   summary request over ``<chat_history>`` tags), written here, not copied from those projects:
   the rule must recognise structure, not one UI's wording.
3. The dev set itself: prompts taken for tasks (false positives), and the hard prompts that
   mention JSON, a title, tags or a summary: they must still go to tier_high.

For each it reports the share decided tier_high with the task rule off (``detect_tasks:
false``, the router before this rule) and on.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from adaptive_router import AdaptiveRouter, RoutingConfig

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "Here is a short answer to that, with the main points in order."
MENTIONS = re.compile(r"\b(json|title|titles|tags?|summary|summari[sz]e)\b", re.I)


def default_open_webui_config() -> Path | None:
    """open_webui/config.py of the OpenWebUI that scripts/e2e-deps.sh installs (its version
    pinned in tests/e2e/versions.env, its cache in $STRATUM_CACHE_DIR or ~/.cache/stratum)."""
    versions = (ROOT / "tests" / "e2e" / "versions.env").read_text(encoding="utf-8")
    version = re.search(r"^OPEN_WEBUI_VERSION=(\S+)", versions, re.M)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stratum"
    cache = Path(os.environ.get("STRATUM_CACHE_DIR", cache))
    if version is None:
        return None
    venv = cache / f"venv-open-webui-{version.group(1)}"
    found = sorted(venv.glob("lib/python3*/site-packages/open_webui/config.py"))
    return found[0] if found else None


def read_templates(config: Path) -> dict[str, str]:
    """``DEFAULT_*_PROMPT_TEMPLATE`` string constants of OpenWebUI's config.py (not imported:
    importing it starts OpenWebUI's database)."""
    out: dict[str, str] = {}
    for node in ast.parse(config.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                name = getattr(target, "id", "")
                if name.startswith("DEFAULT_") and name.endswith("_PROMPT_TEMPLATE"):
                    out[name.removeprefix("DEFAULT_").removesuffix("_PROMPT_TEMPLATE").lower()] = (
                        str(node.value.value)
                    )
    return out


def render(template: str, messages: list[dict[str, str]]) -> str:
    """OpenWebUI's rendering of the variables its default task templates use."""

    def lines(selected: Iterable[dict[str, str]]) -> str:
        return "\n".join(f"{m['role'].upper()}: {m['content']}" for m in selected)

    text = re.sub(
        r"\{\{MESSAGES:END:(\d+)\}\}", lambda m: lines(messages[-int(m.group(1)) :]), template
    )
    text = re.sub(
        r"\{\{MESSAGES:START:(\d+)\}\}", lambda m: lines(messages[: int(m.group(1))]), text
    )
    text = text.replace("{{MESSAGES}}", lines(messages))
    last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    for key, value in {
        "{{CURRENT_DATE}}": "2026-11-21",
        "{{prompt}}": last_user,
        "{{PROMPT}}": last_user[:60],
        "{{TYPE}}": "General",
    }.items():
        text = text.replace(key, value)
    return text


# -- other UIs' styles, written for this test ------------------------------------------------


def system_title_above_transcript(prompt: str) -> list[dict[str, str]]:
    transcript = f'||>User:\n"{prompt}"\n||>Response:\n"{ANSWER}"'
    instruction = "Write a short title of at most five words for this exchange, no punctuation."
    return [
        {"role": "system", "content": f"{instruction}\n{transcript}"},
        {"role": "user", "content": "Language: English"},
    ]


def transcript_then_chinese_instruction(prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "你是一名助理，负责为对话起一个简短的标题。"},
        {"role": "user", "content": f"user: {prompt}\nassistant: {ANSWER}\n\n"
                                    "请为上述对话总结一个不超过十个字的标题。"},
    ]  # fmt: skip


def tagged_history_summary(prompt: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You condense conversations for later context."},
        {"role": "user", "content": f"<chat_history>\nuser: {prompt}\nassistant: {ANSWER}\n"
                                    "</chat_history>\n\nSummarize the conversation above in "
                                    "under 100 words, keeping names and numbers."},
    ]  # fmt: skip


def tags_as_json(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Human: {prompt}\nAI: {ANSWER}\n\nReturn only a JSON "
                                        'object {"tags": [...]} with 1-3 topic tags.'}]  # fmt: skip


OTHER_STYLES: dict[str, Callable[[str], list[dict[str, str]]]] = {
    "title in a system message above a ||>User: transcript": system_title_above_transcript,
    "title asked in Chinese after a user:/assistant: transcript": (
        transcript_then_chinese_instruction
    ),
    "summary of a <chat_history> block": tagged_history_summary,
    "tags as JSON after a Human:/AI: transcript": tags_as_json,
}


def share_high(router: AdaptiveRouter, bodies: list[list[dict[str, str]]]) -> tuple[float, int]:
    decisions = [router.decide(body) for body in bodies]
    high = sum(d.tier == "tier_high" for d in decisions)
    return high / max(len(bodies), 1), sum(d.reason == "task" for d in decisions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "routing_devset.jsonl")
    parser.add_argument("--open-webui-config", type=Path, help="open_webui/config.py")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines()]
    prompts = [r["prompt"] for r in rows]
    before = AdaptiveRouter(RoutingConfig(gpu_monitor=False, detect_tasks=False))
    after = AdaptiveRouter(RoutingConfig(gpu_monitor=False))

    cases: dict[str, list[list[dict[str, str]]]] = {}
    config = args.open_webui_config or default_open_webui_config()
    if config is None or not config.exists():
        print("OpenWebUI is not installed (bash scripts/e2e-deps.sh): its templates are left out")
    else:
        templates = read_templates(config)
        for name in ("title_generation", "tags_generation", "follow_up_generation",
                     "query_generation", "autocomplete_generation",
                     "image_prompt_generation", "emoji_generation"):  # fmt: skip
            template = templates[name]
            cases[f"OpenWebUI {name.replace('_', ' ')}"] = [
                [{"role": "user", "content": render(template, [
                    {"role": "user", "content": p}, {"role": "assistant", "content": ANSWER}])}]
                for p in prompts
            ]  # fmt: skip
    for name, build in OTHER_STYLES.items():
        cases[name] = [build(p) for p in prompts]

    results: dict[str, Any] = {"tasks": {}, "devset": {}}
    print("| background task (over each of the 693 dev-set prompts) | tier_high before | "
          "tier_high after | reason task |")  # fmt: skip
    print("|---|---:|---:|---:|")
    all_before = all_after = total = 0.0
    for name, bodies in cases.items():
        b, _ = share_high(before, bodies)
        a, tasks = share_high(after, bodies)
        results["tasks"][name] = {"requests": len(bodies), "tier_high_before": b,
                                  "tier_high_after": a, "reason_task": tasks}  # fmt: skip
        all_before += b * len(bodies)
        all_after += a * len(bodies)
        total += len(bodies)
        print(f"| {name} | {b:.1%} | {a:.1%} | {tasks} |")
    if total:
        results["tasks_overall"] = {"tier_high_before": all_before / total,
                                    "tier_high_after": all_after / total}  # fmt: skip
        print(f"| **all** | **{all_before / total:.1%}** | **{all_after / total:.1%}** | |")

    flagged = [r for r in rows if after.decide(r["prompt"]).reason == "task"]
    mentions = [r for r in rows if r["label"] == "tier_high" and MENTIONS.search(r["prompt"])]
    kept = [r for r in mentions if after.decide(r["prompt"]).tier == "tier_high"]
    was = [r for r in mentions if before.decide(r["prompt"]).tier == "tier_high"]
    results["devset"] = {
        "prompts": len(rows),
        "taken_for_tasks": len(flagged),
        "hard_prompts_mentioning_json_title_tags_summary": len(mentions),
        "of_those_tier_high_before": len(was),
        "of_those_tier_high_after": len(kept),
    }
    print()
    print(f"dev set: {len(flagged)} of {len(rows)} prompts taken for tasks; "
          f"{len(mentions)} hard prompts mention JSON/title/tags/summary: tier_high "
          f"{len(was)} before, {len(kept)} after")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
