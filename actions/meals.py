"""Canteen meals (老年食堂 / 助餐): book a meal (meal_form) and hear the menu.

Cancelling a booking is in :mod:`actions.meals_cancel`; both share the helpers here.

The booking form asks, one question at a time: which day, which meal, then checks the menu
right away (no menu, past the cut-off, full, not registered or already booked all end the
form with the reason), how many portions, delivery (only offered with a home address on
record), dietary wishes, and a read-back before anything is booked. The records backend
decides; the bot only relays its Chinese answers.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT
from rasa_sdk.types import DomainDict

from actions import normalize
from actions.common import (
    ask_choice,
    ask_free_text,
    ask_number,
    ask_yes_no,
    entity_value,
    identity_of,
    latest_text,
    say_error,
)
from actions.records_client import (
    RecordsError,
    RecordsRefused,
    RecordsUnavailable,
    form_idempotency_key,
    get_client,
)

FORM = "meal_form"
SUBMIT = "action_meal_submit"

MENUS_PATH = "/api/v1/canteen/menus"
BOOKINGS_PATH = "/api/v1/canteen/bookings"
MY_BOOKINGS_PATH = "/api/v1/canteen/bookings/mine"

# The backend's own limit (settings.canteen_max_quantity) and its wording.
MAX_QUANTITY = 10
SLOT_NAMES = {"breakfast": "早饭", "lunch": "午饭", "dinner": "晚饭"}
WEEKDAYS = "一二三四五六日"

BOOKING_SLOTS = (
    "meal_date",
    "meal_slot",
    "meal_quantity",
    "meal_delivery",
    "meal_has_notes",
    "meal_notes",
    "meal_confirm",
)
FORM_SLOTS = (*BOOKING_SLOTS, "meal_menu", "meal_stop")

VERIFY_HINT = "有验证码的话，请说“验证身份”。"
NOT_SUBMITTED = "好的，这次先不提交。"
STOPPED = "好的，这次先不订了。"
ASK_DAY_AGAIN = "没听清是哪一天。请说今天、明天，或者几号。"
ASK_SLOT_AGAIN = "请说是早饭、午饭，还是晚饭。"
ASK_QUANTITY_AGAIN = "请说要几份，比如一份、两份。"
ASK_DELIVERY_AGAIN = "送到家请说“要”，自己来食堂吃请说“不要”。"
ASK_HAS_NOTES_AGAIN = "有忌口请说“有”，没有请说“没有”。"
ASK_CONFIRM_AGAIN = "对的话请说“对”，不对请说“不对”。"
ONE_DAY = "一次订一天的一顿饭。请说是哪一天，比如明天。"
PAST_DAY = "那天已经过去了，请说今天以后的日子。"
TOO_MANY = f"每次可以订1到{MAX_QUANTITY}份，请再说一下要几份。"
NO_ADDRESS = "送餐要先登记住址，请联系社区工作人员登记。这次先按到食堂吃记下。"

# Said instead of an answer: the resident no longer wants to book.
STOP_WORDS = ("不订了", "不定了", "不要了", "算了", "不用了", "不吃了", "取消", "不订")
# Said for several days at once (这周每天): one booking is one day.
MULTI_DAY_WORDS = ("这周", "本周", "下周", "每天", "天天", "这几天", "周末", "这礼拜", "下礼拜")
# Doubt in an answer to a read-back (normalize.yes_no lets the first clause decide).
DOUBT_WORDS = ("不知道", "不确定", "不清楚", "想想", "考虑", "等等", "等一下", "吗", "?", "？")
# Delivery wishes in the resident's words.
DELIVERY_WORDS = ("送到家", "送上门", "送餐", "送饭", "送到", "送过来", "送家里")
NO_DELIVERY_WORDS = (
    "不送", "不用送", "别送", "不要送", "自己去", "自己来", "去食堂", "到食堂", "堂食", "食堂吃",
)  # fmt: skip
# Dietary wishes (trigger words -> what the kitchen reads); the tags of the demo dishes too.
DIET_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("少盐", "少放盐", "别太咸", "不要太咸", "低盐"), "少盐"),
    (("少油", "油少", "不要太油", "别太油"), "少油"),
    (("少糖", "无糖", "不要糖", "血糖", "糖尿病", "控糖"), "少糖"),
    (("不要辣", "不吃辣", "不辣", "别放辣", "不放辣", "不能吃辣"), "不要辣"),
    (("软", "烂", "牙口", "嚼不动"), "软烂一点"),
    (("清淡",), "清淡"),
    (("香菜",), "不要香菜"),
    (("吃素", "素食"), "吃素"),
)
# Words asking about kinds of dishes -> the dish tag the canteen uses.
TAG_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("少盐", "咸", "低盐"), "少盐"),
    (("软", "烂", "牙口", "嚼"), "软食"),
    (("清淡",), "清淡"),
    (("素",), "素"),
    (("糖",), "控糖"),
)


# --- time and wording ---------------------------------------------------------------------


def now() -> datetime:
    """The current time in Asia/Shanghai (tests replace this)."""
    return normalize.local_now(datetime.now(UTC))


def day_words(day: date, today: date) -> str:
    """今天 / 明天 / 后天, else the date with its weekday: 11月28日周六."""
    relative = {0: "今天", 1: "明天", 2: "后天"}
    offset = (day - today).days
    if offset in relative:
        return relative[offset]
    return f"{day.month}月{day.day}日周{WEEKDAYS[day.weekday()]}"


def meal_words(day: date, slot: str | None, today: date) -> str:
    """E.g. 明天午饭, 11月28日周六晚饭."""
    return day_words(day, today) + SLOT_NAMES.get(slot or "", "")


def when_words(day: Any, slot: str | None, today: date) -> str:
    """meal_words for a slot value that should be an ISO date (whatever it holds)."""
    parsed = to_day(day, today)
    if parsed is None:
        return f"{day or ''}{SLOT_NAMES.get(slot or '', '')}"
    return meal_words(parsed, slot, today)


def yuan(cents: int) -> str:
    """Money as said aloud, like the backend: 12元, 9.60元."""
    whole, rest = divmod(int(cents), 100)
    return f"{whole}元" if rest == 0 else f"{whole}.{rest:02d}元"


# --- reading values -----------------------------------------------------------------------


def to_day(value: Any, today: date) -> date | None:
    """A day from an ISO date (button payloads), a phrase (明天, 下周一, 5号) or None."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return normalize.parse_date(text, today=today)


