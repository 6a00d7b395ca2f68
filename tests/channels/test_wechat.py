"""WeChat through the real Rasa, action server and records: signed (and encrypted) XML in,
passive or customer-service replies out, against a fake Official Account API."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import xmltodict  # type: ignore[import-untyped]

from channels.app import create_app
from channels.voice_notes import VoiceNotes
from channels.wechat import NOT_HEARD_TEXT, UNSUPPORTED_TEXT
from tests.channels.conftest import settings, user_messages
from tests.channels.fake_wechat import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChatApi,
    decrypt_reply,
    encrypted_request,
    fake_wechat_api,
    message_xml,
    plain_request,
    signed_params,
)
from tests.channels.servers import serving, wait_for
from tests.e2e.stack import Stack

_openids = iter(range(1, 10_000))


def new_openid() -> str:
    """A follower no other test uses."""
    return f"oLinliTest{next(_openids):06d}"


@dataclass
class Account:
    """The channels app serving the Official Account's callback URL."""

    url: str
    api: FakeWeChatApi
    stack: Stack

    def post(self, params: dict[str, str], body: bytes) -> httpx.Response:
        """A callback as WeChat's server makes it."""
        return httpx.post(self.url, params=params, content=body,
                          headers={"Content-Type": "text/xml"}, timeout=30)

    def text(self, openid: str, content: str, **fields: str) -> httpx.Response:
        """A plaintext-mode text message."""
        xml = message_xml(openid, "text", fields={"Content": content, **fields})
        return self.post(*plain_request(openid, xml))


def passive(response: httpx.Response) -> dict[str, Any]:
    """The fields of a plaintext passive reply."""
    assert response.status_code == 200
    fields: dict[str, Any] = xmltodict.parse(response.content)["xml"]
    return fields


def wechat_settings(stack: Stack, api: FakeWeChatApi, **overrides: Any) -> Any:
    """Channel settings with WeChat only (safe mode available)."""
    return settings(**{
        "rasa_url": stack.rasa_url,
        "records_url": stack.records_url,
        "service_token": stack.service_token,
        "wechat_token": TOKEN,
        "wechat_app_id": APP_ID,
        "wechat_app_secret": APP_SECRET,
        "wechat_aes_key": AES_KEY,
        "wechat_api_base": api.api_base,
        "wechat_reply_deadline_s": 4.8,
        "max_body_bytes": 16 * 1024,
        **overrides,
    })


@pytest.fixture(scope="module")
def api() -> Iterator[FakeWeChatApi]:
    """The fake Official Account API."""
    with fake_wechat_api() as server:
        yield server


@pytest.fixture(scope="module")
def account(stack: Stack, api: FakeWeChatApi, voice_notes: VoiceNotes) -> Iterator[Account]:
    """The channels app with WeChat configured."""
    with serving(create_app(wechat_settings(stack, api), voice=voice_notes)) as base:
        yield Account(base + "/wechat", api, stack)


def test_url_verification_echoes_only_when_signed(account: Account) -> None:
    good = httpx.get(account.url, params={**signed_params(), "echostr": "4711"})
    forged = httpx.get(account.url, params={**signed_params("not-the-token"), "echostr": "4711"})
    assert (good.status_code, good.text) == (200, "4711")
    assert forged.status_code == 403


def test_text_gets_a_passive_reply(account: Account) -> None:
    openid = new_openid()
    reply = passive(account.text(openid, "你好"))
    assert reply["ToUserName"] == openid
    assert reply["MsgType"] == "text"
    assert "邻里" in reply["Content"]
    assert user_messages(account.stack, f"wechat:{openid}") == ["你好"]


def test_safe_mode_is_decrypted_and_answered_encrypted(account: Account) -> None:
    openid = new_openid()
    params, body = encrypted_request(openid, message_xml(openid, "text", Content="你好"))
    response = account.post(params, body)
    assert response.status_code == 200
    assert b"<Encrypt>" in response.content
    assert "邻里".encode() not in response.content
    reply = decrypt_reply(params, response.content)
    assert reply["ToUserName"] == openid
    assert "邻里" in reply["Content"]
    assert user_messages(account.stack, f"wechat:{openid}") == ["你好"]


