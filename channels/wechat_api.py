"""The WeChat Official Account API calls we make (wechatpy): customer-service text, media."""

import asyncio
import logging
from typing import Any

from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

logger = logging.getLogger(__name__)

# Customer-service messages may only be sent within 48 hours of the user's last message.
OUT_OF_TIME_LIMIT = 45015
# The user has unfollowed the account.
USER_UNFOLLOWED = 43004
PERMANENT_ERRORS = frozenset({OUT_OF_TIME_LIMIT, USER_UNFOLLOWED, 40003})


class WeChatSendError(Exception):
    """WeChat refused or could not take a call; `permanent` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class _Client(WeChatClient):  # type: ignore[misc]  # wechatpy ships no type information
    """wechatpy's client with every call, the access token's too, under one API base."""

    def __init__(self, app_id: str, secret: str, api_base: str, timeout: float) -> None:
        super().__init__(app_id, secret, timeout=timeout)
        self.API_BASE_URL = api_base

    def fetch_access_token(self) -> Any:
        """The access token from `<api base>token` (wechatpy hard-codes the public host)."""
        return self._fetch_access_token(
            url=f"{self.API_BASE_URL}token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class WeChatApi:
    """Async wrappers around wechatpy's (blocking) client, run in worker threads."""

    def __init__(self, app_id: str, secret: str, *, api_base: str, timeout: float = 10.0) -> None:
        self._client = _Client(app_id, secret, api_base if api_base.endswith("/") else api_base
                               + "/", timeout)

    async def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message to a follower."""
        await self._call(self._client.message.send_text, openid, text)

    async def download_media(self, media_id: str) -> bytes:
        """A temporary media file (e.g. a voice message) by its id."""
        response = await self._call(self._client.media.download, media_id)
        content = getattr(response, "content", None)
        if not isinstance(content, bytes):
            raise WeChatSendError(f"media {media_id!r} not returned as a file")
        return content

    async def _call(self, function: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(function, *args)
        except WeChatClientException as error:
            code = error.errcode
            raise WeChatSendError(
                f"wechat error {code}: {error.errmsg}", permanent=code in PERMANENT_ERRORS
            ) from error
        except OSError as error:  # requests' connection errors are OSErrors
            raise WeChatSendError(f"wechat unreachable: {type(error).__name__}") from error

    def close(self) -> None:
        """Close the HTTP session."""
        self._client._http.close()
