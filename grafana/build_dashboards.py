#!/usr/bin/env python3
"""Generate the provisioned Grafana dashboards (grafana/dashboards/*.json).

    python3 scripts/generate.py          # rewrites them (and their Kubernetes copies)
    python3 scripts/generate.py --check  # exit 1 if they are out of date (CI, pre-commit)

Run as a script (``[--check]``, the 0.2 command) it still writes or checks the dashboards alone,
with a note that the command is now scripts/generate.py; it goes in the next release.

Dashboards are code so that every query is reviewable in one place and the tests can check each
metric name against what the router really exports and what vLLM / llama.cpp document. Panels fed
only by a GPU engine or NVML say so in their description ("Needs: vLLM" / "Needs: GPU"), which the
end-to-end tests read to know which panels a CPU-only run cannot fill.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"


class Board:
    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid, self.title, self.description = uid, title, description
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = 0
        self._row_h = 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self._x + w > 24:
            self._x, self._y = 0, self._y + self._row_h
            self._row_h = 0
        pos = {"x": self._x, "y": self._y, "w": w, "h": h}
        self._x += w
        self._row_h = max(self._row_h, h)
        return pos

    def row(self, title: str) -> None:
        if self._x:
            self._x, self._y = 0, self._y + self._row_h
        self.panels.append({"type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self._y, "w": 24, "h": 1},
                            "id": len(self.panels) + 1, "panels": []})  # fmt: skip
        self._y += 1
        self._row_h = 0

    def panel(
        self,
        kind: str,
        title: str,
        targets: list[tuple[str, str]],
        *,
        description: str,
        unit: str = "short",
        w: int = 8,
        h: int = 8,
        needs: str | None = None,
        mappings: list[dict[str, Any]] | None = None,
        thresholds: list[tuple[float | None, str]] | None = None,
        options: dict[str, Any] | None = None,
        instant: bool = False,
        fmt: str = "time_series",
    ) -> None:
        if needs:
            description = f"{description} Needs: {needs}."
        steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "targets": [
                {
                    "datasource": DS,
                    "refId": chr(65 + i),
                    "expr": expr,
                    "legendFormat": legend,
                    "instant": instant,
                    "range": not instant,
                    "format": fmt,
                }
                for i, (expr, legend) in enumerate(targets)
            ],
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "mappings": mappings or [],
                    "thresholds": {"mode": "absolute", "steps": steps},
                    "noValue": "no data yet",
                },
                "overrides": [],
            },
            "options": options or {},
        }
        self.panels.append(panel)

    def json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["stratum"],
            "timezone": "browser",
            "schemaVersion": 39,
            "version": 1,
            "editable": False,
            "graphTooltip": 1,
            "refresh": "10s",
            "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": []},
            "annotations": {"list": []},
            "links": [
                {"type": "dashboards", "tags": ["stratum"], "title": "Stratum", "asDropdown": True}
            ],
            "panels": self.panels,
        }


def ratio(num: str, den: str) -> str:
    """num / den, showing nothing (not NaN) while there is no traffic."""
    return f"({num}) / (({den}) > 0)"


TIERS_REQ = 'router_requests_total{tier=~"tier_low|tier_high"}'
CIRCUIT_MAP = [{"type": "value", "options": {
    "0": {"text": "closed", "color": "green"},
    "1": {"text": "half-open", "color": "orange"},
    "2": {"text": "open", "color": "red"}}}]  # fmt: skip
UP_MAP = [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                        "1": {"text": "up", "color": "green"}}}]  # fmt: skip


def router_board() -> Board:
    b = Board("stratum-router", "Stratum / Router",
              "What the adaptive router decides, how fast, and the state it decides on.")  # fmt: skip
    b.row("Decisions")
    b.panel("timeseries", "Requests by tier and reason",
            [(f'sum by (tier, reason) (rate(router_requests_total{{tier!="none"}}[{RATE}]))', "{{tier}} / {{reason}}")],
            description="Requests answered per second, by the tier that served them and the rule that decided (complexity, override, vram, sla, health, load, failover...).",
            unit="reqps", w=12)  # fmt: skip
    b.panel("timeseries", "tier_high share",
            [(ratio(f'sum(rate(router_requests_total{{tier="tier_high"}}[{RATE}]))',
                    f"sum(rate({TIERS_REQ}[{RATE}]))"), "tier_high share")],
            description="Share of requests served by the 26B. The StratumTierHighShareOutOfBand alert fires outside 5-70 %.",
            unit="percentunit", w=6)  # fmt: skip
    b.panel("timeseries", "Decision time p99",
            [(f"histogram_quantile(0.99, sum by (le) (rate(router_decision_seconds_bucket[{RATE}])))", "p99"),
             (f"histogram_quantile(0.5, sum by (le) (rate(router_decision_seconds_bucket[{RATE}])))", "p50")],
            description="Time the router spends choosing a tier (scoring, the encoder's second opinion when asked, and rules), per request.",
            unit="s", w=6)  # fmt: skip
    b.panel("bargauge", "Complexity score distribution",
            [("sum by (le) (increase(router_complexity_score_bucket[$__range]))", "{{le}}")],
            description="How many routed prompts fell under each complexity score bound over the time range (cumulative buckets). The default threshold is 0.5.",
            w=12, fmt="heatmap", instant=True,
            options={"displayMode": "gradient", "orientation": "horizontal"})  # fmt: skip
    b.panel("timeseries", "Errors and failovers",
            [(f"sum by (tier, kind) (rate(router_upstream_errors_total[{RATE}])) or vector(0)", "{{tier}} {{kind}}"),
             (f"sum by (from_tier, to_tier) (rate(router_failovers_total[{RATE}])) or vector(0)", "failover {{from_tier}} → {{to_tier}}")],
            description="Upstream failures by tier and kind (connect, timeout, status_5xx, loading, midstream) and retries on the other tier. 0 when all is well.",
            unit="reqps", w=12)  # fmt: skip
    b.panel("timeseries", "Second opinions",
            [(f"sum by (outcome) (rate(router_second_opinions_total[{RATE}])) or vector(0)", "{{outcome}}"),
             (f"sum(rate({TIERS_REQ}[{RATE}]))", "all requests")],
            description="Prompts the complexity model was unsure of (score within about 0.18-0.82, or 0.08-0.92 for a prompt that reads as English), which the fine-tuned encoder scored too: kept (the same tier as the complexity model alone), changed (the other tier), skipped (the encoder's queue was full: the complexity model decided alone). About one prompt in six is expected; each costs a few milliseconds of the router's CPU; skipped ones mean bursts of unsure prompts.",
            unit="reqps", w=12)  # fmt: skip
    b.row("Latency measured at the router")
    for q in ("0.5", "0.95"):
        b.panel("timeseries", f"Time to first token p{int(float(q) * 100)} by tier",
                [(f"histogram_quantile({q}, sum by (le, tier) (rate(router_ttft_seconds_bucket[{RATE}])))", "{{tier}}"),
                 ("max(router_latency_sla_seconds)", "SLA")],
                description="From the request reaching the router to the tier's first byte (whole reply for non-streaming requests), including its wait for a slot in the router.",
                unit="s", w=8)  # fmt: skip
    b.panel("timeseries", "Latency EMA against the SLA",
            [("router_latency_ema_seconds", "{{tier}} EMA"), ("max(router_latency_sla_seconds)", "SLA")],
            description="The moving average the SLA rule uses (the engine's own time to first token, from the slot: the router's wait for a slot is not in it): while tier_high's is above the SLA, prompts go to tier_low (reason sla).",
            unit="s", w=8)  # fmt: skip
    b.row("Tiers")
    b.panel("stat", "Tier up", [("router_tier_up", "{{tier}}")],
            description="1 when the tier can take new work (its circuit is not open).",
            w=6, h=5, mappings=UP_MAP, instant=True)  # fmt: skip
    b.panel("stat", "Circuit", [("min by (tier) (router_circuit_state)", "{{tier}}")],
            description="Circuit breaker per tier, its best replica's: closed (normal), half-open (one probe request), open (no traffic for the cooldown).",
            w=6, h=5, mappings=CIRCUIT_MAP, instant=True)  # fmt: skip
    b.panel("timeseries", "In flight and queued",
            [("router_in_flight_requests", "{{tier}} in flight (router)"),
             ("router_tier_queue_depth", "{{tier}} queued (engine)")],
            description="Requests the router has open to each tier (at most its slots), and requests waiting inside each engine (vLLM waiting, llama.cpp deferred): the router's own wait in its line instead (below), so these come from elsewhere.",
            w=12, h=5)  # fmt: skip
    b.row("Sharing the 26B: people, slots, the router's line")
    b.panel("timeseries", "Who uses the 26B",
            [(f'sum by (person) (rate(router_person_slot_seconds_total{{tier="tier_high"}}[{RATE}]))', "{{person}}"),
             ('sum(router_tier_slots{tier="tier_high"})', "slots")],
            description="tier_high slots each person held on average (slot-seconds per second, counted when each request ends; at the 'slots' line one person has the whole 26B). A person is a LiteLLM key (its alias), an OpenWebUI user (e-mail), a 'user' field or a client address; the first metrics_people people seen have their own label, the rest are 'other'. One person's script filling the 26B: docs/HANDOVER.md.",
            w=12, options={"legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "max"]}})  # fmt: skip
    b.panel("bargauge", "26B slot-seconds by person",
            [('sort_desc(sum by (person) (increase(router_person_slot_seconds_total{tier="tier_high"}[$__range])))', "{{person}}")],
            description="Seconds of tier_high slots each person held over the time range, most first.",
            unit="s", w=6, instant=True,
            options={"displayMode": "gradient", "orientation": "horizontal"})  # fmt: skip
    b.panel("timeseries", "Waiting for a slot",
            [("sum by (tier, class) (router_queue_waiting)", "{{tier}} {{class}} waiting"),
             ("router_tier_slots", "{{tier}} slots")],
            description="Requests waiting in the router for a slot, by tier and class (interactive first, then batch, then a chat UI's background tasks), beside each tier's slots (its engines' own: llama-server --parallel, vLLM --max-num-seqs).",
            w=6)  # fmt: skip
    b.panel("timeseries", "Wait for a slot p95",
            [(f"histogram_quantile(0.95, sum by (le, tier) (rate(router_queue_wait_seconds_bucket[{RATE}]))) or vector(0)", "{{tier}} p95"),
             (f"sum by (person) (rate(router_person_wait_seconds_total[{RATE}])) / (sum by (person) (rate(router_person_waits_total[{RATE}])) > 0) or vector(0)", "{{person}} mean")],
            description="How long requests that found no free slot waited for one: p95 per tier, and the mean per person. 0 while nobody waits.",
            unit="s", w=8)  # fmt: skip
    b.panel("timeseries", "429s and busy answers",
            [(f"sum by (person, code) (rate(router_person_rejections_total[{RATE}])) or vector(0)", "429 {{person}} {{code}}"),
             (f'sum by (tier, outcome) (rate(router_queue_outcomes_total{{outcome!="waited"}}[{RATE}])) or vector(0)', "{{tier}} {{outcome}}")],
            description="429s by person and code (rate_limit_exceeded: the person's max_requests_per_person; queue_timeout: no slot within queue_timeout_s), and what became of requests that found no free slot: degraded (a routed prompt answered by the other tier, reason busy), timeout, gone (the client left), capped. 0 when all is well.",
            unit="reqps", w=8)  # fmt: skip
    b.panel("timeseries", "Requests by class",
            [(f"sum by (tier, class) (rate(router_person_requests_total[{RATE}]))", "{{tier}} {{class}}")],
            description="Requests given a slot per second, by class: interactive (people), batch (a key marked batch, or x-router-class: batch), background (a chat UI's titles, tags, follow-ups).",
            unit="reqps", w=8)  # fmt: skip
    b.row("Replicas (each engine of a tier)")
    b.panel("stat", "Replica up", [("router_replica_up", "{{tier}} {{replica}}")],
            description="1 when the replica takes new work (circuit not open, health probe not down). A tier is down only when all its replicas are.",
            w=6, h=6, mappings=UP_MAP, instant=True)  # fmt: skip
    b.panel("timeseries", "Replica load",
            [("router_replica_in_flight", "{{tier}} {{replica}} in flight"),
             ("router_replica_queue_depth", "{{tier}} {{replica}} queued")],
            description="Requests the router has open to each replica and requests waiting in its engine: what least-load and the bounded-load affinity read.",
            w=10, h=6)  # fmt: skip
    b.panel("timeseries", "Replica choice",
            [(f"sum by (tier, outcome) (rate(router_affinity_total[{RATE}])) or vector(0)", "{{tier}} {{outcome}}"),
             (f"sum by (tier, replica) (rate(router_replica_requests_total[{RATE}])) or vector(0)", "{{tier}} {{replica}} answered")],
            description="How replicas were chosen (home: the conversation's own, for its prefix cache; moved: its own was down or overloaded; least_load) and what each answered. 0 with one replica per tier.",
            unit="reqps", w=8, h=6)  # fmt: skip
    b.row("Retrieval (embeddings and reranking)")
    b.panel("timeseries", "Retrieval requests",
            [(f'sum by (tier, status) (rate(router_requests_total{{tier=~"embed|rerank"}}[{RATE}])) or vector(0)', "{{tier}} {{status}}")],
            description="/v1/embeddings (embed) and /v1/rerank (rerank) requests answered per second, by HTTP status; OpenWebUI's document chat sends both. 0 when nobody uses retrieval.",
            unit="reqps", w=8)  # fmt: skip
    b.panel("timeseries", "Retrieval latency",
            [(f'histogram_quantile(0.95, sum by (le, tier) (rate(router_request_duration_seconds_bucket{{tier=~"embed|rerank"}}[{RATE}])))', "{{tier}} p95"),
             (f'histogram_quantile(0.5, sum by (le, tier) (rate(router_request_duration_seconds_bucket{{tier=~"embed|rerank"}}[{RATE}])))', "{{tier}} p50")],
            description="From the request reaching the router to the whole answer sent: embedding a batch, or scoring every document of a rerank.",
            unit="s", w=8)  # fmt: skip
    b.panel("timeseries", "Texts and tokens per second",
            [(f"sum by (tier) (rate(router_retrieval_inputs_total[{RATE}])) or vector(0)", "{{tier}} texts/s"),
             (f"sum by (tier) (rate(router_retrieval_tokens_total[{RATE}])) or vector(0)", "{{tier}} tokens/s")],
            description="Texts embedded and documents scored per second, and the tokens the engines read for them (their usage.prompt_tokens).",
            w=8)  # fmt: skip
    b.row("GPU (NVML, read by the router)")
    b.panel("timeseries", "GPU memory",
            [("router_gpu_memory_used_bytes", "used"), ("router_gpu_memory_total_bytes", "total"),
             ("router_gpu_memory_free_bytes", "free")],
            description="Memory of the GPU the router watches. Below vram_headroom_gb free, prompts go to tier_low (reason vram).",
            unit="bytes", w=12, needs="GPU")  # fmt: skip
    b.panel("timeseries", "GPU utilisation",
            [("router_gpu_utilization_percent", "utilisation")],
            description="At or above gpu_util_max_pct for gpu_util_polls polls in a row, prompts go to tier_low (reason gpu_util).",
            unit="percent", w=8, needs="GPU")  # fmt: skip
    b.panel("stat", "GPU readable", [("router_gpu_available", "NVML")],
            description="1 when the router can read NVML; 0 means the GPU rules abstain.",
            w=4, mappings=UP_MAP, instant=True)  # fmt: skip
    return b


def engines_board() -> Board:
    b = Board("stratum-engines", "Stratum / Engines",
              "vLLM (tier_low) and llama-server (tier_high) as they report themselves.")  # fmt: skip
    b.row("vLLM — tier_low (Gemma 4 E4B)")
    for title, metric, desc in (
        ("vLLM time to first token p95", "vllm:time_to_first_token_seconds_bucket", "Measured inside vLLM, queueing included."),
        ("vLLM inter-token latency p95", "vllm:inter_token_latency_seconds_bucket", "Time between two output tokens."),
        ("vLLM end-to-end latency p95", "vllm:e2e_request_latency_seconds_bucket", "Whole request inside vLLM."),
    ):  # fmt: skip
        b.panel("timeseries", title,
                [(f"histogram_quantile(0.95, sum by (le) (rate({metric}[{RATE}])))", "p95")],
                description=desc, unit="s", w=8, needs="vLLM")  # fmt: skip
    b.panel("timeseries", "vLLM requests running / waiting",
            [("sum(vllm:num_requests_running)", "running"), ("sum(vllm:num_requests_waiting)", "waiting")],
            description="Requests in the batch and in vLLM's queue.", w=8, needs="vLLM")  # fmt: skip
    b.panel("timeseries", "vLLM KV cache use",
            [("max(vllm:kv_cache_usage_perc)", "KV cache")],
            description="Share of the KV cache in use (vllm:kv_cache_usage_perc, 0-1). Near 1, requests queue or are preempted.",
            unit="percentunit", w=8, needs="vLLM")  # fmt: skip
    b.panel("timeseries", "vLLM tokens/s",
            [(f"sum(rate(vllm:generation_tokens_total[{RATE}]))", "generated"),
             (f"sum(rate(vllm:prompt_tokens_total[{RATE}]))", "prompt")],
            description="Tokens per second generated and read.", unit="short", w=8, needs="vLLM")  # fmt: skip
    b.row("llama-server — tier_high (Gemma 4 26B-A4B)")
    b.panel("timeseries", "llama.cpp tokens/s",
            [(f"sum(rate(llamacpp:tokens_predicted_total[{RATE}]))", "generated"),
             (f"sum(rate(llamacpp:prompt_tokens_total[{RATE}]))", "prompt"),
             ("sum(llamacpp:predicted_tokens_seconds)", "avg generation speed (server)")],
            description="Tokens per second generated and read, and llama-server's own average generation speed.",
            w=12)  # fmt: skip
    b.panel("timeseries", "llama.cpp requests processing / deferred",
            [("sum(llamacpp:requests_processing)", "processing"), ("sum(llamacpp:requests_deferred)", "deferred")],
            description="Requests in the parallel slots, and requests waiting for a free slot.",
            w=12)  # fmt: skip
    return b


def overview_board() -> Board:
    b = Board("stratum-overview", "Stratum / Overview",
              "One screen: is it up, how busy, how fast, how many answers from the big model.")  # fmt: skip
    b.panel("stat", "Requests per second",
            [(f"sum(rate({TIERS_REQ}[{RATE}])) or vector(0)", "req/s")],
            description="Chat and completion requests answered per second.", unit="reqps", w=6, h=5)  # fmt: skip
    b.panel("stat", "Answered by the 26B",
            [(ratio(f'sum(rate(router_requests_total{{tier="tier_high"}}[{RATE}]))', f"sum(rate({TIERS_REQ}[{RATE}]))"), "share")],
            description="Share of answers from Gemma 4 26B (tier_high); the rest come from E4B.",
            unit="percentunit", w=6, h=5)  # fmt: skip
    b.panel("stat", "Failed requests",
            [(ratio(f'sum(rate(router_requests_total{{status=~"5..|midstream"}}[{RATE}])) or vector(0)',
                    f"sum(rate(router_requests_total[{RATE}]))"), "errors")],
            description="Share of requests that ended in an error (5xx or a broken stream).",
            unit="percentunit", w=6, h=5, thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")])  # fmt: skip
    b.panel("stat", "Services not answering",
            [('count(up{job=~"router|vllm|llama-cpp|embed|rerank|litellm"} == 0) or vector(0)', "down")],
            description="Services Prometheus cannot scrape. 0 is good.",
            w=6, h=5, thresholds=[(None, "green"), (1, "red")], instant=True)  # fmt: skip
    b.panel("stat", "Models", [("router_tier_up", "{{tier}}")],
            description="Whether each model can take work.", w=8, h=5, mappings=UP_MAP, instant=True)  # fmt: skip
    b.panel("timeseries", "Wait for the first word (p95)",
            [(f"histogram_quantile(0.95, sum by (le, tier) (rate(router_ttft_seconds_bucket[{RATE}])))", "{{tier}}")],
            description="95 % of users saw the first token sooner than this, per model.", unit="s", w=16, h=8)  # fmt: skip
    b.panel("gauge", "GPU memory used",
            [(ratio("max(router_gpu_memory_used_bytes)", "max(router_gpu_memory_total_bytes)"), "used")],
            description="Share of the GPU's memory in use.", unit="percentunit", w=8, h=8, needs="GPU",
            thresholds=[(None, "green"), (0.9, "orange"), (0.97, "red")])  # fmt: skip
    b.panel("timeseries", "Requests by model",
            [(f"sum by (tier) (rate({TIERS_REQ}[{RATE}]))", "{{tier}}")],
            description="Requests per second answered by each model.", unit="reqps", w=16, h=8)  # fmt: skip
    b.panel("table", "Tokens per key (LiteLLM)",
            [('sum by (api_key_alias) (increase(litellm_total_tokens_metric_total[$__range]))', "{{api_key_alias}}")],
            description="Prompt + answer tokens per LiteLLM key over the dashboard's time range "
                        "(local models have no price: usage is tokens). Keys: scripts/team-keys.sh. "
                        "An empty name is the master key.",
            w=24, h=8, instant=True)  # fmt: skip
    return b


BOARDS = {"stratum-router.json": router_board, "stratum-engines.json": engines_board,
          "stratum-overview.json": overview_board}  # fmt: skip


def render() -> dict[str, str]:
    return {
        name: json.dumps(make().json(), indent=2, ensure_ascii=False) + "\n"
        for name, make in BOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if the files differ from the code"
    )
    args = parser.parse_args(argv)
    print(
        "build_dashboards.py is deprecated as a command and goes in the next release; use: "
        "python3 scripts/generate.py" + (" --check" if args.check else ""),
        file=sys.stderr,
    )
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            "out of date, run python grafana/build_dashboards.py: " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
