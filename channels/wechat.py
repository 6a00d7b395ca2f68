"""WeChat Official Account bridge (wechatpy): signed XML in, passive or customer-service replies.

Each request is checked the way WeChat signs it (SHA-1 of token, timestamp and nonce; in safe
mode also the message signature, then AES decryption). A text or voice message goes to Rasa as
`wechat:<openid>`. WeChat waits 5 s for the HTTP answer and retries otherwise: a turn that
finishes within `WECHAT_REPLY_DEADLINE_S` is answered passively; a slower one is answered
"success" at once and its reply follows as customer-service messages. Retries of a message
(same MsgId) are recognised and not sent to the bot again.
"""

import asyncio
import hmac
import logging
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from xml.parsers.expat import ExpatError

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from channels.audio import AudioError
from channels.bodies import read_limited
from channels.config import ChannelSettings
from channels.rasa_client import BotReply, RasaClient
from channels.turns import TOO_LONG_TEXT, ask_bot, never_silent
from channels.voice_notes import VoiceNotes, VoiceUnavailable
from channels.wechat_api import WeChatApi, WeChatSendError

logger = logging.getLogger(__name__)

INPUT_CHANNEL = "wechat"
PATH = "/wechat"
# Messages remembered to recognise WeChat's retries.
REMEMBERED_MESSAGES = 4096
# WeChat voice messages are at most 60 s.
MAX_VOICE_S = 60
# A passive text reply may hold 2048 bytes; longer answers go as customer-service pieces.
MAX_PASSIVE_BYTES = 2048
MAX_REPLY_CHARS = 600
# On shutdown, replies still on their way get this long to go out.
LATE_REPLY_GRACE_S = 30.0

UNSUPPORTED_TEXT = "目前我只能看懂文字和语音消息，请打字或者发语音告诉我。"
NOT_HEARD_TEXT = "抱歉，这段语音我没听清，请再说一遍，或者打字告诉我。"
CHOICES_TEXT = "请点选："
ERROR_TEXT = "抱歉，刚才出了点问题，请再说一遍。"


def sender_of(openid: str) -> str:
    """The Rasa sender id (and records identity) of a WeChat follower."""
    return f"wechat:{openid}"


def menu_link(title: str, payload: str) -> str:
    """A tappable choice: WeChat sends `title` back as text and the payload as bizmsgmenuid."""
    query = urllib.parse.urlencode({"msgmenucontent": title, "msgmenuid": payload})
    return f'<a href="weixin://bizmsgmenu?{query}">{title}</a>'


def render_reply(reply: BotReply) -> str:
    """One bot message as WeChat text; buttons become tappable choices under it."""
    lines = [reply.text] if reply.text else []
    if reply.buttons:
        if not reply.text:
            lines.append(CHOICES_TEXT)
        links = [menu_link(b["title"], b.get("payload") or b["title"]) for b in reply.buttons
                 if b.get("title")]
        lines.append("\n".join(links))
    return "\n".join(lines)


def split_reply(text: str, limit: int = MAX_REPLY_CHARS) -> list[str]:
    """Text cut into pieces WeChat accepts, at line ends where possible."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*pieces, text] if text else pieces


def signature_of(token: str, *parts: str) -> str:
    """WeChat's SHA-1 signature of the token and the parts, sorted."""
    signer = WeChatSigner()
    signer.add_data(token, *parts)
    return str(signer.signature)


