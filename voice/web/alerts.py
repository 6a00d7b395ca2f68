"""Emergency alerts straight to the records backend, for when the dialogue engine is down.

一键呼叫 normally goes through the dialogue ("/emergency"), which raises the alert and answers
in words. When the dialogue cannot answer, the gateway raises the alert itself: an emergency
never waits for a repaired server. The Idempotency-Key comes from the page's press id, so a
retried press (or a retried request) never raises a second alert.
"""

import asyncio
import hashlib
import logging
import uuid

import httpx

logger = logging.getLogger(__name__)

ALERTS_PATH = "/api/v1/alerts"
ATTEMPTS = 3
RETRY_PAUSE_S = 0.5
DESCRIPTION = "一键呼叫（语音网页）"


def alert_key(sender_id: str, press: str) -> str:
    """The Idempotency-Key of one emergency press (actions/core.py computes the same)."""
    # Hashed: the key is stored, and a sender may be a phone number.
    return hashlib.sha256(f"voice-alert|{sender_id}|{press}".encode()).hexdigest()


class AlertFailed(Exception):
    """The records backend could not be reached or refused the alert."""


class RecordsAlerts:
    """Raises alerts through the records API with the service token."""

    def __init__(
        self,
        records_url: str,
        service_token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=records_url.rstrip("/"),
            headers={"Authorization": f"Bearer {service_token}"},
            timeout=timeout,
            transport=transport,
        )

    async def raise_alert(self, sender_id: str, press_id: str | None) -> str:
        """Raise an alert for the sender; the backend's words for the user."""
        key = alert_key(sender_id, press_id or uuid.uuid4().hex)
        channel = sender_id.split(":", 1)[0] if ":" in sender_id else "web"
        body = {
            "kind": "other",
            "identity": sender_id,
            "channel": channel[:20],
            "description": DESCRIPTION,
        }
        for attempt in range(ATTEMPTS):
            try:
                response = await self._http.post(
                    ALERTS_PATH, json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError as error:
                # Safe to send again: the same key never raises a second alert.
                logger.warning("alert attempt %d failed: %s", attempt + 1, type(error).__name__)
            else:
                if response.status_code < 300:
                    message: str = response.json().get("message") or ""
                    return message
                if response.status_code < 500:
                    logger.error("records refused an alert: %s", response.status_code)
                    raise AlertFailed(f"records answered {response.status_code}")
                logger.warning("alert attempt %d: records answered %s", attempt + 1,
                               response.status_code)
            await asyncio.sleep(RETRY_PAUSE_S * (attempt + 1))
        raise AlertFailed("records could not be reached")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