def to_slot(value: Any) -> str | None:
    """breakfast / lunch / dinner from a canonical value or words (中午, 晚饭)."""
    if value in SLOT_NAMES:
        return str(value)
    if isinstance(value, str):
        return normalize.parse_meal_slot(value)
    return None


def to_quantity(value: Any) -> int | None:
    """Portions from an int or words (两份, 俩, 2); None when no number is said."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return normalize.parse_quantity(value)
    return None


def to_yes_no(value: Any) -> bool | None:
    """A yes/no answer from the affirm/deny mapping (bool) or the words said."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return normalize.yes_no(value)
    return None


def confirmation(value: Any) -> bool | None:
    """A yes/no answer to a read-back, stricter than :func:`to_yes_no`: any doubt in the
    words (嗯…不知道, 对吗?) is no answer, since a yes books or cancels."""
    if isinstance(value, str) and any(word in value for word in DOUBT_WORDS):
        return None
    return to_yes_no(value)


def diet_notes(text: str) -> str | None:
    """The dietary wishes named in the text, in the kitchen's words: 少盐、软烂一点."""
    found = [note for words, note in DIET_WORDS if any(w in text for w in words)]
    return "、".join(dict.fromkeys(found)) or None


def delivery_answer(value: Any) -> bool | None:
    """Delivery wanted? 送到家 yes, 自己去食堂 no, else a plain yes/no."""
    if isinstance(value, bool):
        return value
    text = str(value or "")
    if any(w in text for w in NO_DELIVERY_WORDS):
        return False
    if any(w in text for w in DELIVERY_WORDS):
        return True
    return normalize.yes_no(text)


def has_answer(value: Any) -> bool | None:
    """An answer to "有没有…": 有 yes, 没有 no, else a plain yes/no."""
    if isinstance(value, bool):
        return value
    text = "".join(str(value or "").split())
    if text.startswith(("没", "无")):
        return False
    if text.startswith("有"):
        return True
    return normalize.yes_no(text)


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def wants_to_stop(tracker: Tracker, words: Iterable[str] = STOP_WORDS) -> bool:
    """Whether the resident said they no longer want this (不订了, 算了, 取消…)."""
    text = latest_text(tracker)
    return any(word in text for word in words)


# --- form bookkeeping ---------------------------------------------------------------------


