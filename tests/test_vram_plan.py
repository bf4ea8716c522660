"""scripts/plan_vram.py: calibrated against every published size, the shipped profiles fit their
cards, docker-compose.yml does not drift from it, the router's vram rule stays quiet in the
planned steady state (a faked NVML reading the plan's numbers), and the command line runs on the
standard library alone, with the flags of 0.2 as aliases. (.env.example's profile blocks and the
doc's tables: tests/test_generate.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from stackutil import ROOT
from vram.calibration import calibration
from vram.model import make_plan
from vram.profiles import PROFILES, profile_gpu_gib
from vram.settings import DEFAULTS, LAYOUTS, OPTIONAL_FLAGS, Settings
from vram_facts import ARCH

from adaptive_router import AdaptiveRouter, RoutingConfig
from adaptive_router.gpu import GpuReading
from adaptive_router.testing.fake_nvml import FakeNvml

SCRIPT = ROOT / "scripts" / "plan_vram.py"
COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)([^}]*)\}")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("check", calibration(), ids=lambda c: c.case)
def test_lands_within_10_percent_of_every_published_figure(check: object) -> None:
    assert abs(check.error) <= 0.10, (  # type: ignore[attr-defined]
        f"{check.case}: published {check.published}, planned {check.planned:.3f}"  # type: ignore[attr-defined]
    )


def test_calibration_table_covers_google_gguf_and_vllm_figures() -> None:
    out = run("calibration")
    assert out.returncode == 0
    for case in ("Google's table", "GGUF", "vLLM weights, google/gemma-4-E4B-it ",
                 "vLLM KV cache tokens"):  # fmt: skip
        assert case in out.stdout
    assert out.stdout.count("\n| ") >= 14


def test_linear_layers_match_a_published_count() -> None:
    """xbill9's FP8 build of E4B re-quantizes 3,972,792,320 values: every linear layer."""
    assert ARCH["gemma-4-E4B"].params()["linears"] == 3_972_792_320


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_shipped_profile_fits_its_memory_with_a_gib_to_spare(profile: str) -> None:
    out = run("profile", profile, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    plan = json.loads(out.stdout)
    assert plan["fits"] and plan["margin_gib"] >= 0
    assert all(d["free_gib"] >= 1.0 for d in plan["devices"].values())
    values = PROFILES[profile].values
    if values["STRATUM_PROFILE"] == "cpu":
        assert set(plan["devices"]) == {"RAM"}
        assert plan["engines"]["tier_low"]["weights_gib"]["gguf_file"] > 2.0
        return
    vllm = plan["engines"]["vllm"]
    assert vllm["kv_cache_gib"] > 0 and vllm["full_length_requests"] >= 4  # a real KV cache
    assert set(vllm) >= {"weights_gib", "kv_cache_gib", "overhead_gib", "total_gib", "share_gib"}
    llama = plan["engines"]["llama_server"]
    assert llama["weights_gib"]["attention_and_shared_mlp"] > 0 and llama["kv_cache_gib"] > 0
    # The vram rule must not fire in the planned steady state (GB in the router, GiB here).
    assert float(values["ROUTER_VRAM_HEADROOM_GB"]) * 1e9 / 2**30 < plan["expected_free_gib"]
    cards = {values["VLLM_GPU_DEVICE_ID"], values["LLAMA_GPU_DEVICE_ID"]}
    assert (
        len(plan["devices"])
        == len(cards)
        == (2 if LAYOUTS[values["STRATUM_PROFILE"]] == "dual-gpu" else 1)
    )


def test_dual_gpu_plans_each_card_and_refuses_a_missing_one(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = PROFILES["dual-16gb"].values
    env.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    out = run("check", "--env", str(env), "--gpu-gb", "15.93,15.93", "--json")
    plan = json.loads(out.stdout)
    assert out.returncode == 0 and set(plan["devices"]) == {"GPU 0", "GPU 1"}
    assert plan["devices"]["GPU 0"]["engines"] == ["vllm (tier_low)"]
    one = run("check", "--env", str(env), "--gpu-gb", "15.93")
    assert one.returncode == 2 and "LLAMA_GPU_DEVICE_ID=1" in one.stderr
    env.write_text(env.read_text() + "LLAMA_GPU_DEVICE_ID=0\n")
    same = run("check", "--env", str(env), "--gpu-gb", "15.93,15.93")
    assert same.returncode == 2 and "two different cards" in same.stderr


def test_cpu_profile_plans_ram_and_says_when_it_is_short(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("STRATUM_PROFILE=cpu\nROUTER_VISION_TIERS=none\n")
    assert run("check", "--env", str(env), "--ram-gb", "15").returncode == 0
    short = run("check", "--env", str(env), "--ram-gb", "8")
    assert short.returncode == 1 and "the machine's RAM (8.00 GiB" in short.stdout
    assert run("check", "--env", str(env), "--gpu-gb", "16").returncode == 2  # RAM is what counts
    env.write_text("STRATUM_PROFILE=cpu\n")  # the default vision tier, tier_high, takes none
    images = run("check", "--env", str(env), "--ram-gb", "15")
    assert images.returncode == 2 and "ROUTER_VISION_TIERS=none" in images.stderr


def test_16gb_plan_is_the_compose_default_and_leaves_vllm_a_real_kv_cache() -> None:
    plan = make_plan(Settings.from_env(DEFAULTS), profile_gpu_gib("16gb"))
    vllm, llama = plan.engines
    assert plan.fits
    assert vllm.kv_tokens > 50_000  # tokens at 8192 per request, window-aware
    assert llama.weights["experts"] > 0  # two layers of experts on the GPU
    assert 1.0 <= plan.free_gib < 2.5


def test_the_first_16gb_plan_does_not_fit_and_the_reason_points_the_right_way(
    tmp_path: Path,
) -> None:
    """What this project first shipped: BF16 E4B with online FP8 at 0.62 of the card."""
    env = tmp_path / ".env"
    env.write_text(
        "VLLM_MODEL=google/gemma-4-E4B-it\nVLLM_QUANTIZATION_ARGS=--quantization fp8\n"
        "VLLM_GPU_MEMORY_UTILIZATION=0.62\nVLLM_MAX_IMAGES=1\nLLAMA_MMPROJ_FILE=\n"
        "LLAMA_MMPROJ_ARGS=\nLLAMA_N_CPU_MOE=30\nROUTER_VISION_TIERS=tier_low\n"
    )
    out = run("check", "--env", str(env), "--gpu-gb", "16", "--json")
    assert out.returncode == 1
    plan = json.loads(out.stdout)
    assert not plan["fits"]
    weights = plan["engines"]["vllm"]["weights_gib"]
    assert weights["embed_tokens"] + weights["per_layer_embeddings"] > 6.0  # left in BF16
    assert plan["engines"]["vllm"]["kv_cache_gib"] < 0
    assert "Raise VLLM_GPU_MEMORY_UTILIZATION" in plan["problems"][0]
    text = run("check", "--env", str(env), "--gpu-gb", "16")
    assert "DOES NOT FIT: vLLM" in text.stdout and "quantizes linear layers only" in text.stdout


def test_names_the_engine_and_the_shortfall_when_the_card_is_too_small(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("LLAMA_N_CPU_MOE=10\n")  # 18 layers of experts on a 16 GB card
    out = run("check", "--env", str(env), "--gpu-gb", "16")
    assert out.returncode == 1
    assert re.search(r"leaves -?\d+\.\d\d GiB, \d+\.\d\d GiB short", out.stdout)
    # The message names the setting that fits, and it does.
    suggested = re.search(r"LLAMA_N_CPU_MOE=(\d+) moves enough", out.stdout)
    assert suggested, out.stdout
    env.write_text(f"LLAMA_N_CPU_MOE={suggested[1]}\n")
    assert run("check", "--env", str(env), "--gpu-gb", "16").returncode == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("VLLM_MODEL=someone/unknown-model", "not in the planner's table"),
        ("VLLM_GPU_MEMORY_UTILIZATION=lots", "is not a float"),
        ("VLLM_GPU_MEMORY_UTILIZATION=1.5", "outside"),
        ("LLAMA_MODEL_FILE=other.gguf", "not in the planner's table"),
        ("ROUTER_VISION_TIERS=tier_low", "takes no images here"),
        ("ROUTER_VISION_TIERS=none", "does not list it"),
        ("ROUTER_TIER_HIGH_CONTEXT_TOKENS=16384", "LLAMA_CTX_SIZE / LLAMA_PARALLEL"),
        ("this is not a setting", "key cannot contain a space"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path: Path, line: str, message: str) -> None:
    env = tmp_path / ".env"
    env.write_text(line + "\n")
    out = run("check", "--env", str(env), "--gpu-gb", "16")
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_missing_file_and_missing_gpu_size_exit_2(tmp_path: Path) -> None:
    assert run("check", "--env", str(tmp_path / "nope"), "--gpu-gb", "16").returncode == 2
    assert run("check", "--env", str(ROOT / ".env.example")).returncode == 2


def test_the_shell_environment_wins_over_the_file_as_in_compose(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("VLLM_GPU_MEMORY_UTILIZATION=0.5\n")
    shell = {"PATH": "/usr/bin:/bin", "VLLM_GPU_MEMORY_UTILIZATION": "0.9"}
    out = run("check", "--env", str(env), "--gpu-gb", "16", "--json", env=shell)
    assert json.loads(out.stdout)["engines"]["vllm"]["share_gib"] == pytest.approx(
        0.9 * 15.93, 0.01
    )


def test_compose_defaults_are_the_16gb_plan() -> None:
    """Every setting the planner reads has the same fallback in docker-compose.yml, and the
    optional flags use ${VAR-default} there (set but empty = off), as the planner reads them."""
    found: dict[str, tuple[str, str]] = {}
    for name in ("docker-compose.yml", "docker-compose.cpu.yml"):
        for m in COMPOSE_VAR.finditer((ROOT / name).read_text()):
            found.setdefault(m.group(1), (m.group(2), m.group(3)))
    for key, default in DEFAULTS.items():
        if key in ("LLAMA_MMPROJ_FILE", "STRATUM_PROFILE", "RETRIEVAL_DEVICE"):  # scripts only
            continue
        if key.startswith("ROUTER_"):  # the router's own, with the stack's config file
            continue  # test_router_config_file_agrees_with_the_16gb_plan
        assert key in found, f"{key} is not in docker-compose.yml"
        op, value = found[key]
        assert value == default, f"{key}: compose {value!r}, planner {default!r}"
        assert op == ("-" if key in OPTIONAL_FLAGS else ":-"), key


def test_router_config_file_agrees_with_the_16gb_plan() -> None:
    """With none of the profile's ROUTER_* lines in .env (compose passes them empty), the router
    reads the 16 GB plan: from docker/router/router_config.yaml or its own defaults."""
    from adaptive_router.config import load_config

    empty = {k: "" for k in DEFAULTS if k.startswith("ROUTER_")}
    config = load_config(ROOT / "docker/router/router_config.yaml", environ=empty)
    assert list(config.vision_tiers) == DEFAULTS["ROUTER_VISION_TIERS"].split(",")
    assert config.vram_headroom_gb == float(DEFAULTS["ROUTER_VRAM_HEADROOM_GB"])
    assert config.tier_low_context_tokens == int(DEFAULTS["ROUTER_TIER_LOW_CONTEXT_TOKENS"])
    assert config.tier_high_context_tokens == int(DEFAULTS["ROUTER_TIER_HIGH_CONTEXT_TOKENS"])


def _reading(gpu_gib: float, used_gib: float) -> GpuReading:
    total = int(gpu_gib * 2**30)
    used = int(used_gib * 2**30)
    return GpuReading(free_bytes=total - used, used_bytes=used, total_bytes=total,
                      utilization_pct=40.0, name="NVIDIA GeForce RTX 5060 Ti")  # fmt: skip


def test_vram_rule_is_quiet_in_the_planned_steady_state_and_fires_when_memory_is_taken() -> None:
    """NVML as it reads once both engines hold their memory: a hard prompt still goes to the
    26B. When another process takes a GiB, the rule sends it to tier_low, and says so."""
    settings = Settings.from_env(DEFAULTS)
    gpu_gib = profile_gpu_gib("16gb")
    plan = make_plan(settings, gpu_gib)
    nvml = FakeNvml(_reading(gpu_gib, plan.planned_gib))
    router = AdaptiveRouter(
        RoutingConfig(vram_headroom_gb=settings.headroom_gb, vision_tiers=("tier_high",)),
        gpu_source=nvml,
    )
    assert router.gpu_monitor is not None
    hard = [{"role": "user", "content": "Prove that the square root of 2 is irrational, then "
             "derive a bound on the error of Newton's method for it, step by step."}]  # fmt: skip
    router.gpu_monitor.poll_once()
    steady = router.decide(hard)
    assert steady.tier == "tier_high" and steady.reason != "vram"
    nvml.reading = _reading(gpu_gib, plan.planned_gib + 1.2)  # a desktop session, a second job
    router.gpu_monitor.poll_once()
    squeezed = router.decide(hard)
    assert (squeezed.tier, squeezed.reason) == ("tier_low", "vram")


def test_retrieval_engines_are_counted_in_ram_or_on_tier_highs_card(tmp_path: Path) -> None:
    """RETRIEVAL_DEVICE=cpu (default): both retrieval engines in RAM beside the card, no VRAM.
    gpu (docker-compose.retrieval-gpu.yml): on tier_high's card, each with its CUDA context; no
    shipped profile leaves room, and the refusal says what to move."""
    values = PROFILES["24gb"].values
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    gpus = ",".join(f"{g:.3f}" for g in PROFILES["24gb"].memory_gib)
    on_cpu = json.loads(run("check", "--env", str(env), "--gpu-gb", gpus, "--json").stdout)
    assert on_cpu["fits"]
    assert on_cpu["devices"]["GPU 0"]["engines"] == ["vllm (tier_low)", "llama-server (tier_high)"]
    assert on_cpu["engines"]["embed"]["overhead_gib"] == {"compute_buffers": 0.5}
    env.write_text(env.read_text() + "RETRIEVAL_DEVICE=gpu\n")
    out = run("check", "--env", str(env), "--gpu-gb", gpus, "--json")
    on_gpu = json.loads(out.stdout)
    assert out.returncode == 1 and not on_gpu["fits"]
    engines = on_gpu["devices"]["GPU 0"]["engines"]
    assert len(engines) == 4 and all("on the GPU" in e for e in engines[2:])
    assert set(on_gpu["engines"]["rerank"]["overhead_gib"]) == {"compute_buffers", "cuda_context"}
    added = on_gpu["devices"]["GPU 0"]["planned_gib"] - on_cpu["devices"]["GPU 0"]["planned_gib"]
    assert added == pytest.approx(
        on_gpu["engines"]["embed"]["total_gib"] + on_gpu["engines"]["rerank"]["total_gib"], abs=0.01
    )
    assert "LLAMA_N_CPU_MOE" in run("check", "--env", str(env), "--gpu-gb", gpus).stdout
    # Room made as the refusal says (experts of 6 more layers in RAM, 0.40 GiB each): it fits.
    moe = int(values["LLAMA_N_CPU_MOE"]) + 6
    env.write_text(env.read_text() + f"LLAMA_N_CPU_MOE={moe}\n")
    assert run("check", "--env", str(env), "--gpu-gb", gpus).returncode == 0
    env.write_text("STRATUM_PROFILE=cpu\nROUTER_VISION_TIERS=none\nRETRIEVAL_DEVICE=gpu\n")
    refused = run("check", "--env", str(env), "--ram-gb", "15")
    assert refused.returncode == 2 and "cpu profile has no GPU" in refused.stderr


def test_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    """As start.sh runs it on a stock host, or stricter: no site-packages at all (-S), and
    isolated (-I: no PYTHONPATH, no user site, not even the script's own folder on the path, as
    with PYTHONSAFEPATH=1)."""
    bare = [sys.executable, "-I", "-S", str(SCRIPT)]
    env = tmp_path / ".env"
    env.write_text("STRATUM_PROFILE=cpu\nROUTER_VISION_TIERS=none\n")
    for args in (
        ["check", "--env", str(ROOT / ".env.example"), "--gpu-gb", "15.93", "--json"],
        ["check", "--env", str(env), "--ram-gb", "15"],
        ["profile", "dual-16gb"],
        ["profile", "24gb", "--settings"],
        ["calibration"],
    ):
        out = subprocess.run([*bare, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stdout == run(*args).stdout


def test_profile_settings_are_the_lines_start_sh_writes() -> None:
    out = run("profile", "dual-16gb", "--settings")
    assert out.returncode == 0
    chosen = PROFILES["dual-16gb"]
    assert out.stdout.splitlines() == [f"{k}={chosen.values[k]}" for k in chosen.keys]
    assert "STRATUM_PROFILE=dual-16gb" in out.stdout and "LLAMA_GPU_DEVICE_ID=1" in out.stdout


def test_a_missing_command_or_profile_is_a_usage_error() -> None:
    for args in ((), ("profile", "48gb"), ("check", "--profile", "16gb"),
                 ("profile", "16gb", "--settings", "--json")):  # fmt: skip
        out = run(*args)
        assert out.returncode == 2 and "usage: plan_vram.py" in out.stderr, args


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["--env", "{env}", "--gpu-gb", "15.93", "--json"],
         ["check", "--env", "{env}", "--gpu-gb", "15.93", "--json"]),
        (["--gpu-gb", "16", "--env={env}"], ["check", "--gpu-gb", "16", "--env={env}"]),
        (["--profile", "24gb", "--gpu-gb", "23.99"], ["profile", "24gb", "--gpu-gb", "23.99"]),
        (["--profile=cpu", "--json"], ["profile", "cpu", "--json"]),
        (["--show-profile", "32gb"], ["profile", "32gb", "--settings"]),
        (["--calibration"], ["calibration"]),
    ],
)  # fmt: skip
def test_the_0_2_flags_still_work_with_a_one_line_note(old: list[str], new: list[str]) -> None:
    """Kept for one release (CHANGELOG.md, Deprecated): the same output and exit status as the
    command that replaces each, and one line on stderr that names that command."""
    env = str(ROOT / ".env.example")
    old = [a.replace("{env}", env) for a in old]
    new = [a.replace("{env}", env) for a in new]
    before, after = run(*old), run(*new)
    assert (before.returncode, before.stdout) == (after.returncode, after.stdout)
    assert before.returncode == 0 and after.stderr == ""
    note = before.stderr.splitlines()
    assert len(note) == 1 and "deprecated" in note[0], before.stderr
    assert note[0].endswith("use: python3 scripts/plan_vram.py " + " ".join(new))


def test_write_generated_is_now_the_generator_of_the_planner_s_parts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run in-process, with the generator stubbed: the test writes nothing into the checkout."""
    import generate
    from vram import cli

    calls: list[list[str]] = []

    def generate_main(argv: list[str]) -> int:
        calls.append(list(argv))
        return 0

    monkeypatch.setattr(generate, "main", generate_main)
    assert cli.main(["--write-generated"]) == 0
    assert calls == [["--only", "planner"]]
    assert "use: python3 scripts/generate.py --only planner" in capsys.readouterr().err
