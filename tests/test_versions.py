"""docs/VERSIONS.md is the one list of pinned versions: every place that pins one agrees with it.

(.env.example against compose: tests/test_compose.py; Kubernetes against compose:
tests/test_kubernetes.py. Here: each place against the list, shipped and tested versions.)
"""

from __future__ import annotations

import re

import pytest
from stackutil import ROOT

from stratum_tools.compose import load_compose

VERSIONS = ROOT / "docs" / "VERSIONS.md"


def versions() -> dict[str, tuple[str, str]]:
    """component -> (shipped, tested): the first version-like word of each table cell."""
    rows = {}
    for line in VERSIONS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.match(r"[\db]", cells[1]):
            tested = re.match(r"[\w.]+", cells[2])
            rows[cells[0]] = (cells[1], tested.group(0) if tested else "")
    return rows


def compose_image(service: str, *overrides: str) -> str:
    image = load_compose(*overrides)["services"][service]["image"]
    match = re.fullmatch(r"\$\{[A-Z_]+:-(.+)\}", image)
    return match.group(1) if match else str(image)


def env_file(path: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / path).read_text(), re.M))


def read(path: str) -> str:
    return (ROOT / path).read_text()


DIGEST = r"(?:@sha256:[0-9a-f]{64})?"
"""An image is pinned by tag and digest where the digest could be read from a public source, by
tag alone where not (start.sh's preflight then checks that the tag can be pulled)."""


def pins(image: str, ref: str) -> bool:
    return re.fullmatch(re.escape(ref) + DIGEST, image) is not None


def pins_in(path: str, ref: str) -> bool:
    """Every image of ``ref``'s repository in the file is ``ref`` (with or without a digest)."""
    repository = ref.rsplit(":", 1)[0]
    images = re.findall(rf"image: ({re.escape(repository)}:\S+)", read(path))
    return bool(images) and all(pins(image, ref) for image in images)


def test_the_list_has_every_component() -> None:
    assert set(versions()) == {
        "vLLM", "llama.cpp", "LiteLLM", "OpenWebUI", "PostgreSQL", "Prometheus", "Grafana",
        "router",
    }  # fmt: skip


def test_vllm() -> None:
    shipped, tested = versions()["vLLM"]
    ref = f"vllm/vllm-openai:v{shipped}"
    assert pins(compose_image("vllm"), ref)
    assert "@sha256:" in compose_image("vllm")
    for manifest in ("vllm.yaml", "models.yaml"):
        assert pins_in(f"deploy/kubernetes/base/{manifest}", ref)
    # start.sh's driver check names the default image and its CUDA 12.9 variant.
    start = read("scripts/start.sh")
    assert set(re.findall(r"vllm/vllm-openai:v([\d.]+)", start)) == {shipped}
    assert env_file("tests/e2e/versions.env")["VLLM_VERSION"] == tested
    assert f"vllm-{tested}.tar.gz" in env_file("tests/e2e/versions.env")["VLLM_SDIST_URL"]


def test_llama_cpp() -> None:
    shipped, tested = versions()["llama.cpp"]
    cuda, cpu = (f"ghcr.io/ggml-org/llama.cpp:server{kind}-{shipped}" for kind in ("-cuda", ""))
    assert pins(compose_image("llama-cpp"), cuda)
    assert pins(compose_image("vllm", "docker-compose.cpu.yml"), cpu)
    assert pins(compose_image("embed"), cpu) and compose_image("embed") == compose_image("rerank")
    assert pins(compose_image("embed", "docker-compose.retrieval-gpu.yml"), cuda)
    assert pins_in("deploy/kubernetes/base/llama-cpp.yaml", cuda)
    assert pins_in("deploy/kubernetes/overlays/single-gpu/llama-cpp-after-vllm.yaml", cuda)
    assert pins_in("deploy/kubernetes/base/retrieval.yaml", cpu)
    built = env_file("tests/e2e/versions.env")
    assert f"b{built['LLAMA_CPP_BUILD']}" == tested
    assert built["LLAMA_CPP_SDIST_TREE"].split("/")[0] + ".tar.gz" in built["LLAMA_CPP_SDIST_URL"]


