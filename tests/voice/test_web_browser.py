"""The voice page in a real headless Chromium, with a WAV file of Korean speech as the microphone.

The gateway runs as its own process (`python -m voice web`) against the real stack and the
Korean Vosk model. The test holds the talk button, sees the transcript and a spoken answer
(the page counts the audio chunks it played through Web Audio), taps 一键呼叫 and finds the alert
in the records backend, and audits the page with axe-core.
"""

import os
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.e2e.stack import PYTHON, ROOT, Stack, free_port, process
from tests.voice.test_session import KOREAN_MODEL, alert_count, korean_speech, silence

CHROMIUM = "/usr/bin/chromium"
HOLD_MS = 4500  # long enough to take in a whole sentence of the looping microphone file
WAIT_MS = 60_000  # a guard against hanging, not a timing assertion


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Korean speech with short pauses, looped by Chromium as the microphone."""
    path = tmp_path_factory.mktemp("mic") / "korean.wav"
    speech = korean_speech(pause_s=0.0)
    pcm = (speech + silence(0.5)) * 3
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)
    return path


@contextmanager
def gateway(stack: Stack, logs: Path, model: Path) -> Iterator[str]:
    """`python -m voice web` as a real process against the stack; its URL."""
    port = free_port()
    env = {
        **os.environ,
        "VOICE_PORT": str(port),
        "VOICE_RASA_URL": stack.rasa_url,
        "VOICE_RECORDS_URL": stack.records_url,
        "SERVICE_TOKEN": stack.service_token,
        "VOSK_MODEL_PATH": str(model),
        "PYTHONUNBUFFERED": "1",
    }
    url = f"http://127.0.0.1:{port}"
    with process(
        "voice-web", [PYTHON, "-m", "voice", "web"], env=env, health_url=f"{url}/health",
        logs=logs, cwd=ROOT,
    ):
        yield url


@pytest.fixture(scope="module")
def gateway_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway on the Korean model."""
    with gateway(stack, tmp_path_factory.mktemp("gateway"), KOREAN_MODEL) as url:
        assert httpx.get(f"{url}/health").json()["asr"] is True
        yield url


@pytest.fixture(scope="module")
def browser(
    microphone_wav: Path, gateway_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    """Debian's Chromium with a fake microphone playing the WAV file, a fresh profile, and
    a phone-sized touch screen."""
    profile = tmp_path_factory.mktemp("profile")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=False,  # --headless=new below: Debian's full Chromium, not a shell build
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_wav}",
            ],
            viewport={"width": 390, "height": 844},
            has_touch=True,
            locale="zh-CN",
        )
        launched.grant_permissions(["microphone"], origin=gateway_url)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: BrowserContext, gateway_url: str) -> Iterator[Page]:
    """The voice page, connected."""
    opened = browser.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.goto(gateway_url)
    opened.wait_for_function("window.linliStats && window.linliStats.connected")
    yield opened
    opened.close()


def stats(page: Page) -> dict[str, int]:
    """The page's counters (heard, bot messages, audio chunks played ...)."""
    values: dict[str, int] = page.evaluate("({...window.linliStats})")
    return values



def test_holding_the_button_with_korean_speech_shows_the_transcript_and_speaks(
    page: Page,
) -> None:
    page.wait_for_function("window.linliStats.botMessages >= 1")  # the greeting, as text
    before = stats(page)
    talk = page.get_by_role("button", name="按住说话")
    box = talk.bounding_box()
    assert box is not None
    assert box["height"] >= 60
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    expect(talk).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(HOLD_MS)
    page.mouse.up()
    page.wait_for_function("window.linliStats.heard >= 1")
    heard = page.locator("#log li.heard").last
    assert heard.inner_text().removeprefix("我：").strip()
    page.wait_for_function(
        f"window.linliStats.botMessages > {before['botMessages']}"
        f" && window.linliStats.audioChunksPlayed > {before['audioChunksPlayed']}"
    )
    page.wait_for_function("window.linliStats.audioChunksEnded > 0")  # really played
    after = stats(page)
    assert after["framesSent"] > 10
    assert after["errors"] == 0


def test_one_tap_emergency_raises_an_alert(page: Page, stack: Stack) -> None:
    before = alert_count(stack)
    page.get_by_role("button", name="一键呼叫").tap()
    expect(page.locator("#log li.bot").filter(has_text="通知")).to_have_count(1)
    assert alert_count(stack) == before + 1


def test_the_page_passes_an_axe_audit(page: Page) -> None:
    page.wait_for_function("window.linliStats.botMessages >= 1")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    font_px = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert font_px >= 24  # 18 pt


def test_linking_this_device_with_the_staff_code(page: Page, stack: Stack) -> None:
    with stack.records() as records:
        resident = records.get("/api/v1/residents", params={"limit": 1}).json()["items"][0]
        code = records.post(f"/api/v1/residents/{resident['id']}/verification-codes").json()
    page.get_by_role("button", name="绑定").tap()
    page.get_by_label("验证码").fill(code["code"])
    page.get_by_role("button", name="确定").tap()
    expect(page.locator("#log li.bot").filter(has_text="成功")).to_have_count(1)
    device = page.evaluate("localStorage.getItem('linli-device')")
    with stack.records() as records:
        identity = records.post("/api/v1/identities/resolve", json={"identity": f"web:{device}"})
    assert identity.json()["verified"] is True


def test_without_a_speech_model_the_page_says_so_and_still_calls_for_help(
    browser: BrowserContext, stack: Stack, tmp_path: Path
) -> None:
    with gateway(stack, tmp_path, tmp_path / "no-model") as url:
        assert httpx.get(f"{url}/health").json()["asr"] is False
        page = browser.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url)
        expect(page.get_by_role("status")).to_contain_text("语音识别暂不可用")
        expect(page.locator("#talk")).to_have_attribute("aria-disabled", "true")
        before = alert_count(stack)
        page.get_by_role("button", name="一键呼叫").tap()
        expect(page.locator("#log li.bot").filter(has_text="通知")).to_have_count(1)
        assert alert_count(stack) == before + 1
        page.close()
