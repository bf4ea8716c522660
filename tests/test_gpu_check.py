"""scripts/gpu-check.sh and stratum_tools/gpu_check without a GPU: the command line, the dry run,
the time budget, the report writer, the log parser and shellcheck. The real run (--cpu) takes about 30 s and the
GPU run a GPU: neither is here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from stackutil import ROOT, require_tool

from stratum_tools.gpu_check import run as gpu_run
from stratum_tools.gpu_check import steps as gpu_check

SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_help() -> None:
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout
    for flag in ("--dry-run", "--out", "--llama-server", "--llama-src", "--budget-s", "--cpu"):
        assert flag in out.stdout


def test_unknown_argument_is_a_usage_error() -> None:
    out = run("--frobnicate")
    assert out.returncode == 2
    assert "unknown argument" in out.stderr


def test_dry_run_lists_the_steps(tmp_path: Path) -> None:
    out = run("--dry-run", "--cpu", "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    for step in ("a. facts", "b. build", "c. model", "d. bench", "e. nvml", "f. plan", "report"):
        assert step in out.stdout
    assert "nvidia-smi --query-gpu=name,memory.total,memory.used,compute_cap" in out.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_dry_run_in_gpu_mode_names_the_cuda_build(tmp_path: Path) -> None:
    out = run("--dry-run", "--llama-src", str(tmp_path / "missing.tar.gz"))
    assert out.returncode == 0, out.stderr
    assert "-DGGML_CUDA=ON" in out.stdout
    assert "-DCMAKE_CUDA_ARCHITECTURES=<compute cap>" in out.stdout
    assert "MISSING  --llama-src" in out.stdout


def test_shellcheck() -> None:
    shellcheck = require_tool("shellcheck")
    out = subprocess.run([shellcheck, "-x", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


SAMPLE_STEPS = {
    "facts": {
        "mode": "gpu",
        "cpus": 16,
        "gpus": [
            {
                "name": "NVIDIA H100 80GB HBM3",
                "memory_total_mib": 81559.0,
                "memory_used_mib": 1.0,
                "compute_cap": "9.0",
                "driver_version": "580.95.05",
            }
        ],
        "nvcc": "Build cuda_13.0",
    },
    "bench": {
        "prompt_tokens": 512,
        "max_tokens": 64,
        "method": "interleaved",
        "results": {
            "c1": {
                "direct": {"requests": 20, "ok": 20, "ttft_p50_ms": 20.0, "ttft_p95_ms": 25.0,
                           "decode_tokens_per_s_p50": 300.0},
                "router": {"requests": 20, "ok": 20, "ttft_p50_ms": 20.1, "ttft_p95_ms": 25.2,
                           "decode_tokens_per_s_p50": 299.0},
                "ttft_overhead_pct_p50": 0.5,
                "ttft_overhead_pct_p95": 0.8,
            },
            "c16": {
                "direct": {"requests": 96, "ok": 96, "ttft_p50_ms": 80.0, "ttft_p95_ms": 120.0,
                           "decode_tokens_per_s_p50": 150.0},
                "router": {"requests": 96, "ok": 96, "ttft_p50_ms": 80.4, "ttft_p95_ms": 121.0,
                           "decode_tokens_per_s_p50": 149.0},
                "ttft_overhead_pct_p50": 0.5,
                "ttft_overhead_pct_p95": 0.83,
            },
        },
    },
}  # fmt: skip


def test_report_writer_makes_json_and_markdown(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    for name, data in SAMPLE_STEPS.items():
        (steps / f"{name}.json").write_text(json.dumps(data))
    budget = gpu_run.Budget(480, tmp_path)
    budget.record("facts", "ok", 1, 30)
    budget.record("build", "skipped-time", 0, 200, "needs 60 s")
    budget.record("bench", "ok", 60, 150)
    assert gpu_check.main(["report", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "gpu"
    assert report["skipped_for_time"] == ["build"]
    assert report["headline"] == {
        "router_ttft_overhead_pct_p50": {"c1": 0.5, "c16": 0.5},
        "target_pct": 1.0,
        "met": True,
    }
    markdown = (tmp_path / "report.md").read_text()
    assert "# GPU check (gpu mode)" in markdown
    assert "Skipped for time: build." in markdown
    assert "NVIDIA H100 80GB HBM3" in markdown
    assert "| 16 | router | 96 (96) |" in markdown
    assert "target < 1 %: met" in markdown


def test_report_writer_without_any_step(tmp_path: Path) -> None:
    assert gpu_check.main(["report", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["headline"]["met"] is None
    assert "not measured" in (tmp_path / "report.md").read_text()


def test_llama_buffer_lines_are_parsed() -> None:
    log = (
        "load_tensors:        CUDA0 model buffer size =  3072.50 MiB\n"
        "load_tensors:   CPU_Mapped model buffer size =     1.06 MiB\n"
        "llama_kv_cache:      CUDA0 KV buffer size =  3072.00 MiB\n"
        "sched_reserve:      CUDA0 compute buffer size =   300.75 MiB\n"
        "sched_reserve:  CUDA_Host compute buffer size =    40.02 MiB\n"
    )
    rows = gpu_check.llama_buffers(log)
    assert {(r["device"], r["kind"], r["mib"]) for r in rows} == {
        ("CUDA0", "model", 3072.5), ("CPU_Mapped", "model", 1.06), ("CUDA0", "KV", 3072.0),
        ("CUDA0", "compute", 300.75), ("CUDA_Host", "compute", 40.02),
    }  # fmt: skip


def test_planner_kv_formula_for_the_synthetic_model() -> None:
    """16 slots of a 16384-token context, 24 layers of 2048 F16 K and V: 3 GiB."""
    shape = gpu_check.MODEL_SHAPES["gpu"]
    model = {"shape": shape, "n_vocab": 259,
             "weight_bytes_f16": 2 * gpu_check.model_params(shape, 259)}  # fmt: skip
    predicted = gpu_check.predicted_llama(model, 16)
    assert predicted["kv_mib"] == 2 * 24 * 16384 * 2048 * 2 / 2**20
    assert 1.5e9 < gpu_check.model_params(shape, 259) < 1.7e9


def test_a_step_past_its_limit_is_stopped_and_one_that_does_not_fit_is_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "steps").mkdir()
    budget = gpu_run.Budget(gpu_run.RESERVE_REPORT + 3, tmp_path)
    began = time.monotonic()
    budget.step("slow", 1, 1, [sys.executable, "-c", "import time; time.sleep(60)"], {})
    assert time.monotonic() - began < 30
    budget.step("big", 100, 50, [sys.executable, "-c", "pass"], {})
    rows = json.loads((tmp_path / "steps" / "status.json").read_text())
    assert [(r["step"], r["status"]) for r in rows] == [
        ("slow", "timeout"),
        ("big", "skipped-time"),
    ]
    assert budget.failed


def test_the_steps_import_from_the_projects_roots() -> None:
    """A step process gets the same import roots as pytest (pyproject.toml), so it imports
    plan_vram and measure by name, as the tests do."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pythonpath = config["tool"]["pytest"]["ini_options"]["pythonpath"]
    roots = [str(r.relative_to(ROOT)) for r in gpu_run.IMPORT_ROOTS if r != ROOT]
    assert set(roots) - {"router"} <= set(pythonpath)
