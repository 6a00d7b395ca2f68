"""The few records API calls the channels make: linking identities and draining the outbox."""

import logging
from dataclasses import dataclass
from typing import Any

import httpx

logger = logging.getLogger(__name__)

RECORDS_DOWN_TEXT = "抱歉，系统暂时连不上，请稍后再试。"


class RecordsUnavailable(Exception):
    """The records backend could not be reached or failed (5xx)."""


class RecordsRefused(Exception):
    """The records backend refused the request (4xx); `detail` is Chinese, fit for users."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Claimed:
    """One outbox message leased to this worker."""

    id: int
    channel: str
    recipient: str
    kind: str
    payload: dict[str, Any]
    attempts: int


class RecordsApi:
    """A bearer-token client of the records API."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.post(path, json=body or {})
        except httpx.HTTPError as error:
            raise RecordsUnavailable(f"records unreachable: {type(error).__name__}") from error
        if response.status_code >= 500:
            raise RecordsUnavailable(f"records answered {response.status_code}")
        if response.status_code >= 400:
            detail = ""
            try:
                problem = response.json()
                detail = str(problem.get("detail") or "") if isinstance(problem, dict) else ""
            except ValueError:
                pass
            raise RecordsRefused(response.status_code, detail or "请求没有被接受。")
        try:
            return response.json()
        except ValueError as error:
            raise RecordsUnavailable("records answered something that is not JSON") from error

    async def verify_identity(self, identity: str, code: str) -> dict[str, Any]:
        """Link `identity` to the resident a staff-issued code belongs to; the identity answer."""
        found = await self._post("/api/v1/identities/verify", {"identity": identity, "code": code})
        return found if isinstance(found, dict) else {}

    async def claim(self, *, channel: str, limit: int, lease_seconds: int) -> list[Claimed]:
        """Lease due outbox messages of one channel."""
        rows = await self._post(
            "/api/v1/notifications/claim",
            {"channel": channel, "limit": limit, "lease_seconds": lease_seconds},
        )
        claimed = []
        for row in rows if isinstance(rows, list) else []:
            try:
                claimed.append(
                    Claimed(
                        id=int(row["id"]),
                        channel=str(row["channel"]),
                        recipient=str(row["recipient"]),
                        kind=str(row["kind"]),
                        payload=dict(row.get("payload") or {}),
                        attempts=int(row.get("attempts") or 0),
                    )
                )
            except (KeyError, TypeError, ValueError):
                logger.error("outbox answered a malformed row; skipped (its lease will expire)")
        return claimed

    async def mark_sent(self, notification_id: int) -> None:
        """Report a delivery (repeating it is harmless)."""
        await self._post(f"/api/v1/notifications/{notification_id}/sent")

    async def mark_failed(self, notification_id: int, error: str) -> None:
        """Report a failed delivery; the outbox retries with backoff or gives up."""
        await self._post(f"/api/v1/notifications/{notification_id}/failed", {"error": error[:2000]})

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
