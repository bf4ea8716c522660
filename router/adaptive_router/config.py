"""The decision engine's configuration: one typed object, loadable from YAML and environment.

Every field is documented where it is declared; ``dump_default_config()`` prints them all as a
commented YAML file. Unknown keys and wrong types are errors that name the key and the file,
because a silently ignored typo (``complexity_treshold``) is worse than a refusal to start.

Precedence, lowest first: field defaults, the YAML file, ``ROUTER_<FIELD>`` environment
variables (for containers), explicit keyword arguments.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

Tier = Literal["tier_low", "tier_high"]
TIERS: tuple[Tier, Tier] = ("tier_low", "tier_high")

SERVICE_SECTION = "service"
"""Top-level YAML key reserved for the HTTP service's own settings (validated by the service)."""

ENV_PREFIX = "ROUTER_"


class ConfigError(ValueError):
    """A configuration value is unknown or invalid; the message says which and where."""


def split_commas(value: Any) -> Any:
    """``"a, b"`` (an environment variable, a flag) -> ``("a", "b")``; ``"none"`` -> ``()``
    (an empty variable means "not set" to the environment loader); other values unchanged."""
    if isinstance(value, str):
        if value.strip().lower() == "none":
            return ()
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


T = TypeVar("T")
CommaList = Annotated[tuple[T, ...], BeforeValidator(split_commas)]
"""A tuple field that also accepts one comma-separated string."""


