"""Telegram through the real Rasa, action server and records, with a fake Bot API server.

The channels app runs as a real HTTP server; updates are POSTed to its webhook the way
Telegram does, and what the bot sends back is read from the fake Bot API server.
"""

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from channels.app import create_app
from channels.audio import decode_to_pcm
from channels.rasa_client import RASA_DOWN_TEXT, RasaClient
from channels.telegram import (
    BAD_CODE_TEXT,
    ERROR_TEXT,
    NOT_HEARD_TEXT,
    PHOTO_NEEDS_WORDS_TEXT,
    UNSUPPORTED_TEXT,
    TelegramBridge,
    build_application,
)
from channels.telegram_webhook import WEBHOOK_PATH, run_polling
from channels.voice_notes import VoiceNotes
from tests.channels.conftest import new_user_id, settings, user_messages
from tests.channels.fake_telegram import (
    TOKEN,
    FakeTelegram,
    callback_update,
    fake_telegram,
    message_update,
    post_update,
    text_update,
    voice_update,
)
from tests.channels.servers import serving
from tests.e2e.stack import Stack, free_port

SECRET = "webhook-secret_0123456789"
PUBLIC_URL = "https://linli.example.org/telegram/webhook"


@dataclass
class Webhook:
    """The running channels app and the fake Telegram it talks to."""

    url: str
    fake: FakeTelegram
    stack: Stack

    def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        """Deliver an update as Telegram does."""
        return post_update(self.url, update, secret)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    """The fake Bot API server."""
    with fake_telegram() as server:
        yield server


def telegram_settings(stack: Stack, fake: FakeTelegram, **overrides: Any) -> Any:
    """Channel settings for the stack and the fake Bot API."""
    values: dict[str, Any] = {
        "rasa_url": stack.rasa_url,
        "records_url": stack.records_url,
        "service_token": stack.service_token,
        "telegram_token": TOKEN,
        "telegram_webhook_secret": SECRET,
        "telegram_webhook_url": PUBLIC_URL,
        "telegram_base_url": fake.base_url,
        "telegram_base_file_url": fake.base_file_url,
        "telegram_max_voice_s": 60,
        "max_body_bytes": 64 * 1024,
        **overrides,
    }
    return settings(**values)


@pytest.fixture(scope="module")
def hook(stack: Stack, fake: FakeTelegram, voice_notes: VoiceNotes) -> Iterator[Webhook]:
    """The channels app in webhook mode."""
    app = create_app(telegram_settings(stack, fake), voice=voice_notes)
    with serving(app) as base:
        yield Webhook(base + WEBHOOK_PATH, fake, stack)


def test_webhook_is_registered_with_its_secret(hook: Webhook) -> None:
    assert hook.fake.webhook["url"] == PUBLIC_URL
    assert hook.fake.webhook["secret_token"] == SECRET
    assert hook.fake.webhook["allowed_updates"] == ["message", "callback_query"]


def test_text_goes_to_rasa_and_the_answer_comes_back(hook: Webhook) -> None:
    uid = new_user_id()
    assert hook.post(text_update(uid, "你好")).status_code == 200
    assert user_messages(hook.stack, f"telegram:{uid}") == ["你好"]
    assert any("邻里" in text for text in hook.fake.texts(uid))
    assert hook.fake.sent("sendChatAction", uid)


def test_buttons_become_an_inline_keyboard_and_a_tap_sends_the_payload(hook: Webhook) -> None:
    uid = new_user_id()
    hook.post(text_update(uid, "我要报修"))
    question = hook.fake.message_with_buttons(uid)
    water = '/report_repair{"repair_category":"water"}'
    buttons = [(b["text"], b["callback_data"]) for row in
               question["reply_markup"]["inline_keyboard"] for b in row]
    assert ("水", water) in buttons

    assert hook.post(callback_update(uid, water, question)).status_code == 200
    assert user_messages(hook.stack, f"telegram:{uid}")[-1] == water
    assert hook.fake.sent("answerCallbackQuery")
    edited = hook.fake.sent("editMessageText", uid)[-1]
    assert edited.params["text"].endswith("👉 水")
    assert "reply_markup" not in edited.params  # the buttons are gone: one tap only
    assert "在哪里" in hook.fake.texts(uid)[-1]