class WeChatBridge:
    """Handles the Official Account's callback URL (GET: URL check, POST: messages)."""

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        rasa: RasaClient,
        voice: VoiceNotes | None,
        api: WeChatApi | None,
    ) -> None:
        if settings.wechat_token is None:
            raise ValueError("WECHAT_TOKEN is not set")
        self.settings = settings
        self.rasa = rasa
        self.voice = voice
        self.api = api
        self._token = settings.wechat_token.get_secret_value()
        self._crypto: WeChatCrypto | None = None
        if settings.wechat_aes_key is not None and settings.wechat_aes_key.get_secret_value():
            if not settings.wechat_app_id:
                raise ValueError("safe mode (WECHAT_AES_KEY) needs WECHAT_APP_ID")
            self._crypto = WeChatCrypto(
                self._token, settings.wechat_aes_key.get_secret_value(), settings.wechat_app_id
            )
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._late: set[asyncio.Task[None]] = set()

    def _signed(self, request: Request) -> bool:
        params = request.query_params
        signature = params.get("signature", "")
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        client = request.client.host if request.client else "?"
        expected = signature_of(self._token, timestamp, nonce)
        if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
            logger.warning("wechat request with a forged or missing signature from %s; rejected",
                           client)
            return False
        if not timestamp.isdigit() or (
            abs(time.time() - int(timestamp)) > self.settings.wechat_max_clock_skew_s
        ):
            logger.warning("wechat request with a stale timestamp from %s; rejected", client)
            return False
        return True

    async def verify_url(self, request: Request) -> Response:
        """WeChat's URL check when the callback is configured: echo `echostr` if signed."""
        if not self._signed(request):
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(request.query_params.get("echostr", ""))

    async def receive(self, request: Request) -> Response:
        """A message or event: answered passively within the deadline, else asynchronously."""
        started = time.monotonic()
        if not self._signed(request):
            return PlainTextResponse("forbidden", status_code=403)
        body = await read_limited(request, self.settings.max_body_bytes)
        if body is None:
            logger.warning("wechat request over %d bytes; rejected", self.settings.max_body_bytes)
            return PlainTextResponse("too large", status_code=413)
        encrypted = request.query_params.get("encrypt_type", "raw") == "aes"
        xml = self._plain_xml(request, body, encrypted)
        if xml is None:
            return PlainTextResponse("bad request", status_code=400)
        try:
            message = parse_message(xml)
        except (ExpatError, KeyError, TypeError, ValueError, AttributeError):
            logger.warning("wechat message is not well-formed XML; rejected")
            return PlainTextResponse("bad request", status_code=400)
        if message is None:
            logger.warning("wechat request without a message; rejected")
            return PlainTextResponse("bad request", status_code=400)
        key = self._message_key(message)
        if key in self._seen:
            logger.info("wechat retry of an earlier message; not sent to the bot again")
            return PlainTextResponse("success")
        self._remember(key)
        turn = asyncio.create_task(self._answer_safely(message))
        remaining = self.settings.wechat_reply_deadline_s - (time.monotonic() - started)
        done, _ = await asyncio.wait({turn}, timeout=max(remaining, 0))
        if turn in done:
            texts = turn.result()
            if not texts:
                return PlainTextResponse("success")
            passive = "\n\n".join(texts)
            if len(passive.encode()) <= MAX_PASSIVE_BYTES:
                return self._passive(message, passive, encrypted, request)
        # Too slow for WeChat's 5 s (or too long for one passive reply): the reply follows as
        # customer-service messages.
        late = asyncio.create_task(self._reply_late(str(message.source), turn))
        self._late.add(late)
        late.add_done_callback(self._late.discard)
        return PlainTextResponse("success")

    def _plain_xml(self, request: Request, body: bytes, encrypted: bool) -> bytes | str | None:
        if not encrypted:
            return body
        if self._crypto is None:
            logger.warning("wechat encrypted message, but WECHAT_AES_KEY is not set; rejected")
            return None
        params = request.query_params
        try:
            plain: str = self._crypto.decrypt_message(
                body, params.get("msg_signature", ""), params.get("timestamp", ""),
                params.get("nonce", ""),
            )
        except (InvalidSignatureException, InvalidAppIdException):
            logger.warning("wechat encrypted message with a forged signature or app id; rejected")
            return None
        except Exception as error:  # malformed XML, bad base64, bad padding…
            logger.warning("wechat encrypted message undecryptable (%s); rejected",
                           type(error).__name__)
            return None
        return plain

    def _passive(self, message: Any, text: str, encrypted: bool, request: Request) -> Response:
        reply = TextReply(message=message, content=text, time=int(time.time()))
        xml = reply.render()
        if encrypted and self._crypto is not None:
            xml = self._crypto.encrypt_message(
                xml, request.query_params.get("nonce", ""), str(int(time.time()))
            )
        return Response(xml, media_type="application/xml")

    @staticmethod
    def _message_key(message: Any) -> str:
        msg_id = getattr(message, "id", None)
        if msg_id:
            return f"id:{msg_id}"
        event = getattr(message, "event", "")
        return f"{message.source}:{getattr(message, 'create_time', '')}:{event}"

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > REMEMBERED_MESSAGES:
            self._seen.popitem(last=False)

    async def _answer_safely(self, message: Any) -> list[str]:
        try:
            return await self._answer(message)
        except Exception:
            logger.exception("wechat message could not be handled")
            return [ERROR_TEXT]

    async def _answer(self, message: Any) -> list[str]:
        """The reply texts to one message (already rendered for WeChat)."""
        openid = str(message.source)
        kind = message.type
        if kind == "text":
            text = str(message.content or "")
            payload = str((message._data or {}).get("bizmsgmenuid") or "")
            if payload.startswith("/"):
                return await self._turn(openid, payload, "button")
            if len(text) > self.settings.max_text_chars:
                logger.warning("wechat message of %d characters refused", len(text))
                return [TOO_LONG_TEXT.format(limit=self.settings.max_text_chars)]
            return await self._turn(openid, text, "text")
        if kind == "voice":
            return await self._voice(message)
        if kind == "event":
            event = str(getattr(message, "event", "")).lower()
            if event in ("subscribe", "subscribe_scan"):
                return await self._turn(openid, "/greet", "event")
            key = str(getattr(message, "key", "") or "")
            if event == "click" and key.startswith("/"):
                return await self._turn(openid, key, "menu")
            logger.info("wechat event %s ignored", event or "?")
            return []
        logger.warning("wechat %s message: unsupported type; hint sent", kind)
        return [UNSUPPORTED_TEXT]

    async def _voice(self, message: Any) -> list[str]:
        openid = str(message.source)
        recognition = str(message.recognition or "").strip()
        heard, how = "", "ours"
        if self.voice is not None and self.api is not None and message.media_id:
            try:
                audio = await self.api.download_media(str(message.media_id))
                heard = await self.voice.transcribe(audio, max_seconds=MAX_VOICE_S)
            except (WeChatSendError, AudioError, VoiceUnavailable) as error:
                logger.warning("wechat voice not transcribed by us: %s", error)
        if not heard and recognition:
            heard, how = recognition, "wechat"
            logger.info("wechat voice: WeChat's own recognition used")
        if not heard:
            return [NOT_HEARD_TEXT]
        return await self._turn(openid, heard, "voice", asr=how)

    async def _turn(self, openid: str, text: str, modality: str, **extra: str) -> list[str]:
        replies = await ask_bot(
            self.rasa, sender_of(openid), text, input_channel=INPUT_CHANNEL,
            metadata={"modality": modality, **extra},
        )
        replies = never_silent(replies, INPUT_CHANNEL)
        return [rendered for r in replies if (rendered := render_reply(r))]

    async def _reply_late(self, openid: str, turn: "asyncio.Task[list[str]]") -> None:
        await self.send_texts(openid, await turn)

    async def send_texts(self, openid: str, texts: Sequence[str]) -> None:
        """Customer-service messages, one a reply (split when long)."""
        if self.api is None:
            logger.error("wechat reply too slow for a passive answer and WECHAT_APP_ID/SECRET "
                         "are not set for customer-service messages; reply dropped")
            return
        for text in texts:
            for piece in split_reply(text):
                try:
                    await self.api.send_text(openid, piece)
                except WeChatSendError as error:
                    logger.error("wechat customer-service reply failed: %s", error)
                    return

    async def aclose(self) -> None:
        """Wait (at most half a minute) for replies still on their way."""
        if self._late:
            await asyncio.wait(set(self._late), timeout=LATE_REPLY_GRACE_S)