def activated_now(tracker: Tracker, form: str) -> bool:
    """Whether the form was activated in this turn (its ActiveLoop event follows the
    latest user message)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "active_loop" and event.get("name") == form:
            return True
    return False


def extracted_now(tracker: Tracker) -> set[str]:
    """Slots given a value from the latest user message.

    The events the form passes to its validation end with the slot candidates (every
    prefilled slot, also values left from an earlier, interrupted run); the values taken
    from this message are the slot events between the user message and that block.
    """
    events = tracker.events
    end = len(events)
    while end and events[end - 1].get("event") == "slot":
        end -= 1
    names: set[str] = set()
    for event in reversed(events[:end]):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot" and event.get("value") is not None:
            names.add(str(event.get("name")))
    return names


def form_started(tracker: Tracker, form: str) -> str:
    """When this run of the form began (scopes its idempotency key): the timestamp of its
    latest activation."""
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == form:
            return str(event.get("timestamp") or "")
    return ""


def reset(slots: Iterable[str]) -> list[EventType]:
    """Clear the given slots."""
    return [SlotSet(name, None) for name in slots]


def tell_refusal(dispatcher: CollectingDispatcher, error: RecordsError) -> None:
    """Say why it was not done; a resident the records do not know hears how to verify."""
    if isinstance(error, RecordsRefused) and error.status == 403:
        dispatcher.utter_message(text=f"{error.detail_zh}{VERIFY_HINT}")
    else:
        say_error(dispatcher, error)


class MealsFormValidation(FormValidationAction):
    """Validation shared by the canteen forms.

    Values left from an earlier run that was interrupted (an emergency, a person) are
    cleared when the form starts again; values in the first message are validated quietly
    (a wrong guess is simply asked for). A validator that stops the form sets the stop
    slot; the form then ends and its submit action runs (and only clears the slots).
    """

    form_slots: tuple[str, ...] = ()
    validated_slots: tuple[str, ...] = ()
    stop_slot = ""
    submit_action = ""

    @abstractmethod
    def name(self) -> str:
        """validate_<form>; abstract, so the action server does not register this base."""

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """Nothing more to ask once stopped."""
        if tracker.get_slot(self.stop_slot):
            return []
        return list(domain_slots)

    async def next_requested_slot(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> EventType:
        """Always name the next slot (None: the form is done), also when every slot is needed."""
        required = await self.required_slots(self.domain_slots(domain), dispatcher, tracker, domain)
        missing = next((s for s in required if tracker.slots.get(s) is None), None)
        return SlotSet(REQUESTED_SLOT, missing)

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Validate this turn's candidates in form order, then settle what follows."""
        candidates = tracker.slots_to_validate()
        updates: dict[str, Any] = {}
        activation = activated_now(tracker, self.form_name())
        if activation:
            fresh = extracted_now(tracker)
            stale = [n for n in self.form_slots if n not in fresh and tracker.get_slot(n)]
            updates.update(dict.fromkeys(stale))
            candidates = {k: v for k, v in candidates.items() if k in fresh}
            tracker.slots.update(updates)
        for name in self.validated_slots:
            if tracker.get_slot(self.stop_slot):
                break
            if candidates.get(name) is None:
                continue
            result = await getattr(self, f"validate_{name}")(
                candidates[name], dispatcher, tracker, domain
            )
            updates.update(result)
            tracker.slots.update(result)
        # A turn with nothing to validate must change nothing, or the form would not give
        # way to what the resident said instead (an emergency, "repeat").
        if (candidates or activation) and not tracker.get_slot(self.stop_slot):
            result = await self.settle(dispatcher, tracker, activation=activation)
            updates.update(result)
            tracker.slots.update(result)
        events: list[EventType] = [SlotSet(k, v) for k, v in updates.items()]
        if tracker.get_slot(self.stop_slot):
            # Also when the form stops as it starts, where no rule follows the form.
            events.append(FollowupAction(self.submit_action))
        return events

    async def settle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, *, activation: bool
    ) -> dict[str, Any]:
        """Whatever follows from the validated values (lookups, defaults)."""
        return {}

    def quiet(self, tracker: Tracker) -> bool:
        """Whether this is the first message (stop words are not looked for there)."""
        return activated_now(tracker, self.form_name())

    def reject(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        slot: str,
        message: str,
        *,
        unclear: bool = False,
    ) -> dict[str, Any]:
        """Clear the slot so it is asked again, saying why.

        An ``unclear`` value (nothing of the kind in it) is dropped without comment when it
        was a guess from the first message, or when the message gave another slot instead
        (asked the quantity, said 后天晚饭): the next question is enough.
        """
        answered_else = set(tracker.slots_to_validate()) - {slot, REQUESTED_SLOT}
        if not (unclear and (self.quiet(tracker) or answered_else)):
            dispatcher.utter_message(text=message)
        return {slot: None}

    def stop(self, dispatcher: CollectingDispatcher, message: str | None) -> dict[str, Any]:
        """End the form (after saying why)."""
        if message:
            dispatcher.utter_message(text=message)
        return {self.stop_slot: True}


