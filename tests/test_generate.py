"""scripts/generate.py, the one generator of every generated file: the checkout is up to date, a
stale or missing file is named with the command that rewrites it, a run rewrites it byte for byte,
and the parts that need only the standard library run without any package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import generate
import pytest
import yaml
from stackutil import ROOT

SCRIPT = ROOT / "scripts" / "generate.py"

# What the generators read and write, copied for the tests that change files (never the checkout).
SOURCES = [".env.example", "docs", "docker", "grafana/dashboards", "deploy/kubernetes",
           "scripts/team_keys.py", "scripts/download_models.py"]  # fmt: skip


def test_every_generated_file_is_up_to_date() -> None:
    """The check the pre-commit hook and CI run, as they run it."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--check"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "(planner, dashboards, kubernetes, router-settings)" in out.stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in SOURCES:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return tmp_path


def _files(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in SOURCES:
        paths = [root / name] if (root / name).is_file() else (root / name).rglob("*")
        out |= {str(p.relative_to(root)): p.read_bytes() for p in paths if p.is_file()}
    return out


def test_stale_and_missing_files_are_named_and_a_run_rewrites_them_byte_for_byte(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = _files(checkout)
    env_example = checkout / ".env.example"
    env_example.write_text(
        env_example.read_text().replace("LLAMA_N_CPU_MOE=27", "LLAMA_N_CPU_MOE=9")
    )
    api = checkout / "docs/API.md"
    api.write_text(api.read_text().replace("| `service.log_level`", "| `service.level`"))
    (checkout / "grafana/dashboards/stratum-router.json").unlink()
    with (checkout / "deploy/kubernetes/base/stratum.env").open("a") as f:
        f.write("LLAMA_N_CPU_MOE=9\n")

    assert generate.main(["--check"], root=checkout) == 1
    err = capsys.readouterr().err
    stale = {line.split()[1] for line in err.splitlines() if line.startswith("stale: ")}
    assert stale == {".env.example", "docs/API.md", "grafana/dashboards/stratum-router.json",
                     "deploy/kubernetes/base/stratum.env"}  # fmt: skip
    assert err.splitlines()[-1] == "run: .venv/bin/python scripts/generate.py"
    assert not (
        checkout / "grafana/dashboards/stratum-router.json"
    ).exists()  # --check wrote nothing

    assert generate.main([], root=checkout) == 0
    assert capsys.readouterr().out.count("wrote ") == 4
    assert _files(checkout) == original
    assert generate.main(["--check"], root=checkout) == 0


def test_the_fix_command_keeps_the_chosen_generators(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (checkout / "deploy/kubernetes/base/files/team_keys.py").write_text("# edited by hand\n")
    assert generate.main(["--check", "--only", "kubernetes,planner"], root=checkout) == 1
    err = capsys.readouterr().err
    assert "stale: deploy/kubernetes/base/files/team_keys.py (generator: kubernetes)" in err
    assert err.splitlines()[-1] == "run: python3 scripts/generate.py --only kubernetes,planner"


def test_a_missing_marker_is_a_message_not_a_traceback(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = checkout / "docs/VRAM-REALITY-CHECK.md"
    doc.write_text(doc.read_text().replace("<!-- end plan_vram.py: calibration -->", ""))
    assert generate.main(["--check"], root=checkout) == 2
    err = capsys.readouterr().err
    assert "docs/VRAM-REALITY-CHECK.md has no generated block" in err


def test_the_standard_library_parts_run_without_any_package() -> None:
    """python3 with no site-packages (-S), no PYTHONPATH (-E), no user site (-s): every generator
    but the router's settings table runs; asked for all, the command says which one it could not
    run and how to, and exits 2 (not checked is not passed)."""
    bare = [sys.executable, "-S", "-E", "-s", str(SCRIPT), "--check"]
    some = subprocess.run([*bare, "--only", "planner,dashboards,kubernetes"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert some.returncode == 0, some.stderr
    everything = subprocess.run(bare, capture_output=True, text=True, timeout=120)
    assert everything.returncode == 2
    assert "not checked: docs/API.md's settings table (router-settings)" in everything.stderr
    assert "run .venv/bin/python scripts/generate.py --check" in everything.stderr
    assert "--only planner,dashboards,kubernetes" in everything.stderr


def test_unknown_generators_are_refused_by_name() -> None:
    assert generate.main(["--only", "planner,charts"]) == 2


def test_the_pre_commit_hook_runs_the_one_check() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    entries = [h["entry"] for h in hooks.values() if "generate.py" in h["entry"]]
    assert len(entries) == 1 and "scripts/generate.py --check" in entries[0]
    assert not any("sync_kubernetes" in h["entry"] or "build_dashboards" in h["entry"]
                   for h in hooks.values())  # fmt: skip


@pytest.mark.parametrize(
    ("command", "replacement"),
    [
        ("scripts/sync_kubernetes.py", "python3 scripts/generate.py --only kubernetes --check"),
        ("grafana/build_dashboards.py", "python3 scripts/generate.py --check"),
    ],
)
def test_the_0_2_commands_still_check_with_a_one_line_note(command: str, replacement: str) -> None:
    """Kept for one release (CHANGELOG.md, Deprecated), run as 0.2 ran them: as files."""
    out = subprocess.run([sys.executable, str(ROOT / command), "--check"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    note = out.stderr.splitlines()
    assert len(note) == 1 and "deprecated" in note[0] and note[0].endswith(replacement)