def test_litellm() -> None:
    shipped, tested = versions()["LiteLLM"]
    for service in ("litellm", "litellm-keys"):
        assert compose_image(service) == f"ghcr.io/berriai/litellm:v{shipped}"
    for manifest in ("litellm.yaml", "open-webui.yaml"):
        assert f"ghcr.io/berriai/litellm-non_root:v{shipped}" in read(
            f"deploy/kubernetes/base/{manifest}"
        )
    assert env_file("tests/e2e/versions.env")["LITELLM_VERSION"] == tested
    assert re.search(
        rf"^litellm=={re.escape(tested)}$", read("tests/e2e/requirements-litellm.txt"), re.M
    )


def test_open_webui() -> None:
    shipped, tested = versions()["OpenWebUI"]
    assert compose_image("open-webui") == f"ghcr.io/open-webui/open-webui:v{shipped}"
    assert f"ghcr.io/open-webui/open-webui:v{shipped}" in read(
        "deploy/kubernetes/base/open-webui.yaml"
    )
    assert env_file("tests/e2e/versions.env")["OPEN_WEBUI_VERSION"] == tested
    assert re.search(
        rf"^open-webui=={re.escape(tested)}$", read("tests/e2e/requirements-open-webui.txt"), re.M
    )


def test_postgresql() -> None:
    shipped, tested = versions()["PostgreSQL"]
    assert pins(compose_image("postgres"), f"postgres:{shipped}-alpine")
    assert pins_in("deploy/kubernetes/base/postgres.yaml", f"postgres:{shipped}-alpine")
    assert shipped.split(".")[0] == tested
    assert f"postgresql-{tested} " in read("tests/compose/images/postgres.Dockerfile")


def test_prometheus() -> None:
    shipped, tested = versions()["Prometheus"]
    assert compose_image("prometheus").startswith(f"prom/prometheus:v{shipped}@")
    assert re.search(rf'"prometheus={re.escape(tested)}\.', read(".ci/run"))


def test_grafana() -> None:
    shipped, _ = versions()["Grafana"]
    assert compose_image("grafana").startswith(f"grafana/grafana:{shipped}@")


def test_router() -> None:
    shipped, tested = versions()["router"]
    assert re.search(rf'^version = "{re.escape(shipped)}"$', read("router/pyproject.toml"), re.M)
    assert compose_image("router") == f"stratum-router:{shipped}"
    assert f"stratum-router:{shipped}" in read("deploy/kubernetes/base/router.yaml")
    for overlay in ("single-gpu", "multi-replica"):
        kustomization = read(f"deploy/kubernetes/overlays/{overlay}/kustomization.yaml")
        assert f"newName: stratum-router\n    newTag: {shipped}\n" in kustomization
    # The docs' build and load commands name the same tag.
    tags = re.findall(r"stratum-router:([\w.]+)", read("docs/DEPLOY-KUBERNETES.md"))
    assert set(tags) == {shipped}
    assert tested == shipped


@pytest.mark.parametrize("name", ["README.md", "docs/HANDOVER.md", "docs/DEPLOY-KUBERNETES.md"])
def test_docs_name_no_older_image_than_the_list(name: str) -> None:
    """A doc that names an image version names the pinned one."""
    text = read(name)
    for component, pattern in [
        ("PostgreSQL", r"postgres:(\d+\.\d+)"),
        ("Prometheus", r"prom/prometheus:v([\d.]+)"),
        ("Grafana", r"grafana/grafana:([\d.]+)"),
    ]:
        for found in re.findall(pattern, text):
            assert found == versions()[component][0], f"{name} names {component} {found}"
