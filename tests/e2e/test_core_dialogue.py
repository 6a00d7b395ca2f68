"""The elderly rules and safety flows, through the real Rasa server, actions and backend."""

import uuid

import httpx

from tests.e2e.stack import Stack


def sender() -> str:
    """A fresh web identity, so conversations don't share state."""
    return f"web:test-{uuid.uuid4().hex[:8]}"


def texts(messages: list[dict[str, object]]) -> str:
    """All the text the bot said."""
    return "".join(str(m.get("text", "")) for m in messages)


def test_greeting_is_short_chinese(stack: Stack) -> None:
    reply = stack.chat(sender(), "你好")
    assert "邻里" in texts(reply)
    assert all(m["metadata"]["speech_rate"] == "normal" for m in reply)


def test_emergency_alerts_the_backend_first_and_offers_a_person(stack: Stack) -> None:
    who = sender()
    reply = stack.chat(who, "救命啊我摔倒了起不来")
    said = texts(reply)
    assert "通知" in said
    assert reply[-1]["metadata"]["expect"]["type"] == "yes_no"
    with stack.records() as records:
        alerts = records.get("/api/v1/alerts", params={"limit": 100}).json()["items"]
    assert any(a["kind"] == "fall" for a in alerts)
    handoff = stack.chat(who, "好的")
    assert "工作人员" in texts(handoff)
    with stack.records() as records:
        assert records.get("/api/v1/handoffs").json()["total"] >= 1


def test_repeat_says_the_last_message_again(stack: Stack) -> None:
    who = sender()
    first = stack.chat(who, "你好")
    again = stack.chat(who, "你说什么，再说一遍")
    assert texts(again) == texts(first)


def test_slower_sets_the_speech_rate_for_voice_channels(stack: Stack) -> None:
    who = sender()
    stack.chat(who, "你好")
    reply = stack.chat(who, "说慢一点")
    assert all(m["metadata"]["speech_rate"] == "slow" for m in reply)


def test_malformed_requests_get_a_clear_error(stack: Stack) -> None:
    url = f"{stack.rasa_url}/webhooks/rest/webhook"
    assert httpx.post(url, content=b"not json", timeout=10).status_code == 400
    assert httpx.post(url, json={"message": "你好"}, timeout=10).status_code == 400
    too_long = httpx.post(url, json={"sender": "web:x", "message": "长" * 5000}, timeout=10)
    assert too_long.status_code == 400
    assert "1000" in too_long.json()["detail"]
