"""The one HTTP client the custom actions use to call the records backend.

Every action goes through :class:`RecordsClient` (usually the shared one from
:func:`get_client`), so timeouts, retries, authentication and error handling are the same
everywhere::

    from actions.records_client import RecordsRefused, RecordsUnavailable, get_client

    try:
        repair = await get_client().post("/api/v1/repairs", payload, idempotency_key=key)
    except RecordsRefused as exc:  # the backend said no: its Chinese detail is the reply
        dispatcher.utter_message(text=exc.detail_zh)
    except RecordsUnavailable as exc:  # not done, and the bot must not claim it was
        dispatcher.utter_message(text=exc.detail_zh)

Creates that must not be lost while the backend is down (repair reports, emergency alerts)
use :func:`actions.outbox.post_or_queue` instead.

Rules of the backend this module relies on: a create sent again with the same
``Idempotency-Key`` returns the first result (header ``Idempotent-Replayed: true``) instead
of creating a duplicate; errors are ``application/problem+json`` with a Chinese ``detail``;
4xx are final refusals, 5xx, timeouts and connection errors are transient. So transient
failures are retried with exponential backoff and jitter, and every retry of a create
carries the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DOTENV_PATH = REPO_ROOT / ".env"
DEFAULT_RECORDS_URL = "http://127.0.0.1:8000"

PROBLEM_MEDIA_TYPE = "application/problem+json"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The backend accepts Idempotency-Key values up to this length.
MAX_IDEMPOTENCY_KEY_LENGTH = 200
# 4xx statuses that mean "not now" rather than "no": retried like 5xx.
RETRYABLE_4XX = frozenset({408, 425, 429})
# Methods that are safe to send twice even without an idempotency key.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

UNAVAILABLE_ZH = "社区服务系统暂时连接不上，这件事还没有办成，请稍后再试。"
_REFUSED_ZH = {
    400: "请求有误。",
    401: "系统认证出了问题，暂时办不了，请稍后再试。",
    403: "没有权限进行这个操作。",
    404: "没有找到相关记录。",
    409: "这个操作与当前状态冲突。",
    413: "提交的内容太大。",
    422: "提交的信息有误，请检查后重试。",
}
_REFUSED_ZH_DEFAULT = "这个请求没有被受理。"


# --- settings ---------------------------------------------------------------------------


def read_dotenv(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from a ``.env`` file; a missing file gives ``{}``.

    Blank lines and ``#`` comments are skipped, an ``export`` prefix and matching quotes
    around the value are removed. Nothing is expanded.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_env(
    environ: Mapping[str, str] | None = None, dotenv_path: Path | None = DOTENV_PATH
) -> dict[str, str]:
    """The settings: the repository ``.env`` overlaid by the process environment (env wins)."""
    values = read_dotenv(dotenv_path) if dotenv_path is not None else {}
    values.update(os.environ if environ is None else environ)
    return values


def _records_url(env: Mapping[str, str]) -> str:
    """RECORDS_URL, else the address the backend binds (RECORDS_HOST/PORT), else the default."""
    if url := env.get("RECORDS_URL", "").strip():
        return url.rstrip("/")
    if port := env.get("RECORDS_PORT", "").strip():
        host = env.get("RECORDS_HOST", "").strip()
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a bind-all address, not binding here
            host = "127.0.0.1"
        return f"http://{host}:{port}"
    return DEFAULT_RECORDS_URL


# Settings that may also come from the environment: field -> (variable, type).
_NUMERIC_ENV: dict[str, tuple[str, Callable[[str], float]]] = {
    "connect_timeout": ("RECORDS_CONNECT_TIMEOUT", float),
    "read_timeout": ("RECORDS_READ_TIMEOUT", float),
    "attempts": ("RECORDS_RETRY_ATTEMPTS", int),
    "backoff_base": ("RECORDS_RETRY_BACKOFF", float),
    "deadline": ("RECORDS_DEADLINE", float),
}


@dataclass(frozen=True, slots=True)
class RecordsSettings:
    """How to reach the records backend and how hard to try.

    ``attempts`` counts every try including the first; the n-th retry waits
    ``backoff_base * 2**(n-1)`` seconds (capped at ``backoff_max``), scaled by a random factor
    in ``1 ± jitter`` so that replicas do not retry in lockstep. ``deadline`` bounds the whole
    call including retries (a resident is waiting), ``None`` for no bound.
    """

    base_url: str = DEFAULT_RECORDS_URL
    token: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    attempts: int = 3
    backoff_base: float = 0.2
    backoff_max: float = 2.0
    jitter: float = 0.25
    deadline: float | None = 15.0
    max_connections: int = 20
    max_keepalive_connections: int = 10

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.backoff_base < 0 or self.backoff_max < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff must be non-negative and jitter within [0, 1]")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        dotenv_path: Path | None = DOTENV_PATH,
        **overrides: Any,
    ) -> RecordsSettings:
        """Settings from the environment and ``.env`` (see :func:`load_env`), then overrides."""
        env = load_env(environ, dotenv_path)
        values: dict[str, Any] = {
            "base_url": _records_url(env),
            "token": env.get("SERVICE_TOKEN") or None,
        }
        for field_name, (name, kind) in _NUMERIC_ENV.items():
            raw = env.get(name, "").strip()
            if raw:
                try:
                    values[field_name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{name}={raw!r} is not a number") from None
        values.update(overrides)
        return cls(**values)

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (retry - 1))
        low, high = 1 - self.jitter, 1 + self.jitter
        factor = rng.uniform(low, high) if rng is not None else random.uniform(low, high)  # noqa: S311
        return delay * factor


# --- errors -----------------------------------------------------------------------------


class RecordsError(Exception):
    """Any failure talking to the records backend; ``detail_zh`` can be said to a resident."""

    detail_zh: str


class RecordsRefused(RecordsError):
    """The backend refused the request for good (a 4xx); retrying will not help.

    ``code`` is the last path segment of the problem ``type`` (e.g. ``validation-error``),
    ``detail_zh`` the problem's Chinese ``detail``, fit to be the bot's reply, and ``body``
    the whole problem document (``None`` if the response was not JSON).
    """

    def __init__(self, status: int, code: str, detail_zh: str, body: Any) -> None:
        super().__init__(f"{status} {code}: {detail_zh}")
        self.status = status
        self.code = code
        self.detail_zh = detail_zh
        self.body = body

    @property
    def is_problem(self) -> bool:
        """Whether the backend itself answered with a problem document (not a proxy page)."""
        return isinstance(self.body, dict) and "type" in self.body

    @classmethod
    def from_response(cls, response: httpx.Response) -> RecordsRefused:
        """Build the error from a 4xx response, problem+json or not."""
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        problem = body if isinstance(body, dict) else {}
        type_ = problem.get("type")
        code = (
            type_.rstrip("/").rsplit("/", 1)[-1]
            if isinstance(type_, str) and type_ not in ("", "about:blank")
            else f"http-{status}"
        )
        detail = problem.get("detail")
        if not isinstance(detail, str) or not detail.strip():
            detail = _REFUSED_ZH.get(status, _REFUSED_ZH_DEFAULT)
        return cls(status, code, detail, body)


class RecordsUnavailable(RecordsError):
    """The backend could not be reached or kept failing; nothing can be said to have happened.

    ``attempts`` is how many tries were made, ``status`` the last HTTP status (``None`` if no
    response came back), ``detail_zh`` a Chinese sentence for the resident.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 0,
        status: int | None = None,
        detail_zh: str = UNAVAILABLE_ZH,
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status
        self.detail_zh = detail_zh


