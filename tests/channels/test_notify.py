"""The notifications worker against the real records outbox (served over HTTP, with a clock the
test moves) and the fake Telegram and WeChat servers."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Bot

from channels.notify import (
    WEB_NO_PUSH,
    NotifyWorker,
    Sender,
    TelegramSender,
    WeChatSender,
    build_senders,
)
from channels.records_api import RecordsApi
from channels.wechat_api import WeChatApi
from records.core.clock import ManualClock
from records.main import create_app as create_records_app
from records.models import Base
from records.repository import notifications as notifications_repo
from tests.channels.conftest import new_user_id, settings
from tests.channels.fake_telegram import TOKEN, FakeTelegram, fake_telegram
from tests.channels.fake_wechat import APP_ID, APP_SECRET, FakeWeChatApi, fake_wechat_api
from tests.channels.servers import serving
from tests.conftest import T0, make_settings
from tests.e2e.stack import free_port

OFFER_BUTTONS = [
    {"title": "接单", "payload": '/accept_task{"task_id":7}'},
    {"title": "不接", "payload": '/decline_task{"task_id":7}'},
]


@dataclass
class Outbox:
    """A records backend serving its outbox, and a way to fill it."""

    url: str
    token: str
    clock: ManualClock
    app: Any

    def enqueue(self, channel: str, recipient: str, payload: dict[str, Any]) -> int:
        """Queue one message as the backend's rules do."""
        with self.app.state.session_factory() as session:
            row = notifications_repo.enqueue(
                session, channel=channel, recipient=recipient, kind="test", payload=payload
            )
            session.commit()
            return int(row.id)

    def row(self, notification_id: int) -> dict[str, Any]:
        """An outbox row as the API lists it."""
        auth = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=auth) as client:
            items = client.get("/api/v1/notifications", params={"limit": 100}).json()["items"]
        found: dict[str, Any] = next(i for i in items if i["id"] == notification_id)
        return found


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outbox]:
    """The records app on a fresh SQLite database, over HTTP, with a manual clock."""
    path: Path = tmp_path_factory.mktemp("outbox") / "records.db"
    config = make_settings(f"sqlite:///{path}")
    clock = ManualClock(T0)
    app = create_records_app(config, clock=clock, background_jobs=False)
    Base.metadata.create_all(app.state.engine)
    with serving(app) as url:
        yield Outbox(url, config.service_token, clock, app)
    app.state.engine.dispose()
    app.state.read_engine.dispose()


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    """The fake Bot API server."""
    with fake_telegram() as server:
        yield server


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWeChatApi]:
    """The fake Official Account API."""
    with fake_wechat_api() as server:
        yield server