def test_forged_requests_are_rejected(account: Account, caplog: pytest.LogCaptureFixture) -> None:
    openid = new_openid()
    xml = message_xml(openid, "text", Content="你好")
    forged = {**signed_params("not-the-token"), "openid": openid}
    stale = {**signed_params(timestamp=1_000_000_000), "openid": openid}
    params, body = encrypted_request(openid, xml)
    with caplog.at_level(logging.WARNING, logger="channels"):
        assert account.post(forged, xml.encode()).status_code == 403
        assert account.post(stale, xml.encode()).status_code == 403
        assert account.post({**params, "msg_signature": "0" * 40}, body).status_code == 400
        assert account.post(params, body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[x"),
                            ).status_code == 400
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "forged or missing signature" in logged
    assert "stale timestamp" in logged
    assert "forged signature or app id" in logged
    assert user_messages(account.stack, f"wechat:{openid}") == []


def test_malformed_and_oversized_bodies_are_rejected(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    openid = new_openid()
    with caplog.at_level(logging.WARNING, logger="channels"):
        broken = account.post({**signed_params(), "openid": openid}, b"<xml><MsgType>text")
        untyped = account.post({**signed_params(), "openid": openid}, b"<xml></xml>")
        huge = account.text(openid, "修" * 20_000)
    assert [broken.status_code, untyped.status_code, huge.status_code] == [400, 400, 413]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "not well-formed XML" in logged
    assert "over 16384 bytes" in logged
    assert passive(account.text(openid, "你好"))["Content"]  # still serving


def test_buttons_are_tappable_and_a_tap_sends_the_payload(account: Account) -> None:
    openid = new_openid()
    reply = passive(account.text(openid, "我要报修"))["Content"]
    water = '/report_repair{"repair_category":"water"}'
    assert "weixin://bizmsgmenu?" in reply
    assert ">水</a>" in reply
    # Tapping a choice sends its title as text, with the menu id (our payload) alongside.
    second = passive(account.text(openid, "水", bizmsgmenuid=water))["Content"]
    assert user_messages(account.stack, f"wechat:{openid}")[-1] == water
    assert "在哪里" in second


def test_a_retried_message_is_not_sent_to_the_bot_twice(account: Account) -> None:
    openid = new_openid()
    xml = message_xml(openid, "text", Content="你好", msg_id=4242_0001)
    first = account.post(*plain_request(openid, xml))
    again = account.post(*plain_request(openid, xml))
    assert "邻里" in passive(first)["Content"]
    assert again.text == "success"
    assert user_messages(account.stack, f"wechat:{openid}") == ["你好"]


def test_voice_is_transcribed_by_us(account: Account, korean_amr: bytes) -> None:
    openid = new_openid()
    account.api.media["media-ko-1"] = korean_amr
    xml = message_xml(openid, "voice", MediaId="media-ko-1", Format="amr")
    response = account.post(*plain_request(openid, xml))
    # Answered passively, or (on a slow machine) by customer-service message.
    answer = passive(response).get("Content") if response.text != "success" else (
        account.api.wait_texts(openid)[0])
    assert answer
    said = user_messages(account.stack, f"wechat:{openid}")
    assert len(said) == 1
    assert any("\uac00" <= ch <= "\ud7a3" for ch in said[0])  # Hangul, from real Vosk


def test_voice_falls_back_to_wechat_recognition(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    openid = new_openid()
    account.api.media["media-junk"] = b"#!AMR\n" + b"\x00" * 7  # nothing decodable
    xml = message_xml(openid, "voice", MediaId="media-junk", Format="amr", Recognition="你好")
    with caplog.at_level(logging.INFO, logger="channels"):
        reply = passive(account.post(*plain_request(openid, xml)))
    assert user_messages(account.stack, f"wechat:{openid}") == ["你好"]
    assert "邻里" in reply["Content"]
    assert "WeChat's own recognition used" in " ".join(r.getMessage() for r in caplog.records)


def test_voice_nobody_understood(account: Account) -> None:
    openid = new_openid()
    xml = message_xml(openid, "voice", MediaId="missing-media", Format="amr")
    assert passive(account.post(*plain_request(openid, xml)))["Content"] == NOT_HEARD_TEXT
    assert user_messages(account.stack, f"wechat:{openid}") == []


def test_other_messages_and_events(account: Account) -> None:
    openid = new_openid()
    image = message_xml(openid, "image", PicUrl="http://x/y.jpg", MediaId="m1")
    assert passive(account.post(*plain_request(openid, image)))["Content"] == UNSUPPORTED_TEXT
    follow = message_xml(openid, "event", Event="subscribe")
    assert "邻里" in passive(account.post(*plain_request(openid, follow)))["Content"]
    leave = message_xml(openid, "event", Event="unsubscribe")
    assert account.post(*plain_request(openid, leave)).text == "success"
    long_text = passive(account.text(openid, "修" * 1001))["Content"]
    assert long_text == "消息太长了，请分几次说，每次不超过1000个字。"
    assert user_messages(account.stack, f"wechat:{openid}") == ["/greet"]


def test_slow_turns_are_answered_by_customer_service_message(
    stack: Stack, api: FakeWeChatApi
) -> None:
    # A deadline of zero makes every turn "too slow" for the passive reply.
    config = wechat_settings(stack, api, wechat_reply_deadline_s=0)
    openid = new_openid()
    with serving(create_app(config)) as base:
        response = httpx.post(base + "/wechat", params=plain_request(openid, "")[0],
                              content=message_xml(openid, "text", Content="我要报修").encode())
        assert response.text == "success"
        texts = api.wait_texts(openid)
    assert "请问是什么坏了" in texts[0]
    assert "weixin://bizmsgmenu?" in texts[0]
    assert wait_for(lambda: user_messages(stack, f"wechat:{openid}"), what="rasa") == ["我要报修"]