# --- idempotency keys -------------------------------------------------------------------


def new_idempotency_key() -> str:
    """A fresh random key for one create (its retries reuse it)."""
    return str(uuid.uuid4())


def form_idempotency_key(
    sender_id: str, form: str, slots: Mapping[str, Any], *, scope: str = ""
) -> str:
    """A deterministic key for one form submission, so submitting it again creates nothing new.

    The same sender, form and slot values (and ``scope``) always give the same key, across
    retries, action-server restarts and the outbox. The sender id is hashed, not sent as is,
    because on some channels it is a phone number. Pass something in ``scope`` (e.g. the time
    the form was started) if the same person may genuinely submit the same values again later.
    """
    canonical = json.dumps(
        [sender_id, form, scope, dict(slots)], sort_keys=True, ensure_ascii=False, default=str
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]
    return f"{form[: MAX_IDEMPOTENCY_KEY_LENGTH - 41]}:{digest}"


# --- the client -------------------------------------------------------------------------


Sleep = Callable[[float], Awaitable[None]]


class RecordsClient:
    """Async client for the records API: one shared ``httpx.AsyncClient`` plus retries.

    ``get`` and ``post`` return the parsed JSON body (``None`` for an empty response), raise
    :class:`RecordsRefused` on a 4xx and :class:`RecordsUnavailable` when the backend cannot
    be reached or keeps failing after ``settings.attempts`` tries.
    """

    def __init__(
        self,
        settings: RecordsSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings if settings is not None else RecordsSettings.from_env()
        s = self.settings
        headers = {
            "Accept": f"application/json, {PROBLEM_MEDIA_TYPE}",
            "User-Agent": "linli-actions",
        }
        if s.token:
            headers["Authorization"] = f"Bearer {s.token}"
        else:
            log.warning("SERVICE_TOKEN is not set: the records backend will refuse the actions")
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self._http = httpx.AsyncClient(
            base_url=s.base_url,
            headers=headers,
            timeout=httpx.Timeout(
                s.read_timeout, connect=s.connect_timeout, pool=s.connect_timeout
            ),
            limits=httpx.Limits(
                max_connections=s.max_connections,
                max_keepalive_connections=s.max_keepalive_connections,
            ),
            transport=transport,
            # Service-to-service calls: ignore HTTP(S)_PROXY and friends from the environment.
            trust_env=False,
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        """The backend address requests are sent to."""
        return str(self._http.base_url)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._http.is_closed

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` (relative to the base URL, e.g. ``/api/v1/repairs``) with query params."""
        return await self.request("GET", path, params=params)

    async def post(
        self,
        path: str,
        json: Any = None,
        *,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> Any:
        """POST ``json`` to ``path``; every try carries the same ``Idempotency-Key``.

        Without a key a random one is made for this call, so its retries cannot create a
        duplicate; pass a deterministic key (:func:`form_idempotency_key`) to make separate
        calls count once. Pass ``retry=False`` for a POST the backend does not deduplicate
        and that must not run twice (a state change rather than a create).
        """
        return await self.request(
            "POST",
            path,
            json=json,
            idempotency_key=idempotency_key or new_idempotency_key(),
            retry=retry,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        retry: bool = True,
    ) -> Any:
        """Send one request, retrying transient failures when that is safe; return the JSON.

        Retried only if ``retry`` and the method is idempotent or a key is given.
        """
        method = method.upper()
        safe_to_repeat = method in IDEMPOTENT_METHODS or idempotency_key is not None
        attempts = self.settings.attempts if retry and safe_to_repeat else 1
        response = await self._send_with_retries(
            method, path, params=params, json=json, key=idempotency_key, attempts=attempts
        )
        if response.headers.get(REPLAYED_HEADER, "").lower() == "true":
            log.info("%s %s: replayed the earlier result of key %s", method, path, idempotency_key)
        return _json_body(response, method, path)

    async def _send_with_retries(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        key: str | None,
        attempts: int,
    ) -> httpx.Response:
        """The first 2xx response; raises RecordsRefused or RecordsUnavailable otherwise."""
        headers = {IDEMPOTENCY_HEADER: key} if key is not None else {}
        started = time.monotonic()
        status: int | None = None
        error = "no attempt made"
        detail_zh = UNAVAILABLE_ZH
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._http.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:  # connect/read/write errors and timeouts
                status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                status = response.status_code
                if status < 300:
                    return response
                _raise_if_final(response, method, path, attempt)
                error = f"HTTP {status}"
                retry_after = _retry_after(response)
                if status in RETRYABLE_4XX:
                    # e.g. 429 "too many wrong codes, try in an hour": the backend's own words
                    detail_zh = RecordsRefused.from_response(response).detail_zh
            if attempt == attempts:
                break
            delay = self._delay(attempt, retry_after)
            deadline = self.settings.deadline
            if deadline is not None and time.monotonic() - started + delay >= deadline:
                log.warning("%s %s: giving up before the deadline (%s)", method, path, error)
                break
            log.warning(
                "%s %s failed (%s), retry %d/%d in %.2fs",
                method, path, error, attempt, attempts - 1, delay,
            )  # fmt: skip
            await self._sleep(delay)
        raise RecordsUnavailable(
            f"{method} {path}: records backend unavailable after {attempt} attempt(s): {error}",
            attempts=attempt,
            status=status,
            detail_zh=detail_zh,
        )

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """The backoff before retry number ``retry``, at least the server's Retry-After
        (itself capped at ``backoff_max``)."""
        delay = self.settings.backoff(retry, self._rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.backoff_max))
        return delay

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> RecordsClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


def _raise_if_final(response: httpx.Response, method: str, path: str, attempt: int) -> None:
    """Raise for a non-2xx answer that retrying cannot change (4xx, redirects)."""
    status = response.status_code
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        raise RecordsRefused.from_response(response)
    if status < 400:
        raise RecordsUnavailable(
            f"{method} {path}: unexpected HTTP {status}", attempts=attempt, status=status
        )


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` seconds of a response, if given as a number."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _json_body(response: httpx.Response, method: str, path: str) -> Any:
    """The parsed body of a 2xx response, ``None`` if empty."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise RecordsUnavailable(
            f"{method} {path}: HTTP {response.status_code} with a body that is not JSON",
            attempts=1,
            status=response.status_code,
        ) from None


# --- the shared client ------------------------------------------------------------------

_default_client: RecordsClient | None = None
_default_loop: asyncio.AbstractEventLoop | None = None


def get_client() -> RecordsClient:
    """The action server's shared client, created on first use from the environment.

    A client's connections belong to one event loop, so a new client is made if called from
    a different loop than the one the current client was made in (e.g. separate test runs).
    """
    global _default_client, _default_loop
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    client = _default_client
    if client is None or client.closed or (loop is not None and loop is not _default_loop):
        client = RecordsClient()
        _default_client, _default_loop = client, loop
    return client


async def aclose() -> None:
    """Close the shared client (the next :func:`get_client` makes a new one)."""
    global _default_client, _default_loop
    client, _default_client, _default_loop = _default_client, None, None
    if client is not None:
        await client.aclose()


__all__ = [
    "DEFAULT_RECORDS_URL",
    "UNAVAILABLE_ZH",
    "RecordsClient",
    "RecordsError",
    "RecordsRefused",
    "RecordsSettings",
    "RecordsUnavailable",
    "aclose",
    "form_idempotency_key",
    "get_client",
    "load_env",
    "new_idempotency_key",
    "read_dotenv",
]
