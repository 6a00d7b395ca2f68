"""Volunteer dispatch end to end on Telegram, through the real Rasa server, action server and
records backend: a resident books a meal with delivery, a volunteer receives the offer (through
the notifications worker and a fake Telegram Bot API server), taps 接单, reports it done, the
resident is told and confirms, and the volunteer's points are credited."""

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from telegram import Bot

from channels.app import create_app
from channels.notify import NotifyWorker, TelegramSender
from channels.records_api import RecordsApi
from channels.telegram_webhook import WEBHOOK_PATH
from tests.channels.conftest import settings
from tests.channels.fake_telegram import (
    TOKEN,
    FakeTelegram,
    callback_update,
    fake_telegram,
    post_update,
    text_update,
)
from tests.channels.servers import serving
from tests.e2e.stack import Stack

SECRET = "dispatch-e2e-secret"
RESIDENT_CHAT, VOLUNTEER_CHAT = 88_000_001, 88_000_002
EVERY_DAY = {"weekdays": [1, 2, 3, 4, 5, 6, 7], "slots": ["morning", "afternoon", "evening"]}
# Answers to the lunch booking's questions (the read-back first: it repeats other questions'
# words), as in tests/e2e/test_service_dialogues.py but with delivery.
BOOKING_ANSWERS = [
    ("对吗", "对"),
    ("几份", "一份"),
    ("送", "送到家"),
    ("忌口", "没有"),
    ("对不对", "对"),
    ("确认", "对"),
]


@pytest.fixture(scope="module", autouse=True)
def _timedelta_durations() -> Iterator[None]:
    """python-telegram-bot warns on int durations unless opted in (as the channels do)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PTB_TIMEDELTA", "true")
        yield


@dataclass
class Telegram:
    """The channels app on the stack, the fake Bot API, and the notifications worker."""

    stack: Stack
    fake: FakeTelegram
    webhook: str
    seen: dict[int, int] = field(default_factory=dict)

    def say(self, chat: int, text: str) -> str:
        """Send a message as `chat`; the bot's new texts to that chat, joined."""
        post_update(self.webhook, text_update(chat, text), SECRET)
        return self.new_texts(chat)

    def tap(self, chat: int, title: str) -> str:
        """Tap the button titled `title` on the latest keyboard sent to `chat`."""
        message = self.fake.message_with_buttons(chat)
        buttons = {b["text"]: b["callback_data"] for row in
                   message["reply_markup"]["inline_keyboard"] for b in row}
        post_update(self.webhook, callback_update(chat, buttons[title], message), SECRET)
        return self.new_texts(chat)

    def new_texts(self, chat: int) -> str:
        """Texts sent to `chat` since the last look."""
        texts = self.fake.texts(chat)
        start, self.seen[chat] = self.seen.get(chat, 0), len(texts)
        return "\n".join(texts[start:])

    def deliver(self) -> None:
        """One round of the notifications worker (Telegram rows of the outbox)."""
        asyncio.run(self._deliver())

    async def _deliver(self) -> None:
        config = settings(notify_channels="telegram", notify_retry_pause_s=0)
        records = RecordsApi(self.stack.records_url, self.stack.service_token)
        async with Bot(TOKEN, base_url=self.fake.base_url,
                       base_file_url=self.fake.base_file_url) as bot:
            worker = NotifyWorker(config, records, {"telegram": TelegramSender(bot)})
            while await worker.run_once():
                pass
        await records.aclose()


@pytest.fixture(scope="module")
def telegram(stack: Stack) -> Iterator[Telegram]:
    """Telegram in webhook mode in front of the stack."""
    with fake_telegram() as fake:
        config = settings(
            rasa_url=stack.rasa_url, records_url=stack.records_url,
            service_token=stack.service_token, telegram_token=TOKEN,
            telegram_webhook_secret=SECRET, telegram_base_url=fake.base_url,
            telegram_base_file_url=fake.base_file_url,
        )
        with serving(create_app(config, voice=None)) as base:
            yield Telegram(stack, fake, base + WEBHOOK_PATH)