def test_start_with_a_staff_code_links_the_account(hook: Webhook) -> None:
    uid = new_user_id()
    with hook.stack.records() as records:
        resident = records.get("/api/v1/residents", params={"limit": 1, "offset": 3}).json()
        person = resident["items"][0]
        code = records.post(f"/api/v1/residents/{person['id']}/verification-codes").json()
        hook.post(text_update(uid, f"/start {code['code']}"))
        found = records.post("/api/v1/identities/resolve",
                             json={"identity": f"telegram:{uid}"}).json()
    assert found["verified"] is True
    assert found["resident"]["id"] == person["id"]
    texts = hook.fake.texts(uid)
    assert texts[0] == f"绑定成功！{person['name']}，您好。以后在这里就能直接办事了。"
    assert len(texts) >= 2  # then the bot greets
    assert user_messages(hook.stack, f"telegram:{uid}")[-1] == "/greet"


def test_start_with_a_wrong_code_says_why(hook: Webhook) -> None:
    uid = new_user_id()
    hook.post(text_update(uid, "/start 000000"))
    hook.post(text_update(uid, "/start abc"))
    texts = hook.fake.texts(uid)
    assert texts[0] == "验证码不对或已过期，请核对后再说一遍。"  # the records backend's words
    assert texts[1] == BAD_CODE_TEXT


def test_plain_start_lets_the_bot_speak_first(hook: Webhook) -> None:
    uid = new_user_id()
    hook.post(text_update(uid, "/start"))
    assert user_messages(hook.stack, f"telegram:{uid}") == ["/greet"]
    assert hook.fake.texts(uid)