class Pauses:
    """The worker's pauses between retries, taken without waiting."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


@dataclass
class Rig:
    """A worker wired to the outbox and the fake servers."""

    worker: NotifyWorker
    pauses: Pauses
    outbox: Outbox
    telegram: FakeTelegram
    wechat: FakeWeChatApi


@pytest.fixture
async def rig(outbox: Outbox, telegram: FakeTelegram, wechat: FakeWeChatApi
              ) -> AsyncIterator[Rig]:
    """A fresh worker (its own memory) on the shared outbox."""
    config = settings(notify_channels="telegram,wechat,web", notify_lease_s=30,
                      notify_send_retries=2, notify_retry_pause_s=1.0)
    records = RecordsApi(outbox.url, outbox.token)
    api = WeChatApi(APP_ID, APP_SECRET, api_base=wechat.api_base)
    async with Bot(TOKEN, base_url=telegram.base_url,
                   base_file_url=telegram.base_file_url) as bot:
        pauses = Pauses()
        senders = build_senders(config, bot=bot, wechat=api)
        yield Rig(NotifyWorker(config, records, senders, sleep=pauses), pauses, outbox,
                  telegram, wechat)
    api.close()
    await records.aclose()


async def drain(rig: Rig) -> None:
    """One round of the worker, and everything due is handled."""
    while await rig.worker.run_once():
        pass


async def test_delivers_each_channel_once_with_buttons(rig: Rig) -> None:
    chat = new_user_id()
    offer = {"text": "有一个送餐任务，您能去吗？", "buttons": OFFER_BUTTONS, "task_id": 7}
    to_telegram = rig.outbox.enqueue("telegram", f"telegram:{chat}", offer)
    to_wechat = rig.outbox.enqueue("wechat", "wechat:oVolunteer1", offer)
    to_web = rig.outbox.enqueue("web", "web:kitchen-tablet", {"text": "您的报修已受理。"})
    to_phone = rig.outbox.enqueue("phone", "phone:+8613800138000", {"text": "明天记得取餐。"})

    await drain(rig)
    await drain(rig)  # nothing is sent twice

    sent = rig.telegram.sent("sendMessage", chat)
    assert len(sent) == 1
    assert sent[0].params["text"] == offer["text"]
    assert sent[0].buttons == [("接单", '/accept_task{"task_id":7}'),
                               ("不接", '/decline_task{"task_id":7}')]
    texts = rig.wechat.texts("oVolunteer1")
    assert len(texts) == 1
    assert texts[0].startswith(str(offer["text"]))
    assert ">接单</a>" in texts[0]
    assert "msgmenuid=%2Faccept_task" in texts[0]
    assert rig.outbox.row(to_telegram)["state"] == "sent"
    assert rig.outbox.row(to_wechat)["state"] == "sent"
    web = rig.outbox.row(to_web)
    assert (web["state"], web["last_error"]) == ("pending", WEB_NO_PUSH)
    phone = rig.outbox.row(to_phone)
    assert (phone["state"], phone["attempts"]) == ("pending", 0)  # left for the phone line


async def test_a_500_is_retried_with_backoff_then_left_to_the_outbox(rig: Rig) -> None:
    chat = new_user_id()
    quick = rig.outbox.enqueue("telegram", f"telegram:{chat}", {"text": "维修师傅已出发。"})
    rig.telegram.fail_next("sendMessage", 500)
    await drain(rig)
    assert len(rig.telegram.sent("sendMessage", chat)) == 2
    assert rig.pauses.taken == [1.0]
    assert rig.outbox.row(quick)["state"] == "sent"

    stubborn = rig.outbox.enqueue("telegram", f"telegram:{chat}", {"text": "明天的午饭别忘了。"})
    rig.telegram.fail_next("sendMessage", 500, 500, 500)
    await drain(rig)
    assert rig.pauses.taken == [1.0, 1.0, 2.0]  # in-lease retries, doubling
    row = rig.outbox.row(stubborn)
    assert row["state"] == "pending"
    assert "Internal Server Error" in row["last_error"]
    assert len(rig.telegram.sent("sendMessage", chat)) == 5

    await drain(rig)  # not due yet: the outbox's own backoff holds it
    assert len(rig.telegram.sent("sendMessage", chat)) == 5
    rig.outbox.clock.advance(timedelta(seconds=31))
    await drain(rig)
    assert len(rig.telegram.sent("sendMessage", chat)) == 6
    assert rig.outbox.row(stubborn)["state"] == "sent"


async def test_permanent_refusals_are_reported_without_retrying(rig: Rig) -> None:
    chat = new_user_id()
    rig.telegram.blocked.add(chat)
    blocked = rig.outbox.enqueue("telegram", f"telegram:{chat}", {"text": "您好"})
    rig.wechat.failures.append({"errcode": 45015, "errmsg": "response out of time limit"})
    late = rig.outbox.enqueue("wechat", "wechat:oGoneQuiet", {"text": "您好"})
    nonsense = rig.outbox.enqueue("telegram", "telegram:not-a-number", {"text": "您好"})
    empty = rig.outbox.enqueue("telegram", f"telegram:{new_user_id()}", {"note": "no text"})
    await drain(rig)
    assert len(rig.telegram.sent("sendMessage", chat)) == 1
    assert rig.pauses.taken == []
    assert "bot was blocked" in rig.outbox.row(blocked)["last_error"]
    assert "45015" in rig.outbox.row(late)["last_error"]
    assert rig.outbox.row(nonsense)["last_error"].startswith("permanent: telegram id")
    assert rig.outbox.row(empty)["last_error"] == "permanent: payload has no text"


class LosesReports(httpx.AsyncBaseTransport):
    """A real connection to records, except that "sent" reports are cut off while `down`."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.down = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Refuse the connection for sent reports while down, else pass through."""
        if self.down and request.url.path.endswith("/sent"):
            raise httpx.ConnectError("records unreachable", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the real transport."""
        await self.inner.aclose()


async def test_sent_but_unreported_is_reported_not_sent_again(
    outbox: Outbox, telegram: FakeTelegram
) -> None:
    chat = new_user_id()
    config = settings(notify_channels="telegram", notify_lease_s=5, notify_retry_pause_s=0)
    transport = LosesReports()
    records = RecordsApi(outbox.url, outbox.token, transport=transport)
    pauses = Pauses()
    async with Bot(TOKEN, base_url=telegram.base_url,
                   base_file_url=telegram.base_file_url) as bot:
        worker = NotifyWorker(config, records, {"telegram": TelegramSender(bot)}, sleep=pauses)
        notice = outbox.enqueue("telegram", f"telegram:{chat}", {"text": "投票今天开始。"})
        await worker.run_once()  # sent, but the report is lost
        assert outbox.row(notice)["state"] == "sending"
        outbox.clock.advance(timedelta(seconds=6))  # the lease runs out: offered again
        transport.down = False
        await worker.run_once()
    await records.aclose()
    assert len(telegram.sent("sendMessage", chat)) == 1
    assert outbox.row(notice)["state"] == "sent"
    assert worker.stats.reported_again == 1


async def test_worker_loop_delivers_and_backs_off_when_records_is_down(
    outbox: Outbox, telegram: FakeTelegram, wechat: FakeWeChatApi,
    caplog: pytest.LogCaptureFixture
) -> None:
    chat = new_user_id()
    config = settings(notify_channels="telegram", notify_poll_interval_s=0.05,
                      notify_backoff_max_s=0.2)
    async with Bot(TOKEN, base_url=telegram.base_url,
                   base_file_url=telegram.base_file_url) as bot:
        api = WeChatApi(APP_ID, APP_SECRET, api_base=wechat.api_base)
        senders: dict[str, Sender] = {"telegram": TelegramSender(bot),
                                      "wechat": WeChatSender(api)}
        live = RecordsApi(outbox.url, outbox.token)
        stop = asyncio.Event()
        loop = asyncio.create_task(NotifyWorker(config, live, senders).run(stop))
        outbox.enqueue("telegram", f"telegram:{chat}", {"text": "您的报修已修好。"})
        for _ in range(400):
            if telegram.sent("sendMessage", chat):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await loop
        await live.aclose()

        dead = RecordsApi(f"http://127.0.0.1:{free_port()}", outbox.token)
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="channels"):
            loop = asyncio.create_task(NotifyWorker(config, dead, senders).run(stop))
            for _ in range(200):
                if sum("records unreachable" in r.getMessage() for r in caplog.records) >= 3:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await loop
        await dead.aclose()
        api.close()
    assert len(telegram.sent("sendMessage", chat)) == 1
    waits = [r.getMessage().rsplit("next try in ", 1)[1] for r in caplog.records
             if "records unreachable" in r.getMessage()]
    assert waits[:3] == ["0.1 s", "0.2 s", "0.2 s"]  # doubling, capped