def _all(records: httpx.Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = records.get(path, params={"limit": 100, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"] or not page["items"]:
            return items


def _neighbours(records: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """An elder, and a neighbour in the same household unit, where no one else delivers meals:
    the neighbour, signed up, is then the best-ranked volunteer for the elder's delivery."""
    residents = _all(records, "/api/v1/residents")
    volunteers = _all(records, "/api/v1/volunteers")
    enrolled = {v["resident_id"] for v in volunteers}
    delivering = {v["resident_id"] for v in volunteers if "meal_delivery" in v["skills"]}

    def unit(person: dict[str, Any]) -> tuple[int, int] | None:
        address = person.get("address")
        return (address["building_id"], address["entrance"]) if address else None

    busy_units = {unit(r) for r in residents if r["id"] in delivering}
    for elder in residents:
        if not elder["is_elderly"] or unit(elder) is None or unit(elder) in busy_units:
            continue
        for neighbour in residents:
            if (neighbour["id"] != elder["id"] and unit(neighbour) == unit(elder)
                    and neighbour["id"] not in enrolled and not neighbour["is_elderly"]):
                return elder, neighbour
    raise AssertionError("the demo community has no elder with a free neighbour")


def _link(telegram: Telegram, records: httpx.Client, chat: int, resident_id: int) -> None:
    code = records.post(f"/api/v1/residents/{resident_id}/verification-codes").json()["code"]
    assert "绑定成功" in telegram.say(chat, f"/start {code}")


def _book_lunch_with_delivery(telegram: Telegram) -> list[tuple[str, str]]:
    transcript = []
    text = "我想订明天的午饭"
    for _ in range(12):
        reply = telegram.say(RESIDENT_CHAT, text)
        transcript.append((text, reply))
        if any(word in reply for word in ("订好", "预订成功", "已经帮您订")):
            return transcript
        text = next((answer for key, answer in BOOKING_ANSWERS if key in reply), "")
        assert text, f"no answer for {reply!r}: {transcript}"
    raise AssertionError(f"booking not finished: {transcript}")


def _task(records: httpx.Client, task_id: int) -> dict[str, Any]:
    task: dict[str, Any] = records.get(f"/api/v1/volunteers/tasks/{task_id}").json()
    return task


def test_meal_delivery_offer_accept_done_confirm_points(telegram: Telegram) -> None:
    stack = telegram.stack
    with stack.records() as records:
        elder, neighbour = _neighbours(records)
        signed_up = records.post(
            "/api/v1/volunteers",
            json={"resident_id": neighbour["id"], "skills": ["meal_delivery"],
                  "availability": EVERY_DAY},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert signed_up.status_code == 201, signed_up.text
        volunteer_id = signed_up.json()["id"]
        _link(telegram, records, RESIDENT_CHAT, elder["id"])
        _link(telegram, records, VOLUNTEER_CHAT, neighbour["id"])
        telegram.new_texts(RESIDENT_CHAT)
        telegram.new_texts(VOLUNTEER_CHAT)

        # The elder books tomorrow's lunch, delivered, by chatting on Telegram.
        transcript = _book_lunch_with_delivery(telegram)
        bookings = records.post("/api/v1/canteen/bookings/mine",
                                json={"identity": f"telegram:{RESIDENT_CHAT}"}).json()
        items = bookings["items"] if isinstance(bookings, dict) else bookings
        booking = next(b for b in items if b["slot"] == "lunch")
        assert booking["delivery"] is True, transcript
        tasks = _all(records, "/api/v1/volunteers/tasks?kind=meal_delivery")
        task = next(t for t in tasks if t["booking_id"] == booking["id"])
        assert task["status"] == "offered"

        # The worker delivers the offer to the volunteer, with 接单 / 不接 buttons.
        telegram.deliver()
        offer = telegram.new_texts(VOLUNTEER_CHAT)
        assert offer, "no offer reached the volunteer"
        titles = [t for t, _ in telegram.fake.sent("sendMessage", VOLUNTEER_CHAT)[-1].buttons]
        assert titles == ["接单", "不接"]

        # One tap accepts; the answer gives the address.
        accepted = telegram.tap(VOLUNTEER_CHAT, "接单")
        assert "交给您了" in accepted
        assert elder["address"]["room"] in accepted
        task = _task(records, task["id"])
        assert (task["status"], task["volunteer_id"]) == ("accepted", volunteer_id)

        # The volunteer reports it done; the elder is told and confirms with a tap.
        telegram.say(VOLUNTEER_CHAT, "做完了")
        assert _task(records, task["id"])["status"] == "done"
        telegram.deliver()
        told = telegram.new_texts(RESIDENT_CHAT)
        assert told, "the resident was not told"
        telegram.tap(RESIDENT_CHAT, "确认完成")
        task = _task(records, task["id"])
        assert task["confirmed_at"] is not None

        # Points are credited once, the volunteer hears of it and can ask.
        me = records.post("/api/v1/volunteers/me",
                          json={"identity": f"telegram:{VOLUNTEER_CHAT}"}).json()
        assert me["points"] == task["points"] > 0
        telegram.deliver()
        assert str(task["points"]) in telegram.new_texts(VOLUNTEER_CHAT)
        assert str(task["points"]) in telegram.say(VOLUNTEER_CHAT, "我的积分")
        telegram.deliver()
        assert telegram.new_texts(VOLUNTEER_CHAT) == ""  # nothing delivered twice
