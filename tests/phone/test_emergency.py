"""An emergency on the phone: the alert is raised through the backend before the caller hears
anything else. The line runs in this process (a real SIP endpoint, a real baresip caller, the
real stack); the caller's words are Mandarin, which no model here recognises, so the text is
fed at the recogniser's boundary (the voice session's text input) — as the test name says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from channels.rasa_client import BotReply
from tests.e2e.stack import Stack
from tests.phone.conftest import Speech
from tests.phone.harness import Baresip, free_sip_port
from voice.config import SpeechSettings
from voice.phone.call import PhoneCall
from voice.phone.config import PhoneSettings
from voice.phone.dialogue import PhoneRasaClient
from voice.phone.endpoint import SipEndpoint
from voice.phone.line import PhoneLine
from voice.session import VoiceSession
from voice.tts import tts_from_settings

NUMBER = "13800001010"  # a registered resident in the demo community
SENDER = f"phone:+86{NUMBER}"


def alerts_of(stack: Stack, since_id: int) -> list[dict[str, Any]]:
    """Alerts raised after `since_id`."""
    response = httpx.get(
        f"{stack.records_url}/api/v1/alerts",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {stack.service_token}"},
        timeout=10,
    )
    response.raise_for_status()
    return [a for a in response.json()["items"] if a["id"] > since_id]


def test_emergency_mandarin_text_at_the_recogniser_boundary_alerts_before_anything_is_said(
    stack: Stack, callers: Callable[..., Baresip], speech: Speech
) -> None:
    before = max((a["id"] for a in alerts_of(stack, 0)), default=0)
    caller = callers(NUMBER)
    hello = speech.audio("您好")
    seen: dict[str, Any] = {"frames_at_reply": None, "alerts_at_reply": None, "reply": ""}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        port = free_sip_port(1)
        settings = PhoneSettings(
            sip_port=port, rasa_url=stack.rasa_url, rtp_port=free_sip_port(40)
        )
        sessions: list[tuple[PhoneCall, VoiceSession]] = []

        def observe(call: PhoneCall, what: str, detail: object) -> None:
            if what == "session" and isinstance(detail, VoiceSession):
                sessions.append((call, detail))
            if (
                what == "bot_said"
                and isinstance(detail, BotReply)
                and "马上有人联系您" in detail.text
                and seen["frames_at_reply"] is None
            ):
                # The emergency answer is about to be spoken: what has the caller heard
                # since the cry for help, and does the alert exist already?
                assert call.port is not None
                seen["frames_at_reply"] = call.port.playout.frames_sent
                seen["alerts_at_reply"] = alerts_of(stack, before)
                seen["reply"] = detail.text

        rasa = PhoneRasaClient(stack.rasa_url, keypad_only=True)
        line = PhoneLine(
            settings, rasa=rasa, asr=None, tts=tts_from_settings(SpeechSettings()),
            observer=observe,
        )
        endpoint = SipEndpoint(settings, loop=loop, on_call=line.answer, port=port)
        line.on_done = endpoint.forget
        endpoint.start()
        stop = asyncio.Event()
        poller = asyncio.create_task(endpoint.run(stop))
        try:
            await asyncio.to_thread(caller.dial, f"sip:assistant@127.0.0.1:{port}")
            await asyncio.to_thread(caller.wait_event, "CALL_ESTABLISHED")
            await asyncio.to_thread(caller.wait_heard, hello, check_s=0.4)
            call, session = sessions[0]
            # The greeting is still playing when the caller starts to speak: it stops
            # (barge-in, as when the recogniser hears speech begin) ...
            assert session.stop_playback()
            await asyncio.wait_for(call.playback_idle.wait(), 5)
            assert call.port is not None
            frames_at_cry = call.port.playout.frames_sent
            # ... and what was said arrives as text at the recogniser's boundary.
            await session.send_text("救命！我摔倒了，起不来")
            for _ in range(100):  # the line takes the answer from the session's events
                if seen["frames_at_reply"] is not None:
                    break
                await asyncio.sleep(0.05)
            assert seen["frames_at_reply"] == frames_at_cry  # silence until the answer
            answer = await asyncio.to_thread(speech.audio, seen["reply"])  # synthesised aside
            await asyncio.to_thread(caller.wait_heard, answer, check_s=2.0, timeout=30)
            await asyncio.to_thread(caller.hangup)
            await asyncio.wait_for(call.ended.wait(), 10)
        finally:
            await line.close()
            stop.set()
            await poller
            await endpoint.shutdown()
            await rasa.aclose()

    asyncio.run(scenario())
    raised = seen["alerts_at_reply"]
    assert raised, "no alert existed when the emergency answer was spoken"
    assert raised[0]["kind"] == "fall"
    assert raised[0]["channel"] == "phone"
