"""A fake Telegram Bot API server at the HTTP level, for python-telegram-bot pointed at it.

Implements what our bot calls (getMe, getUpdates, setWebhook, deleteWebhook, sendMessage,
sendVoice, sendChatAction, answerCallbackQuery, editMessageText, editMessageReplyMarkup,
getFile and file downloads), records every call, and can be told to fail the next calls of a
method or to refuse a chat (as Telegram does when a user blocked the bot).
"""

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.channels.servers import serving, wait_for

TOKEN = "123456:FAKE-token_for-tests"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "邻里", "username": "linli_test_bot"}


@dataclass
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def chat_id(self) -> int | None:
        """The chat the call addressed."""
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback data) of the inline keyboard sent, row by row."""
        markup = self.params.get("reply_markup") or {}
        return [(b["text"], b.get("callback_data", "")) for row in
                markup.get("inline_keyboard", []) for b in row]


class FakeTelegram:
    """The server's state; the test talks to it from its own thread."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[int]] = {}
        self.blocked: set[int] = set()
        self.webhook: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1000)
        self.base = ""

    # --- configuration from tests -------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The `base_url` for python-telegram-bot."""
        return f"{self.base}/bot"

    @property
    def base_file_url(self) -> str:
        """The `base_file_url` for python-telegram-bot."""
        return f"{self.base}/file/bot"

    def fail_next(self, method: str, *statuses: int) -> None:
        """Answer the next calls of `method` with these HTTP statuses."""
        self.failures.setdefault(method, []).extend(statuses)

    def add_file(self, file_id: str, data: bytes) -> None:
        """A file users sent (a voice note) that getFile and the download serve."""
        self.files[file_id] = data

    def queue_update(self, update: dict[str, Any]) -> None:
        """An update getUpdates hands out."""
        with self._lock:
            self._updates.append(update)

    def sent(self, method: str, chat_id: int | None = None) -> list[Call]:
        """The calls of `method` (to `chat_id`)."""
        return [c for c in list(self.calls)
                if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def texts(self, chat_id: int) -> list[str]:
        """Texts of the messages sent to a chat, in order."""
        return [str(c.params.get("text", "")) for c in self.sent("sendMessage", chat_id)]

    def wait_sent(self, method: str, chat_id: int | None = None, *, count: int = 1,
                  timeout: float = 30) -> list[Call]:
        """Wait until `count` calls of `method` (to `chat_id`) were made."""
        return wait_for(lambda: (found if len(found := self.sent(method, chat_id)) >= count
                                 else None), timeout=timeout, what=f"{count}× {method}")

    # --- the HTTP side ------------------------------------------------------------------

    async def _params(self, request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query_params)
        files: dict[str, bytes] = {}
        if request.method == "POST":
            kind = request.headers.get("content-type", "")
            if kind.startswith("application/json"):
                params.update(await request.json())
            elif kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
                form = await request.form()
                for key, value in form.multi_items():
                    if hasattr(value, "read"):
                        files[key] = await value.read()
                    else:
                        params[key] = value
                await form.close()
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params, files

    async def api(self, request: Request) -> Response:
        """Every Bot API method: /bot<token>/<method>."""
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params, files = await self._params(request)
        self.calls.append(Call(method, params, files))
        pending = self.failures.get(method)
        if pending:
            status = pending.pop(0)
            return _error(status, "Internal Server Error" if status >= 500 else "Bad Request")
        chat = params.get("chat_id")
        if chat is not None and int(chat) in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        handler = getattr(self, f"m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result = await handler(params)
        if result is None:
            return _error(400, "Bad Request: not found")
        return JSONResponse({"ok": True, "result": result})

    async def download(self, request: Request) -> Response:
        """File downloads: /file/bot<token>/<path>."""
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        file_id = request.path_params["path"].rsplit("/", 1)[-1].split(".")[0]
        data = self.files.get(file_id)
        if data is None:
            return _error(404, "Not Found")
        return Response(data, media_type="audio/ogg")

    async def m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def m_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = params
        return True

    async def m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {}
        return True

    async def m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
        while True:
            with self._lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = list(self._updates)
            if ready or time.monotonic() >= deadline:
                return ready
            await asyncio.sleep(0.05)

    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            **extra,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def m_sendMessage(self, params: dict[str, Any]) -> Any:
        message = self._message(params, text=params.get("text", ""))
        self.messages.append(message)
        return message

    def message_with_buttons(self, chat_id: int) -> dict[str, Any]:
        """The latest message sent to `chat_id` that carries an inline keyboard."""
        for message in reversed(self.messages):
            if message["chat"]["id"] == chat_id and message.get("reply_markup"):
                found: dict[str, Any] = message
                return found
        raise AssertionError(f"no message with buttons sent to {chat_id}")

    async def m_sendVoice(self, params: dict[str, Any]) -> Any:
        voice = {"file_id": f"sent{next(self._ids)}", "file_unique_id": "u", "duration": 1}
        return self._message(params, voice=voice)

    async def m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def m_editMessageText(self, params: dict[str, Any]) -> Any:
        return self._message(params, text=params.get("text", ""),
                             message_id=int(params["message_id"]))

    async def m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        return self._message(params, text="", message_id=int(params["message_id"]))

    async def m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            return None
        return {"file_id": file_id, "file_unique_id": f"u{file_id}",
                "file_size": len(self.files[file_id]), "file_path": f"voice/{file_id}.oga"}

    def asgi(self) -> Starlette:
        """The server as an ASGI app."""
        return Starlette(routes=[
            Route("/bot{token}/{method}", self.api, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", self.download, methods=["GET"]),
        ])


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": status, "description": description},
                        status_code=status)


@contextmanager
def fake_telegram() -> Iterator[FakeTelegram]:
    """A running fake Bot API server."""
    fake = FakeTelegram()
    with serving(fake.asgi()) as base:
        fake.base = base
        yield fake


# --- updates as Telegram sends them --------------------------------------------------------

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


def user(user_id: int) -> dict[str, Any]:
    """A Telegram user (a resident)."""
    return {"id": user_id, "is_bot": False, "first_name": "居民", "language_code": "zh-hans"}


def message_update(user_id: int, **content: Any) -> dict[str, Any]:
    """A private-chat message from `user_id` with the given content (text=…, voice=…)."""
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "居民"},
            "from": user(user_id),
            **content,
        },
    }


def text_update(user_id: int, text: str) -> dict[str, Any]:
    """A typed message; a leading /command gets its bot_command entity as Telegram adds it."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        length = len(text.split(" ", 1)[0])
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return message_update(user_id, **content)


def voice_update(user_id: int, file_id: str, *, duration: int, size: int) -> dict[str, Any]:
    """A voice note."""
    voice = {"file_id": file_id, "file_unique_id": f"u{file_id}", "duration": duration,
             "mime_type": "audio/ogg", "file_size": size}
    return message_update(user_id, voice=voice)


def callback_update(user_id: int, data: str, message: dict[str, Any]) -> dict[str, Any]:
    """A tap on an inline button of `message` (a message the bot sent)."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": f"cb{next(_update_ids)}",
            "from": user(user_id),
            "chat_instance": "ci",
            "message": message,
            "data": data,
        },
    }


def post_update(webhook_url: str, update: dict[str, Any], secret: str | None) -> httpx.Response:
    """Deliver an update to a webhook the way Telegram does."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return httpx.post(webhook_url, json=update, headers=headers, timeout=60)