def test_forged_or_missing_secret_is_rejected(
    hook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    uid = new_user_id()
    with caplog.at_level(logging.WARNING, logger="channels"):
        assert hook.post(text_update(uid, "你好"), secret="wrong-secret").status_code == 403
        assert hook.post(text_update(uid, "你好"), secret=None).status_code == 403
    assert hook.fake.texts(uid) == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("wrong secret token" in m and "rejected" in m for m in messages)
    assert any("missing secret token" in m for m in messages)


def test_malformed_and_oversized_requests_are_rejected(
    hook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with caplog.at_level(logging.WARNING, logger="channels"):
        not_json = httpx.post(hook.url, content=b"{nope", headers=headers)
        no_id = httpx.post(hook.url, json=[1, 2], headers=headers)
        bad_fields = httpx.post(hook.url, json={"update_id": 9, "message": "x"}, headers=headers)
        huge = httpx.post(hook.url, json={"update_id": 10, "pad": "x" * 70_000}, headers=headers)
    # A well-signed update the library cannot read came from Telegram: dropped with 200, or
    # Telegram would deliver it again and again.
    assert [r.status_code for r in (not_json, no_id, bad_fields, huge)] == [400, 400, 200, 413]
    assert all(r.headers["content-type"] == "application/problem+json"
               for r in (not_json, no_id, huge))
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "not JSON" in logged
    assert "without an update_id" in logged
    assert "malformed update 9" in logged
    assert "dropped" in logged
    assert "over 65536 bytes" in logged
    # Still serving.
    uid = new_user_id()
    hook.post(text_update(uid, "你好"))
    assert hook.fake.texts(uid)


def test_unknown_updates_and_contents_are_logged_not_answered(
    hook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    uid = new_user_id()
    edited = message_update(uid, text="改一下", edit_date=1)
    edited["edited_message"] = edited.pop("message")
    future = {"update_id": 990_001, "future_kind": {"id": 1}}  # a kind this library predates
    group = message_update(uid, text="大家好")
    group["message"]["chat"] = {"id": -100, "type": "group", "title": "楼栋群"}
    sticker = message_update(uid, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                           "width": 1, "height": 1, "is_animated": False,
                                           "is_video": False})
    with caplog.at_level(logging.WARNING, logger="channels"):
        for update in (edited, future, group, sticker):
            assert hook.post(update).status_code == 200
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "unsupported kind edited_message" in logged
    assert "unsupported kind future_kind" in logged
    assert "unsupported message content" in logged
    assert hook.fake.texts(uid) == [UNSUPPORTED_TEXT]  # only the sticker got an answer
    assert hook.fake.texts(-100) == []
    assert user_messages(hook.stack, f"telegram:{uid}") == []


def test_long_text_is_refused_before_rasa(hook: Webhook) -> None:
    uid = new_user_id()
    hook.post(text_update(uid, "修" * 1001))
    assert hook.fake.texts(uid) == ["消息太长了，请分几次说，每次不超过1000个字。"]
    assert user_messages(hook.stack, f"telegram:{uid}") == []


def test_a_redelivered_update_is_handled_once(hook: Webhook) -> None:
    uid = new_user_id()
    update = text_update(uid, "你好")
    hook.post(update)
    replies = len(hook.fake.texts(uid))
    assert hook.post(update).status_code == 200
    assert len(hook.fake.texts(uid)) == replies
    assert user_messages(hook.stack, f"telegram:{uid}") == ["你好"]


def test_voice_note_is_transcribed_and_answered_with_text_and_voice(
    hook: Webhook, korean_ogg: bytes
) -> None:
    uid = new_user_id()
    hook.fake.add_file("voice1", korean_ogg)
    update = voice_update(uid, "voice1", duration=3, size=len(korean_ogg))
    assert hook.post(update).status_code == 200

    said = user_messages(hook.stack, f"telegram:{uid}")
    assert len(said) == 1
    transcript = said[0]
    assert any("\uac00" <= ch <= "\ud7a3" for ch in transcript)  # Hangul, from real Vosk
    texts = hook.fake.texts(uid)
    assert texts[0] == f"🎤 我听到的是：{transcript}"
    assert len(texts) >= 2  # the bot's answer
    voice = hook.fake.sent("sendVoice", uid)
    assert len(voice) == 1
    reply_audio = voice[0].files["voice"]
    assert reply_audio.startswith(b"OggS")
    assert len(decode_to_pcm(reply_audio)) > 16000  # more than half a second of speech


def test_voice_note_too_long_or_undecodable(hook: Webhook) -> None:
    uid = new_user_id()
    hook.fake.add_file("long1", b"\x00" * 100)
    hook.post(voice_update(uid, "long1", duration=600, size=100))
    hook.fake.add_file("junk1", b"not audio at all" * 10)
    hook.post(voice_update(uid, "junk1", duration=2, size=160))
    assert hook.fake.texts(uid) == ["语音太长了，请说短一点（60秒以内）。", NOT_HEARD_TEXT]
    assert [c.params["file_id"] for c in hook.fake.sent("getFile")
            if c.params["file_id"] in ("long1", "junk1")] == ["junk1"]
    assert user_messages(hook.stack, f"telegram:{uid}") == []


def test_a_failing_handler_tells_the_user(hook: Webhook, caplog: pytest.LogCaptureFixture) -> None:
    uid = new_user_id()
    hook.fake.add_file("voice2", b"x")
    hook.fake.fail_next("getFile", 500)
    with caplog.at_level(logging.ERROR, logger="channels"):
        assert hook.post(voice_update(uid, "voice2", duration=1, size=1)).status_code == 200
    assert hook.fake.texts(uid) == [ERROR_TEXT]
    assert any("failed" in r.getMessage() for r in caplog.records)


def test_rasa_down_gets_an_apology(stack: Stack, fake: FakeTelegram) -> None:
    config = telegram_settings(stack, fake, rasa_url=f"http://127.0.0.1:{free_port()}",
                               telegram_webhook_url=None)
    with serving(create_app(config)) as base:
        uid = new_user_id()
        post_update(base + WEBHOOK_PATH, text_update(uid, "你好"), SECRET)
    assert fake.texts(uid) == [RASA_DOWN_TEXT]


async def test_polling_mode(stack: Stack, fake: FakeTelegram) -> None:
    config = telegram_settings(stack, fake, telegram_mode="polling")
    rasa = RasaClient(stack.rasa_url)
    bridge = TelegramBridge(config, rasa=rasa, records=None, voice=None)
    app = build_application(config, bridge, polling=True)
    stop = asyncio.Event()
    uid = new_user_id()
    fake.queue_update(text_update(uid, "你好"))
    polling = asyncio.create_task(run_polling(app, stop, poll_timeout=1))
    try:
        for _ in range(600):
            if fake.texts(uid):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await polling
        await rasa.aclose()
    assert any("邻里" in text for text in fake.texts(uid))
    assert fake.sent("deleteWebhook")  # polling takes over from any webhook
    assert user_messages(stack, f"telegram:{uid}") == ["你好"]


def test_photo_caption_goes_to_rasa_with_the_photo(hook: Webhook) -> None:
    uid = new_user_id()
    sizes = [{"file_id": f"ph{n}", "file_unique_id": f"u{n}", "width": w, "height": w}
             for n, w in ((1, 90), (2, 800))]
    hook.post(message_update(uid, photo=sizes, caption="你好"))
    hook.post(message_update(uid, photo=sizes))
    response = httpx.get(f"{hook.stack.rasa_url}/conversations/telegram:{uid}/tracker",
                         params={"token": hook.stack.rasa_token}, timeout=30).json()
    said = [e for e in response["events"] if e.get("event") == "user"]
    assert [e["text"] for e in said] == ["你好"]
    assert said[0]["metadata"]["photo"] == "telegram:ph2"
    assert said[0]["metadata"]["modality"] == "photo"
    assert hook.fake.texts(uid)[-1] == PHOTO_NEEDS_WORDS_TEXT
