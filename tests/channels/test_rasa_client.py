"""The shared Rasa client: replies with their metadata, and failures that never resend."""

import httpx
import pytest

from channels.rasa_client import BotReply, RasaClient, RasaUnavailable
from tests.e2e.stack import Stack, free_port


async def test_replies_keep_text_buttons_and_expectation(stack: Stack) -> None:
    client = RasaClient(stack.rasa_url)
    try:
        await client.send("web:rasa-client-test", "/greet", input_channel="web")
        replies = await client.send("web:rasa-client-test", "我要报修", input_channel="web")
    finally:
        await client.aclose()
    assert replies
    assert all(reply.text for reply in replies)
    assert all(reply.speech_rate == "normal" for reply in replies)
    assert any(reply.expect is not None for reply in replies)


async def test_refused_connection_is_unavailable() -> None:
    client = RasaClient(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(RasaUnavailable):
            await client.send("web:x", "你好", input_channel="web")
    finally:
        await client.aclose()


async def test_read_timeout_is_not_retried() -> None:
    calls: list[httpx.Request] = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    client = RasaClient("http://rasa", transport=httpx.MockTransport(slow))
    with pytest.raises(RasaUnavailable):
        await client.send("web:x", "你好", input_channel="web")
    await client.aclose()
    assert len(calls) == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="boom"),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={}),
    ],
)
async def test_bad_answers_are_unavailable(response: httpx.Response) -> None:
    client = RasaClient("http://rasa", transport=httpx.MockTransport(lambda _r: response))
    with pytest.raises(RasaUnavailable):
        await client.send("web:x", "你好", input_channel="web")
    await client.aclose()


def test_reply_reads_metadata() -> None:
    reply = BotReply.from_json(
        {
            "text": "对吗？",
            "buttons": [{"title": "是", "payload": "/affirm"}],
            "metadata": {"expect": {"type": "yes_no"}, "speech_rate": "slow"},
        }
    )
    assert reply.expect == {"type": "yes_no"}
    assert reply.speech_rate == "slow"
    assert reply.buttons == [{"title": "是", "payload": "/affirm"}]
