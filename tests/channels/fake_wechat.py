"""WeChat at the HTTP level: requests built and signed as WeChat's servers send them, and a fake
Official Account API (access token, media download, customer-service messages)."""

import itertools
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

import xmltodict  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]

from channels.wechat import signature_of
from tests.channels.servers import serving, wait_for

APP_ID = "wx0123456789abcdef"
APP_SECRET = "fake-app-secret-0123456789"
TOKEN = "wechat-callback-token"
# A 43-character EncodingAESKey, as the account settings page shows it.
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_linli_account"
ACCESS_TOKEN = "ACCESS_TOKEN_FAKE"

_msg_ids = itertools.count(6_000_000_000_000_000_001)


class FakeWeChatApi:
    """The Official Account API our client calls, recording customer-service messages."""

    def __init__(self) -> None:
        self.media: dict[str, bytes] = {}
        self.sent: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.token_requests = 0
        self.base = ""

    @property
    def api_base(self) -> str:
        """WECHAT_API_BASE for the channel."""
        return f"{self.base}/cgi-bin/"

    def texts(self, openid: str) -> list[str]:
        """Customer-service texts sent to `openid`."""
        return [m["text"]["content"] for m in list(self.sent)
                if m.get("touser") == openid and m.get("msgtype") == "text"]

    def wait_texts(self, openid: str, count: int = 1) -> list[str]:
        """Wait for `count` customer-service texts to `openid`."""
        return wait_for(lambda: t if len(t := self.texts(openid)) >= count else None,
                        what=f"{count} customer-service texts")

    async def token(self, request: Request) -> Response:
        """GET cgi-bin/token."""
        self.token_requests += 1
        params = request.query_params
        if params.get("appid") != APP_ID or params.get("secret") != APP_SECRET:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        return JSONResponse({"access_token": ACCESS_TOKEN, "expires_in": 7200})

    async def media_get(self, request: Request) -> Response:
        """GET cgi-bin/media/get."""
        if request.query_params.get("access_token") != ACCESS_TOKEN:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        data = self.media.get(request.query_params.get("media_id", ""))
        if data is None:
            return JSONResponse({"errcode": 40007, "errmsg": "invalid media_id"})
        return Response(data, media_type="audio/amr")

    async def custom_send(self, request: Request) -> Response:
        """POST cgi-bin/message/custom/send."""
        if request.query_params.get("access_token") != ACCESS_TOKEN:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        body = await request.json()
        if self.failures:
            return JSONResponse(self.failures.pop(0))
        self.sent.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    def asgi(self) -> Starlette:
        """The server as an ASGI app."""
        return Starlette(routes=[
            Route("/cgi-bin/token", self.token),
            Route("/cgi-bin/media/get", self.media_get),
            Route("/cgi-bin/message/custom/send", self.custom_send, methods=["POST"]),
        ])


@contextmanager
def fake_wechat_api() -> Iterator[FakeWeChatApi]:
    """A running fake Official Account API."""
    fake = FakeWeChatApi()
    with serving(fake.asgi()) as base:
        fake.base = base
        yield fake


# --- requests as WeChat's servers send them ------------------------------------------------


def message_xml(
    openid: str,
    msg_type: str,
    *,
    msg_id: int | None = None,
    fields: dict[str, str] | None = None,
    **more: str,
) -> str:
    """A message or event as WeChat posts it (CamelCase field names)."""
    fields = {**(fields or {}), **more}
    parts = [
        f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
        f"<CreateTime>{int(time.time())}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
    ]
    parts += [f"<{name}><![CDATA[{value}]]></{name}>" for name, value in fields.items()]
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id or next(_msg_ids)}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def signed_params(token: str = TOKEN, *, timestamp: int | None = None) -> dict[str, str]:
    """signature, timestamp and nonce, as WeChat adds them to every callback."""
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    nonce = str(secrets.randbelow(10**9))
    return {"signature": signature_of(token, stamp, nonce), "timestamp": stamp, "nonce": nonce}


def plain_request(openid: str, xml: str) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a plaintext-mode callback."""
    return {**signed_params(), "openid": openid}, xml.encode()


def encrypted_request(openid: str, xml: str) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a safe-mode callback (AES, with msg_signature)."""
    params = {**signed_params(), "openid": openid, "encrypt_type": "aes"}
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    sealed = xmltodict.parse(crypto.encrypt_message(xml, params["nonce"], params["timestamp"]))
    params["msg_signature"] = sealed["xml"]["MsgSignature"]
    body = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{escape(sealed['xml']['Encrypt'])}]]></Encrypt></xml>")
    return params, body.encode()


def decrypt_reply(params: dict[str, str], body: bytes) -> dict[str, Any]:
    """A safe-mode passive reply opened as the WeChat server would, as a dict of fields."""
    sealed = xmltodict.parse(body)["xml"]
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    plain = crypto.decrypt_message(body, sealed["MsgSignature"], sealed["TimeStamp"],
                                   sealed["Nonce"])
    fields: dict[str, Any] = xmltodict.parse(plain)["xml"]
    return fields
