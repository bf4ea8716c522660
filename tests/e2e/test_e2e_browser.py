"""The user's path in a real browser: OpenWebUI (from PyPI, the compose image's version) behind
LiteLLM and the router, driven headless in Debian's Chromium by Playwright, with OpenWebUI's
defaults, background tasks included.

OpenWebUI lists gemma4-fast, gemma4-smart and gemma4-tasks; picking each chat model and sending a
message shows a reply that reaches the page in pieces as it streams, and the background requests
OpenWebUI sends beside it (chat title, tags, follow-up suggestions) are all answered by tier_low.
An easy question answered by tier_low and then "regenerated" is answered by tier_high.
A document attached in the chat is embedded and reranked by the stack's own engines, and its
passage reaches the tier; OpenWebUI asks the Hugging Face Hub for nothing.
Screenshots land in artifacts/e2e/screenshots.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stack
from e2eutil import HARD_PROMPT, HubRecorder, metric_sum, scrape
from playwright.sync_api import Locator, Page, WebSocket, sync_playwright

from adaptive_router.testing.processes import wait_until
from stratum_tools.compose import load_compose

FIGURES: dict[str, dict[str, object]] = {}

# Chromium's own background traffic fails on a closed network, slowly: switch it off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class SocketDeltas:
    """The pieces of each reply as they reach the page over OpenWebUI's socket.

    OpenWebUI 0.12.4 sends the browser one socket.io frame per streamed delta
    (`CHAT_RESPONSE_STREAM_DELTA_CHUNK_SIZE`, default 1: open_webui/env.py and
    utils/middleware.py's `queue_pending_delta_data`). Streaming is asserted here, where the
    reply enters the page, and not by watching the screen: the tests' tiny model writes a whole
    reply in under 0.1 s, and whether Chromium paints it in one frame or several depends on how
    busy the host is.
    """

    def __init__(self, page: Page) -> None:
        self.frames: list[str | bytes] = []
        # Sockets opened from now on (each page.goto opens OpenWebUI's anew).
        page.on("websocket", self._watch)

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framereceived", self._keep)

    def _keep(self, frame: str | bytes) -> None:
        self.frames.append(frame)

    def of(self, message_id: str) -> list[str]:
        """The text deltas the page received for one assistant message, in order."""
        deltas: list[str] = []
        for frame in self.frames:
            # socket.io event packets: "42" + JSON [name, payload] (Engine.IO message, Socket.IO
            # EVENT, default namespace).
            if not isinstance(frame, str) or not frame.startswith("42["):
                continue
            name, payload = json.loads(frame[2:])[:2]
            if name != "events" or payload.get("message_id") != message_id:
                continue
            event = payload.get("data") or {}
            data = event.get("data")
            if (
                event.get("type") in {"response:completion", "chat:completion"}
                and isinstance(data, dict)
                and str(data.get("type", "")).endswith(".delta")
                and data.get("delta")
            ):
                deltas.append(data["delta"])
        return deltas


def message_id(message: Locator) -> str:
    """OpenWebUI's id of a message, from its element's id ("message-<id>")."""
    return (message.get_attribute("id") or "").removeprefix("message-")


@pytest.fixture(scope="module")
def page(open_webui: stack.Endpoint, artifacts: Path) -> Iterator[Page]:
    chromium = stack.system_tool("chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            yield page
        finally:
            browser.close()


def open_new_chat(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.locator("#chat-input").wait_for(timeout=60_000)
    whats_new = page.get_by_role("button", name="Okay, Let's Go!")
    if whats_new.count():  # first visit: OpenWebUI shows its release notes
        whats_new.click()


def test_openwebui_lists_both_models(
    page: Page, open_webui: stack.Endpoint, artifacts: Path
) -> None:
    open_new_chat(page, open_webui.url)
    page.locator("#model-selector-model-button").click()
    options = page.locator("button[role=option][data-value]")
    options.first.wait_for()
    models = {options.nth(i).get_attribute("data-value") for i in range(options.count())}
    shots = artifacts / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "openwebui-model-list.png"))
    assert models == {"gemma4-fast", "gemma4-smart", "gemma4-tasks"}
    page.keyboard.press("Escape")


@pytest.fixture(scope="module")
def socket(page: Page) -> SocketDeltas:
    return SocketDeltas(page)


@pytest.mark.parametrize(("model", "tier"), [("gemma4-fast", None), ("gemma4-smart", "tier_high")])
def test_a_message_gets_a_streamed_reply_and_its_background_tasks_stay_on_tier_low(
    page: Page,
    socket: SocketDeltas,
    open_webui: stack.Endpoint,
    router: stack.Endpoint,
    artifacts: Path,
    model: str,
    tier: str | None,
) -> None:
    before = scrape(router.url)
    open_new_chat(page, open_webui.url)
    page.locator("#model-selector-model-button").click()
    page.locator(f"button[role=option][data-value='{model}']").click()
    selected = page.locator("#model-selector-model-button").inner_text()
    assert selected.strip() == model
    page.locator("#chat-input").click()
    page.keyboard.type(HARD_PROMPT)  # a hard question: its title request embeds it
    page.keyboard.press("Enter")

    message = page.locator("div[id^='message-']:has(.chat-assistant)").last
    reply = message.locator("#response-content-container")
    reply.wait_for(timeout=60_000)
    # Done when OpenWebUI shows this reply's action buttons (copy, regenerate, ...).
    message.locator("button[aria-label='Copy']").wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "screenshots" / f"openwebui-{model}.png"))
    assert reply.inner_text().strip(), "a reply is on screen"
    pieces = socket.of(message_id(message))
    assert len(pieces) >= 2, f"the reply reached the page in one piece: {pieces!r:.200}"

    def grown(**labels: str) -> float:
        now = scrape(router.url)
        return metric_sum(now, "router_requests_total", **labels) - metric_sum(
            before, "router_requests_total", **labels
        )

    # The chat went through LiteLLM to the router, once, under the model the user picked.
    chat_labels = {"model": model} | ({"tier": tier} if tier else {})
    assert grown(**chat_labels) == 1
    # OpenWebUI's background tasks for this chat (title, tags, follow-ups: its defaults) arrive
    # after the reply, as gemma4-tasks (router model tier_low), all answered by tier_low.
    wait_until(lambda: grown(model="tier_low") >= 3, 60, "OpenWebUI's background tasks")
    tasks = grown(model="tier_low")
    assert grown(model="tier_low", tier="tier_low") == tasks
    # Whatever reached the 26B in this test was the user's own message.
    assert grown(tier="tier_high") == grown(model=model, tier="tier_high")
    FIGURES.setdefault("openwebui_background_requests", {})[model] = {
        "chat_requests": grown(**chat_labels),
        "background_requests": tasks,
        "background_on_tier_high": grown(model="tier_low", tier="tier_high"),
    }
    (artifacts / "openwebui-tasks.json").write_text(json.dumps(FIGURES, indent=2))


def test_regenerate_gets_the_answer_from_the_26b(
    page: Page, open_webui: stack.Endpoint, router: stack.Endpoint, artifacts: Path
) -> None:
    """OpenWebUI's "regenerate" sends the conversation again: the same person's same messages,
    after the answer. The router (service/regenerate.py, rules.regenerate_rule) sends it to
    tier_high with the reason regenerate; the first answer came from tier_low."""
    before = scrape(router.url)

    def grown(**labels: str) -> float:
        now = scrape(router.url)
        return metric_sum(now, "router_requests_total", **labels) - metric_sum(
            before, "router_requests_total", **labels
        )

    open_new_chat(page, open_webui.url)
    page.locator("#model-selector-model-button").click()
    page.locator("button[role=option][data-value='gemma4-fast']").click()
    page.locator("#chat-input").click()
    page.keyboard.type("What is the capital of Portugal?")
    page.keyboard.press("Enter")
    message = page.locator("div[id^='message-']:has(.chat-assistant)").last
    message.locator("button[aria-label='Copy']").wait_for(timeout=60_000)
    assert grown(model="gemma4-fast", tier="tier_low", reason="complexity") == 1
    # The person reads the answer before asking for another: the router counts a repeat that
    # comes at least a second after the answer ended (a script's immediate copy does not count).
    page.wait_for_timeout(1500)
    message.hover()
    message.locator("button[aria-label='Regenerate']").click()
    page.get_by_text("Try Again", exact=True).click()  # the menu's plain regenerate
    wait_until(lambda: grown(model="gemma4-fast", tier="tier_high", reason="regenerate") == 1,
               60, "the regenerated answer from tier_high")  # fmt: skip
    page.locator("div[id^='message-']:has(.chat-assistant)").last.locator(
        "button[aria-label='Copy']").wait_for(timeout=60_000)  # fmt: skip
    page.screenshot(path=str(artifacts / "screenshots" / "openwebui-regenerate.png"))
    assert grown(model="gemma4-fast") == 2, "the first answer and the regenerated one"


# A passage only the document knows: the tiny model cannot answer, but the prompt that reaches
# the tier must carry it.
DOCUMENT = (
    "Stratum field notes.\n\n"
    "The lighthouse keeper on the island of Varnholm has a grey cat named Quillonette, who "
    "sleeps on the third step of the spiral stair every afternoon.\n"
)
QUESTION = "What is the name of the cat of the lighthouse keeper on Varnholm?"  # no ' (OpenWebUI
# types a typographic apostrophe)


def openwebui_file_status(page: Page, url: str, filename: str) -> str | None:
    """The processing status OpenWebUI's API gives the uploaded file (with the page's token)."""
    token = page.evaluate("localStorage.token")
    headers = {"Authorization": f"Bearer {token}"}
    files = httpx.get(url + "/api/v1/files/", params={"content": "false"}, headers=headers,
                      timeout=10).json()["items"]  # fmt: skip
    ours = [f for f in files if f["filename"] == filename]
    if not ours:
        return None
    status = httpx.get(f"{url}/api/v1/files/{ours[0]['id']}/process/status", headers=headers,
                       timeout=10).json()  # fmt: skip
    return str(status.get("status"))


def test_a_document_is_embedded_reranked_and_its_passage_reaches_the_tier(
    page: Page,
    open_webui: stack.Endpoint,
    router: stack.Endpoint,
    engines: tuple[stack.Endpoint, stack.Endpoint],
    hub: HubRecorder,
    embed_received: tuple[str, list[dict[str, Any]]],
    artifacts: Path,
    tmp_path: Path,
) -> None:
    """The user's path: attach a short document in the chat, ask what only it answers. OpenWebUI
    embeds it through LiteLLM and the router (compose's RAG settings), with EmbeddingGemma's
    document and query prompts, embeds the question, reranks the candidates on the reranking
    engine, and puts the passage into the prompt the 26B gets. Nothing is fetched from the
    Hugging Face Hub."""
    doc = tmp_path / "varnholm-notes.txt"
    doc.write_text(DOCUMENT)
    before = scrape(router.url)
    received = embed_received[1]
    already = len(received)
    open_new_chat(page, open_webui.url)
    page.locator("#model-selector-model-button").click()
    page.locator("button[role=option][data-value='gemma4-smart']").click()
    # The message input's own file input (hidden; the "+" menu's "Upload Files" clicks it).
    upload = page.locator(
        'input[type="file"][multiple]:not([id]):not([accept]):not([webkitdirectory])'
    )
    upload.first.set_input_files(str(doc))
    wait_until(lambda: openwebui_file_status(page, open_webui.url, doc.name) == "completed",
               120, "OpenWebUI to process the document")  # fmt: skip
    page.locator("#chat-input").click()
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    message = page.locator("div[id^='message-']:has(.chat-assistant)").last
    message.locator("button[aria-label='Copy']").wait_for(timeout=120_000)
    page.screenshot(path=str(artifacts / "screenshots" / "openwebui-document-chat.png"))

    def grown(name: str, **labels: str) -> float:
        return metric_sum(scrape(router.url), name, **labels) - metric_sum(before, name, **labels)

    # The document's chunk and the question were embedded, the candidates reranked.
    assert grown("router_requests_total", tier="embed", status="200") >= 2
    assert grown("router_requests_total", tier="rerank", status="200") >= 1
    assert grown("router_retrieval_inputs_total", tier="rerank") >= 1
    # The embedding engine got the texts with EmbeddingGemma's prompts in front (compose's
    # RAG_EMBEDDING_CONTENT_PREFIX / RAG_EMBEDDING_QUERY_PREFIX, prepended by OpenWebUI).
    env = load_compose()["services"]["open-webui"]["environment"]
    content, query = env["RAG_EMBEDDING_CONTENT_PREFIX"], env["RAG_EMBEDDING_QUERY_PREFIX"]
    assert (content, query) == ("title: none | text: ", "task: search result | query: ")
    inputs = [text for body in received[already:] for text in body["input"]]
    assert inputs and all(t.startswith((content, query)) for t in inputs), inputs
    assert any(t.startswith(content) and "Quillonette" in t for t in inputs), inputs
    assert any(t.startswith(query) for t in inputs), inputs
    # The prompt the 26B got (llama-server's /slots, LLAMA_SERVER_SLOTS_DEBUG) has the passage.
    # (detokenized: the tiny vocabulary's SentencePiece space is U+2581)
    slots = httpx.get(engines[1].url + "/slots", timeout=10).json()
    texts = [(s.get("prompt") or "").replace("\u2581", " ") for s in slots]
    prompts = [text for text in texts if QUESTION in text]
    assert prompts, "the question reached tier_high"
    assert "Quillonette" in prompts[-1]
    # OpenWebUI loaded no model of its own: nothing asked the Hub.
    assert hub.requests == []
    FIGURES["openwebui_document_chat"] = {
        "embedding_requests": grown("router_requests_total", tier="embed"),
        "rerank_requests": grown("router_requests_total", tier="rerank"),
        "documents_reranked": grown("router_retrieval_inputs_total", tier="rerank"),
    }
    (artifacts / "openwebui-tasks.json").write_text(json.dumps(FIGURES, indent=2))