# --- booking ----------------------------------------------------------------------------


class ValidateMealForm(MealsFormValidation):
    """Normalise the booking answers; check the menu as soon as the day and meal are known."""

    form_slots = FORM_SLOTS
    validated_slots = BOOKING_SLOTS
    stop_slot = "meal_stop"
    submit_action = SUBMIT

    def name(self) -> str:
        return "validate_meal_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """The notes themselves are only asked after a yes to "any dietary wishes?"."""
        slots = await super().required_slots(domain_slots, dispatcher, tracker, domain)
        if tracker.get_slot("meal_has_notes") is not True:
            slots = [s for s in slots if s != "meal_notes"]
        return slots

    def _stopping(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
        return not self.quiet(tracker) and (
            latest_intent(tracker) == "cancel_meal" or wants_to_stop(tracker)
        )

    async def validate_meal_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A day from today on; a meal named with it (明天中午) fills the meal too."""
        if self._stopping(dispatcher, tracker):
            return self.stop(dispatcher, STOPPED)
        today = now().date()
        text = latest_text(tracker)
        # 明天中午 / 中午: the meal said with (or instead of) the day fills the meal.
        meal = normalize.parse_meal_slot(text) if tracker.get_slot("meal_slot") is None else None
        with_meal = {"meal_slot": meal} if meal else {}
        day = to_day(value, today) or to_day(text, today)
        if day is None:
            if any(w in text for w in MULTI_DAY_WORDS):
                return {**self.reject(dispatcher, tracker, "meal_date", ONE_DAY), **with_meal}
            if with_meal:
                return {"meal_date": None, **with_meal}  # only the meal said: ask the day next
            return self.reject(dispatcher, tracker, "meal_date", ASK_DAY_AGAIN, unclear=True)
        if day < today:
            return {**self.reject(dispatcher, tracker, "meal_date", PAST_DAY), **with_meal}
        return {"meal_date": day.isoformat(), "meal_menu": None, **with_meal}

    async def validate_meal_slot(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """breakfast / lunch / dinner."""
        if self._stopping(dispatcher, tracker):
            return self.stop(dispatcher, STOPPED)
        slot = to_slot(value) or to_slot(latest_text(tracker))
        if slot is None:
            return self.reject(dispatcher, tracker, "meal_slot", ASK_SLOT_AGAIN, unclear=True)
        return {"meal_slot": slot, "meal_menu": None}

    async def validate_meal_quantity(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """1 to 10 portions, and no more than are left."""
        if self._stopping(dispatcher, tracker):
            return self.stop(dispatcher, STOPPED)
        quantity = to_quantity(value)
        if quantity is None:
            return self.reject(
                dispatcher, tracker, "meal_quantity", ASK_QUANTITY_AGAIN, unclear=True
            )
        if not 1 <= quantity <= MAX_QUANTITY:
            return self.reject(dispatcher, tracker, "meal_quantity", TOO_MANY)
        remaining = (tracker.get_slot("meal_menu") or {}).get("remaining")
        if isinstance(remaining, int) and quantity > remaining:
            return self.reject(
                dispatcher, tracker, "meal_quantity", f"只剩{remaining}份了，请少订一些。"
            )
        return {"meal_quantity": quantity}

    async def validate_meal_delivery(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Delivery only to a home address on record."""
        answer = delivery_answer(value)
        if answer is None:
            return self.reject(
                dispatcher, tracker, "meal_delivery", ASK_DELIVERY_AGAIN, unclear=True
            )
        if answer and not tracker.get_slot("home_address"):
            dispatcher.utter_message(text=NO_ADDRESS)
            return {"meal_delivery": False}
        return {"meal_delivery": answer}

    async def validate_meal_has_notes(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Yes, no, or the wishes straight away (少盐)."""
        notes = diet_notes(value) if isinstance(value, str) else None
        if notes:
            return {"meal_has_notes": True, "meal_notes": notes}
        answer = has_answer(value)
        if answer is None:
            return self.reject(
                dispatcher, tracker, "meal_has_notes", ASK_HAS_NOTES_AGAIN, unclear=True
            )
        if answer:
            return {"meal_has_notes": True}
        return {"meal_has_notes": False, "meal_notes": None}

    async def validate_meal_notes(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The wishes in the resident's words; "没有" after all means none."""
        text = str(value or "").strip(" ，。,.!！?？")
        if not diet_notes(text) and has_answer(text) is False:
            return {"meal_has_notes": False, "meal_notes": None}
        if not text or text.startswith("/"):
            return self.reject(dispatcher, tracker, "meal_notes", "请说一下有什么忌口。")
        return {"meal_notes": text[:200]}

    async def validate_meal_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The answer to the read-back; a "no" with a correction (不对，要三份) is read back."""
        answer = confirmation(value)
        corrected = set(tracker.slots_to_validate()) & {"meal_date", "meal_slot", "meal_quantity"}
        if answer is False and corrected:
            return {"meal_confirm": None}
        if answer is None:
            return self.reject(dispatcher, tracker, "meal_confirm", ASK_CONFIRM_AGAIN, unclear=True)
        return {"meal_confirm": answer}

    async def settle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, *, activation: bool
    ) -> dict[str, Any]:
        """Check the menu once day and meal are known; skip delivery without an address."""
        result: dict[str, Any] = {}
        day, slot = tracker.get_slot("meal_date"), tracker.get_slot("meal_slot")
        day_asked = to_day(day, now().date())
        if day_asked and slot and tracker.get_slot("meal_menu") is None:
            result.update(await self._check_menu(dispatcher, tracker, day_asked, slot))
            tracker.slots.update(result)
            if result.get("meal_stop"):
                return result
        if activation:
            result.update(self._first_message_wishes(dispatcher, tracker))
        if tracker.get_slot("meal_delivery") is None and not tracker.get_slot("home_address"):
            result["meal_delivery"] = False
        return result

    def _first_message_wishes(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        """Delivery and dietary wishes said when asking to book (送到家, 少盐)."""
        text = latest_text(tracker)
        result: dict[str, Any] = {}
        if any(w in text for w in DELIVERY_WORDS) and not any(w in text for w in NO_DELIVERY_WORDS):
            if tracker.get_slot("home_address"):
                result["meal_delivery"] = True
            else:
                dispatcher.utter_message(text=NO_ADDRESS)
                result["meal_delivery"] = False
        notes = diet_notes(text)
        if notes:
            result.update({"meal_has_notes": True, "meal_notes": notes})
        return result

    async def _check_menu(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, day: date, slot: str
    ) -> dict[str, Any]:
        """Is that meal planned, open and not full, and may this sender book it?"""
        meal = meal_words(day, slot, now().date())
        client = get_client()
        try:
            page = await client.get(MENUS_PATH, {"day": day.isoformat(), "slot": slot})
        except RecordsError as error:
            say_error(dispatcher, error)
            return self.stop(dispatcher, None)
        items = (page or {}).get("items") or []
        if not items:
            return self.stop(dispatcher, f"{meal}还没有排菜单。")
        menu = items[0]
        if not menu.get("open_for_booking") or int(menu.get("remaining") or 0) <= 0:
            return self.stop(dispatcher, menu.get("text") or f"{meal}已经不能订了。")
        try:
            mine = await client.post(
                MY_BOOKINGS_PATH, {"identity": identity_of(tracker), "from_day": day.isoformat()}
            )
        except RecordsRefused as error:
            tell_refusal(dispatcher, error)
            return self.stop(dispatcher, None)
        except RecordsUnavailable:
            mine = []  # the booking itself will find out
        for booking in mine or []:
            if booking.get("day") == day.isoformat() and booking.get("slot") == slot:
                return self.stop(
                    dispatcher,
                    f"您已经订过{meal}了（{booking.get('quantity')}份）。"
                    "要改份数，请先说“取消订餐”，再重新订。",
                )
        dispatcher.utter_message(text=menu.get("text") or meal)
        remaining = int(menu.get("remaining") or 0)
        result: dict[str, Any] = {
            "meal_menu": {
                "id": menu.get("id"),
                "price_cents": menu.get("price_cents"),
                "remaining": remaining,
            }
        }
        quantity = tracker.get_slot("meal_quantity")
        if isinstance(quantity, int) and quantity > remaining:
            dispatcher.utter_message(text=f"只剩{remaining}份了，请少订一些。")
            result["meal_quantity"] = None
        return result


class ActionAskMealDate(Action):
    """Which day?"""

    def name(self) -> str:
        return "action_ask_meal_date"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        options = [(d, f'/book_meal{{"date": "{d}"}}') for d in ("今天", "明天", "后天")]
        meal = SLOT_NAMES.get(tracker.get_slot("meal_slot") or "", "饭")
        ask_choice(dispatcher, f"订哪天的{meal}？", options)
        return []


class ActionAskMealSlot(Action):
    """Which meal?"""

    def name(self) -> str:
        return "action_ask_meal_slot"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        options = [(label, f'/book_meal{{"meal_slot": "{slot}"}}') for slot, label in
                   SLOT_NAMES.items()]  # fmt: skip
        ask_choice(dispatcher, "订哪一顿？", options)
        return []


class ActionAskMealQuantity(Action):
    """How many portions?"""

    def name(self) -> str:
        return "action_ask_meal_quantity"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ask_number(dispatcher, "要几份？", 1, MAX_QUANTITY)
        return []


class ActionAskMealDelivery(Action):
    """Deliver it home? (Only asked when a home address is on record.)"""

    def name(self) -> str:
        return "action_ask_meal_delivery"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        address = tracker.get_slot("home_address")
        where = f"（{address}）" if address else ""
        ask_yes_no(dispatcher, f"要送到家里{where}吗？")
        return []


class ActionAskMealHasNotes(Action):
    """Any dietary wishes?"""

    def name(self) -> str:
        return "action_ask_meal_has_notes"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ask_yes_no(dispatcher, "有没有忌口，比如少盐、软一点？")
        return []


class ActionAskMealNotes(Action):
    """Which dietary wishes?"""

    def name(self) -> str:
        return "action_ask_meal_notes"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ask_free_text(dispatcher, "请说一下忌口，比如少盐、少油、软一点。")
        return []


def booking_readback(slots: Mapping[str, Any], today: date) -> str:
    """我帮您记下了：明天午饭，2份，送到家，忌口：少盐，每份12元。对吗？"""
    parts = [
        when_words(slots.get("meal_date"), slots.get("meal_slot"), today),
        f"{slots.get('meal_quantity')}份",
        "送到家" if slots.get("meal_delivery") else "到食堂吃",
    ]
    if slots.get("meal_has_notes") and slots.get("meal_notes"):
        parts.append(f"忌口：{slots.get('meal_notes')}")
    price = (slots.get("meal_menu") or {}).get("price_cents")
    if isinstance(price, int):
        parts.append(f"每份{yuan(price)}")
    return "我帮您记下了：" + "，".join(parts) + "。对吗？"


class ActionAskMealConfirm(Action):
    """Read the booking back before it is made."""

    def name(self) -> str:
        return "action_ask_meal_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ask_yes_no(dispatcher, booking_readback(tracker.slots, now().date()))
        return []


class ActionMealSubmit(Action):
    """Book the meal once the read-back was confirmed; always clear the form."""

    def name(self) -> str:
        return SUBMIT

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        done = reset(FORM_SLOTS)
        if tracker.get_slot("meal_stop"):
            return done  # the reason was said when the form stopped
        confirm = tracker.get_slot("meal_confirm")
        if confirm is not True:
            if confirm is False:
                dispatcher.utter_message(text=NOT_SUBMITTED)
            return done
        identity = identity_of(tracker)
        has_notes = tracker.get_slot("meal_has_notes")
        body = {
            "identity": identity,
            "day": tracker.get_slot("meal_date"),
            "slot": tracker.get_slot("meal_slot"),
            "quantity": tracker.get_slot("meal_quantity"),
            "delivery": bool(tracker.get_slot("meal_delivery")),
            # None: the resident's usual notes on record apply (see the report).
            "dietary_notes": tracker.get_slot("meal_notes") if has_notes else None,
            "channel": identity.split(":", 1)[0],
        }
        key = form_idempotency_key(
            tracker.sender_id,
            FORM,
            {k: v for k, v in body.items() if k != "identity"},
            scope=form_started(tracker, FORM),
        )
        try:
            booking = await get_client().post(BOOKINGS_PATH, body, idempotency_key=key)
        except RecordsError as error:
            tell_refusal(dispatcher, error)
            return done
        dispatcher.utter_message(text=(booking or {}).get("text") or "已经订好了。")
        return done


# --- the menu -------------------------------------------------------------------------------


def tag_asked(text: str) -> str | None:
    """The dish tag a question is about (有少盐的菜吗 -> 少盐), if any."""
    return next((tag for words, tag in TAG_WORDS if any(w in text for w in words)), None)


def _dish_matches(dish: Mapping[str, Any], name: str | None, tag: str | None) -> bool:
    dish_name = str(dish.get("name") or "")
    if name:
        return name in dish_name or (len(dish_name) > 1 and dish_name in name)
    return bool(tag) and tag in (dish.get("tags") or [])


class ActionMealMenu(Action):
    """Say a menu: the meal asked about, or the next one that can still be booked."""

    def name(self) -> str:
        return "action_meal_menu"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        today = now().date()
        text = latest_text(tracker)
        said_day = entity_value(tracker, "date")
        day = to_day(said_day, today) if said_day else None
        day = day or normalize.parse_date(text, today=today)
        slot = to_slot(entity_value(tracker, "meal_slot")) or normalize.parse_meal_slot(text)
        dish = entity_value(tracker, "dish")
        tag = None if dish else tag_asked(text)
        try:
            if dish or tag:
                self._say_dishes(dispatcher, await self._menus(day, slot, today, week=True),
                                 dish, tag)  # fmt: skip
            elif day is not None:
                self._say_day(dispatcher, await self._menus(day, slot, today), day, slot, today)
            else:
                prefix = "我先说最近的一顿。" if said_day else ""
                self._say_next(dispatcher, await self._menus(None, slot, today), slot, prefix)
        except RecordsError as error:
            say_error(dispatcher, error)
        return []

    @staticmethod
    async def _menus(
        day: date | None, slot: str | None, today: date, *, week: bool = False
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 30}
        if day is not None:
            params["day"] = day.isoformat()
        elif not week:
            tomorrow = today + timedelta(days=1)
            params.update({"from": today.isoformat(), "to": tomorrow.isoformat()})
        if slot:
            params["slot"] = slot
        page = await get_client().get(MENUS_PATH, params)
        return list((page or {}).get("items") or [])

    @staticmethod
    def _say_day(
        dispatcher: CollectingDispatcher,
        menus: list[dict[str, Any]],
        day: date,
        slot: str | None,
        today: date,
    ) -> None:
        if not menus:
            dispatcher.utter_message(text=f"{meal_words(day, slot, today)}还没有排菜单。")
            return
        dispatcher.utter_message(text="".join(str(m.get("text") or "") for m in menus))

    @staticmethod
    def _say_next(
        dispatcher: CollectingDispatcher, menus: list[dict[str, Any]], slot: str | None,
        prefix: str,
    ) -> None:  # fmt: skip
        meal = SLOT_NAMES.get(slot or "", "饭")
        if not menus:
            dispatcher.utter_message(text=f"今天和明天的{meal}还没有排菜单。")
            return
        menu = next((m for m in menus if m.get("open_for_booking")), None)
        if menu is None and slot:
            menu = menus[0]  # 晚饭吃啥 after the cut-off: still today's dinner
        if menu is None:
            dispatcher.utter_message(text="今天和明天的饭都已经截止预订了。")
            return
        dispatcher.utter_message(text=prefix + str(menu.get("text") or ""))

    @staticmethod
    def _say_dishes(
        dispatcher: CollectingDispatcher,
        menus: list[dict[str, Any]],
        dish: str | None,
        tag: str | None,
    ) -> None:
        # Meals that can still be booked first, then the others, each in serving order.
        for menu in sorted(menus, key=lambda m: not m.get("open_for_booking")):
            found = [d for d in menu.get("dishes") or [] if _dish_matches(d, dish, tag)]
            if found:
                names = "、".join(str(d.get("name")) for d in found)
                dispatcher.utter_message(text=f"有：{names}。{menu.get('text') or ''}")
                return
        what = dish or f"{tag}的菜"
        dispatcher.utter_message(text=f"最近的菜单里没有{what}。")