class RoutingConfig(BaseModel):
    """How the router decides between tier_low (fast, small) and tier_high (slow, strong)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    complexity_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Prompts whose complexity score is below this go to tier_low. The score is a "
        "calibrated probability that the prompt needs the strong model; 0.5 is the balanced "
        "point on the dev set. Raise it to send less to tier_high.",
    )
    vram_headroom_gb: float = Field(
        0.5,
        ge=0.0,
        description="If the GPU has less free memory than this (GB, 1e9 bytes), new work goes to "
        "tier_low. Both engines preallocate their memory, so a full card is the normal state: "
        "set this below the free memory the plan leaves (scripts/plan_vram.py prints it), and "
        "the rule fires only when something outside the plan takes the card's memory. Ignored "
        "while the GPU state is unavailable.",
    )
    latency_sla_ms: float = Field(
        2000.0,
        gt=0.0,
        description="Time-to-first-token target for tier_high. While the moving average of "
        "tier_high's time to first token (streamed answers, and the service's probes while it "
        "is avoided) is above it, routed work goes to tier_low.",
    )
    sla_warmup_seed_ms: float = Field(
        800.0,
        ge=0.0,
        description="Starting value of each tier's latency moving average, before any request "
        "was observed.",
    )
    ema_alpha: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="Weight of the newest observation in the latency moving average.",
    )
    gpu_util_max_pct: float = Field(
        90.0,
        ge=0.0,
        le=100.0,
        description="GPU utilisation (percent) at or above which a poll counts as 'hot'.",
    )
    gpu_util_polls: int = Field(
        3,
        ge=1,
        description="After this many consecutive hot polls the GPU utilisation circuit opens and "
        "work goes to tier_low, until a poll is below gpu_util_max_pct again.",
    )
    vram_poll_interval_ms: int = Field(
        500, ge=50, description="How often the GPU monitor reads NVML, in milliseconds."
    )
    gpu_monitor: bool = Field(
        True,
        description="Read the GPU through NVML (nvidia-ml-py). Off, or without a GPU, the GPU "
        "rules abstain.",
    )
    gpu_device_index: int = Field(0, ge=0, description="Which NVML device to watch.")
    tier_low_context_tokens: int = Field(
        8192,
        ge=256,
        description="Context window of tier_low (vLLM --max-model-len). Longer prompts go to "
        "tier_high.",
    )
    tier_high_context_tokens: int = Field(
        32768,
        ge=256,
        description="Context window of tier_high (llama-server --ctx-size divided by its "
        "parallel slots). A prompt longer than both windows is refused with a clear error.",
    )
    chars_per_token: float = Field(
        3.5,
        gt=0.5,
        description="Characters per token used to estimate prompt length without a tokenizer "
        "(errs towards overestimating for English).",
    )
    default_output_tokens: int = Field(
        512,
        ge=0,
        description="Output tokens reserved in the context check when a request sets no "
        "max_tokens.",
    )
    vision_tiers: CommaList[Tier] = Field(
        ("tier_low",),
        description="Tiers that accept images. A request with images goes to one of them; "
        "'none' (or an empty list): images are refused with a 400.",
    )
    context_turns: int = Field(
        2,
        ge=0,
        description="Earlier user turns read as context when scoring a conversation (the last "
        "user turn always counts most).",
    )
    context_weight: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="How far a short follow-up ('now prove it') is pulled towards the score of "
        "its context (system prompt and earlier turns). 0 scores the last turn alone.",
    )
    scorer_model_path: str | None = Field(
        None,
        description="Weights file for the complexity model; empty = the one shipped with the "
        "package (benchmarks/train_scorer.py writes new ones).",
    )
    second_opinion: bool = Field(
        True,
        description="Where the complexity model is unsure (its calibrated logit within ±1.5, or "
        "±2.5 for a prompt that reads as English: about one prompt in six), ask the fine-tuned "
        "sentence encoder shipped with the package too (a few milliseconds of CPU, off the event "
        "loop) and combine both. Off: the linear model decides alone.",
    )
    second_opinion_model_path: str | None = Field(
        None,
        description="ONNX file of the second opinion's encoder; empty = the one shipped with "
        "the package (benchmarks/export_encoder.py writes new ones).",
    )

    detect_tasks: bool = Field(
        True,
        description="Send chat UIs' background tasks (a title, tags, follow-up suggestions, "
        "search queries, a summary... about a conversation the prompt embeds) to tier_low, with "
        "the reason 'task', however hard the embedded conversation looks.",
    )
    allow_degraded: bool = Field(
        False,
        description="May a request that named a tier (gemma4-smart, tier_high, tier_low) be "
        "answered by the other tier when its own fails? Routed requests always may. A degraded "
        "answer carries the header x-router-degraded: true.",
    )


def describe_error(exc: ValidationError, source: str, fields: Any = None) -> str:
    """One line naming every bad key of ``exc`` and where it came from (``source``)."""
    known = list(fields if fields is not None else RoutingConfig.model_fields)
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(key, known, n=1)
            guess = f" (did you mean '{hint[0]}'?)" if hint else ""
            problems.append(f"unknown key '{key}'{guess}")
        else:
            problems.append(f"'{key}': {error['msg']} (got {error.get('input')!r})")
    return f"{source}: " + "; ".join(problems)


def build_config(values: Mapping[str, Any], source: str = "<arguments>") -> RoutingConfig:
    """Validate ``values`` into a :class:`RoutingConfig`, with errors that name ``source``."""
    try:
        return RoutingConfig(**dict(values))
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, source)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML is a :class:`ConfigError`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def env_overrides(
    environ: Mapping[str, str] | None = None, fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``ROUTER_<FIELD>`` variables that name a field (of RoutingConfig unless ``fields`` is
    given). Text fields take the value as it is; others parse it as a YAML scalar, so numbers,
    booleans and ``[a, b]`` lists work."""
    environ = os.environ if environ is None else environ
    fields = RoutingConfig.model_fields if fields is None else fields
    out: dict[str, Any] = {}
    for name, field in fields.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        if field.annotation in (str, str | None):
            out[name] = raw
            continue
        try:
            out[name] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[name] = raw
    return out


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    use_env: bool = True,
    **overrides: Any,
) -> RoutingConfig:
    """Defaults < YAML file at ``path`` < ``ROUTER_*`` environment < keyword ``overrides``.

    The file's ``service:`` section belongs to the HTTP service and is skipped here.
    """
    values: dict[str, Any] = {}
    sources: list[str] = []
    if path is not None:
        data = read_yaml(path)
        data.pop(SERVICE_SECTION, None)
        values.update(data)
        sources.append(str(path))
    if use_env:
        env = env_overrides(environ)
        if env:
            values.update(env)
            sources.append("environment (" + ", ".join(ENV_PREFIX + k.upper() for k in env) + ")")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(values, source=" + ".join(sources) or "<defaults>")


def dump_fields(model: type[BaseModel], indent: str = "") -> list[str]:
    """Every field of ``model`` at its default, each after its description, as YAML lines."""
    lines: list[str] = []
    for name, field in model.model_fields.items():
        line = indent + "#"
        for word in (field.description or "").split():
            if len(line) + len(word) > 95:
                lines.append(line)
                line = indent + "#"
            line += " " + word
        lines.append(line)
        value = field.get_default(call_default_factory=True)
        if isinstance(value, tuple):
            value = list(value)
        lines.append(f"{indent}{name}: {json.dumps(value)}")
        lines.append("")
    return lines


def fields_markdown(model: type[BaseModel], prefix: str = "") -> str:
    """Every field of ``model`` as a Markdown table: key, variable, default, meaning."""
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        value = field.get_default(call_default_factory=True)
        if isinstance(value, tuple):
            value = list(value)
        meaning = (field.description or "").replace("|", "\\|")
        env = ENV_PREFIX + name.upper()
        rows.append(f"| `{prefix}{name}` | `{env}` | `{json.dumps(value)}` | {meaning} |")
    return "\n".join(rows)


def dump_default_config() -> str:
    """The decision settings: every field at its default, each after its description."""
    lines = ["# Adaptive router: decision settings. Every key is optional.", ""]
    return "\n".join(lines + dump_fields(RoutingConfig))
