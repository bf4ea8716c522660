#!/usr/bin/env python3
"""Download Stratum's models with huggingface_hub (called by scripts/download-models.sh).

Checks sizes (and the GGUF's SHA-256) against the Hub's metadata, skips what is already there,
resumes interrupted downloads, checks free disk first, and says clearly when the Hub cannot be
reached. Gemma 4 is not gated: no token is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

VLLM_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "tokenizer*", "*.model", "*.txt"]


class DownloadError(RuntimeError):
    """A problem with a message for the user (no traceback)."""


PINNED: dict[tuple[str, str], tuple[int, str]] = {
    # The files this release was planned and checked against (scripts/vram_facts.py), as public
    # projects pin them with the Hub's size and LFS SHA-256 (revision d1c082be, 2026-07-17).
    ("google/gemma-4-26B-A4B-it-qat-q4_0-gguf", "gemma-4-26B_q4_0-it.gguf"): (
        14_439_363_584,
        "3eca3b8f6d7baf218a7dd6bba5fb59a56ee25fe2d567b6f5f589b4f697eca51d",
    ),
    ("google/gemma-4-26B-A4B-it-qat-q4_0-gguf", "gemma-4-26B-it-mmproj.gguf"): (
        1_194_828_160,
        "a359953a076b877db30c31dbbb4c6d93b4a6e017ee5db5784247e4d4c0dd4f3b",
    ),
}
"""(repo, file) -> (size, SHA-256): a Hub file that differs is not the one the memory plan was
made for; the download stops and says so (--no-verify takes the Hub's file as it is)."""


@dataclass(frozen=True)
class RemoteFile:
    repo: str
    name: str
    size: int
    sha256: str | None


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def offline_message(exc: BaseException) -> DownloadError:
    return DownloadError(
        f"cannot reach the Hugging Face Hub ({exc.__class__.__name__}: {exc}). Check the "
        "network or proxy (HTTPS_PROXY); on an offline machine, copy the files by hand: the GGUF "
        "into docker/llama-cpp/models/ and the vLLM model into the HF cache (HF_CACHE_DIR)."
    )


def repo_files(api: object, repo: str) -> dict[str, RemoteFile]:
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = api.model_info(repo, files_metadata=True)  # type: ignore[attr-defined]
    except RepositoryNotFoundError:
        raise DownloadError(
            f"the repository {repo} does not exist on the Hub; check .env"
        ) from None
    except Exception as exc:  # network errors come in many classes
        raise offline_message(exc) from None
    files = {}
    for sibling in info.siblings or []:
        lfs = getattr(sibling, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        files[sibling.rfilename] = RemoteFile(repo, sibling.rfilename, int(sibling.size or 0), sha)
    return files


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(16 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pinned(remote: RemoteFile) -> None:
    pinned = PINNED.get((remote.repo, remote.name))
    if pinned is None or (remote.size, remote.sha256 or pinned[1]) == pinned:
        return
    raise DownloadError(
        f"{remote.repo}/{remote.name} on the Hub ({remote.size} bytes, sha256 {remote.sha256}) "
        f"is not the file this release was checked against ({pinned[0]} bytes, sha256 "
        f"{pinned[1]}): the memory plan may not hold for it. Download revision d1c082be by hand "
        "(huggingface-cli download --revision d1c082be9cf3c8a514acf63b8761f4b41935842e ...), or "
        "pass --no-verify to take the Hub's file and check the plan yourself "
        "(scripts/plan_vram.py)."
    )


def need_gguf(remote: RemoteFile, target: Path) -> bool:
    return not (target.exists() and target.stat().st_size == remote.size)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gguf-repo", required=True)
    p.add_argument("--gguf-file", required=True)
    p.add_argument("--mmproj-file", default="")
    p.add_argument("--gguf-dir", type=Path, required=True)
    p.add_argument("--vllm-model", required=True)
    p.add_argument("--hf-cache", required=True)
    p.add_argument("--root", type=Path, default=Path.cwd())
    p.add_argument("--only", choices=["gguf", "vllm"])
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--no-verify", action="store_true")
    args = p.parse_args(argv)

    hf_cache = Path(args.hf_cache)
    if not hf_cache.is_absolute():
        hf_cache = args.root / hf_cache
    try:
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    except ImportError:
        print(
            "error: huggingface_hub is not installed (pip install huggingface-hub)", file=sys.stderr
        )
        return 2

    try:
        api = HfApi()
        plan: list[tuple[str, RemoteFile, Path]] = []
        if args.only in (None, "gguf"):
            files = repo_files(api, args.gguf_repo)
            for name in filter(None, [args.gguf_file, args.mmproj_file]):
                if name not in files:
                    ggufs = ", ".join(sorted(n for n in files if n.endswith(".gguf")))
                    raise DownloadError(
                        f"{args.gguf_repo} has no file {name}. Its GGUF files: {ggufs}"
                    )
                if not args.no_verify:
                    check_pinned(files[name])
                plan.append(("gguf", files[name], args.gguf_dir / name))
        vllm_files: list[RemoteFile] = []
        if args.only in (None, "vllm"):
            files = repo_files(api, args.vllm_model)
            vllm_files = [
                f for f in files.values()
                if any(Path(f.name).match(pat) for pat in VLLM_PATTERNS)
            ]  # fmt: skip
        todo_bytes = sum(f.size for _, f, target in plan if need_gguf(f, target))
        todo_bytes += sum(f.size for f in vllm_files)  # the snapshot download skips what it has
        for _, f, target in plan:
            state = "present" if not need_gguf(f, target) else "to download"
            print(f"  {f.repo}/{f.name}: {human(f.size)} ({state}) -> {target}")
        if vllm_files:
            print(
                f"  {args.vllm_model}: {len(vllm_files)} files, "
                f"{human(sum(f.size for f in vllm_files))} -> {hf_cache}"
            )
        args.gguf_dir.mkdir(parents=True, exist_ok=True)
        hf_cache.mkdir(parents=True, exist_ok=True)
        free = min(shutil.disk_usage(args.gguf_dir).free, shutil.disk_usage(hf_cache).free)
        if todo_bytes > free:
            raise DownloadError(
                f"not enough disk space: up to {human(todo_bytes)} to download, {human(free)} free"
            )
        if args.dry_run:
            print("dry run: nothing downloaded")
            return 0
        for _, f, target in plan:
            if not need_gguf(f, target):
                print(f"  skip {f.name}: already here, size matches")
                continue
            print(f"  downloading {f.name} ({human(f.size)}); interrupted downloads resume")
            hf_hub_download(f.repo, f.name, local_dir=args.gguf_dir)
            if target.stat().st_size != f.size:
                raise DownloadError(
                    f"{target} has {target.stat().st_size} bytes, the Hub says {f.size}"
                )
            if f.sha256 and not args.no_verify:
                print(f"  checking SHA-256 of {f.name}")
                if sha256_of(target) != f.sha256:
                    target.unlink()
                    raise DownloadError(f"{f.name}: SHA-256 mismatch, file deleted; run again")
        if vllm_files:
            print(f"  downloading {args.vllm_model} into the HF cache (skips what is there)")
            snapshot_download(
                args.vllm_model, cache_dir=hf_cache / "hub", allow_patterns=VLLM_PATTERNS
            )
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a network failure in the middle of a download
        print(f"error: {offline_message(exc)}", file=sys.stderr)
        return 1
    print("models ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
