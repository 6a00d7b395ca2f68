"""Cancel a canteen booking (meal_cancel_form).

Which meal comes from the message (明天的午饭不要了) or from a choice among the resident's
upcoming bookings (POST /bookings/mine); one booking only is taken without asking. A yes/no
confirmation comes before POST /bookings/cancel; refusals (past the cut-off) are relayed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import meals, normalize
from actions.common import ask_choice, ask_yes_no, entity_value, identity_of, latest_text
from actions.records_client import RecordsError, form_idempotency_key, get_client

FORM = "meal_cancel_form"
SUBMIT = "action_meal_cancel_submit"
CANCEL_PATH = "/api/v1/canteen/bookings/cancel"

CANCEL_SLOTS = ("meal_cancel_date", "meal_cancel_slot", "meal_cancel_confirm")
FORM_SLOTS = (*CANCEL_SLOTS, "meal_cancel_options", "meal_cancel_stop")
# Offered as choices at most (keypad 1..5); the others can still be named by day.
MAX_OPTIONS = 5

NOT_CANCELLED = "好的，这次先不取消。"
NOTHING_BOOKED = "您现在没有订餐，不用取消。"
ASK_DAY_AGAIN = "请说是哪一天的饭，比如明天。"
ASK_CHOICE_AGAIN = "请说是第几个，或者哪一天的饭。"
# Said instead of an answer: the resident no longer wants to cancel.
STOP_WORDS = ("算了", "不取消", "不退了", "不退", "不用了", "还是要")
_INDEX_RE = re.compile(r"第?([0-9一二两三四五六七八九]{1,2})(?:个|项|顿|条)?")


def option_of(booking: dict[str, Any]) -> dict[str, Any]:
    """What the dialogue keeps of an upcoming booking."""
    return {"day": booking.get("day"), "slot": booking.get("slot"),
            "quantity": booking.get("quantity")}  # fmt: skip


def option_label(option: dict[str, Any], today: date) -> str:
    """E.g. 明天午饭1份."""
    meal = meals.when_words(option.get("day"), option.get("slot"), today)
    return f"{meal}{option.get('quantity')}份"


def option_index(value: Any, tracker: Tracker, count: int) -> int | None:
    """The option picked by number (第二个, 2, a choice entity), 0-based, if any."""
    for raw in (entity_value(tracker, "choice"), value):
        match = _INDEX_RE.fullmatch(str(raw or "").strip())
        number = normalize.to_int(match.group(1)) if match else None
        if number is not None and 1 <= number <= count:
            return number - 1
    return None


def matching(
    options: list[dict[str, Any]], day: str | None, slot: str | None
) -> list[dict[str, Any]]:
    """The options on that day and meal (either may be unknown)."""
    return [o for o in options if (not day or o["day"] == day) and (not slot or o["slot"] == slot)]


def offered(tracker: Tracker) -> list[dict[str, Any]]:
    """The bookings offered as choices, numbered from 1: those of the meal said (午饭不要了
    with lunches on several days), else all; at most MAX_OPTIONS."""
    options = tracker.get_slot("meal_cancel_options") or []
    said = matching(options, None, tracker.get_slot("meal_cancel_slot"))
    return (said or options)[:MAX_OPTIONS]


class ValidateMealCancelForm(meals.MealsFormValidation):
    """Work out which booking is meant, using the resident's upcoming bookings."""

    form_slots = FORM_SLOTS
    validated_slots = CANCEL_SLOTS
    stop_slot = "meal_cancel_stop"
    submit_action = SUBMIT

    def name(self) -> str:
        return "validate_meal_cancel_form"

    def _stopping(self, tracker: Tracker) -> bool:
        return not self.quiet(tracker) and meals.wants_to_stop(tracker, STOP_WORDS)

    async def validate_meal_cancel_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A day from today on, or one of the offered bookings by number."""
        if self._stopping(tracker):
            return self.stop(dispatcher, NOT_CANCELLED)
        options = offered(tracker)
        index = option_index(value, tracker, len(options))
        if index is not None:
            chosen = options[index]
            return {"meal_cancel_date": chosen["day"], "meal_cancel_slot": chosen["slot"]}
        today = meals.now().date()
        text = latest_text(tracker)
        day = meals.to_day(value, today) or meals.to_day(text, today)
        if day is None:
            again = ASK_CHOICE_AGAIN if options else ASK_DAY_AGAIN
            return self.reject(dispatcher, tracker, "meal_cancel_date", again, unclear=True)
        if day < today:
            return self.reject(dispatcher, tracker, "meal_cancel_date", meals.PAST_DAY)
        result: dict[str, Any] = {"meal_cancel_date": day.isoformat()}
        if tracker.get_slot("meal_cancel_slot") is None:
            slot = normalize.parse_meal_slot(text)
            if slot:
                result["meal_cancel_slot"] = slot
        return result

    async def validate_meal_cancel_slot(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """breakfast / lunch / dinner, or one of that day's bookings by number."""
        if self._stopping(tracker):
            return self.stop(dispatcher, NOT_CANCELLED)
        that_day = matching(
            tracker.get_slot("meal_cancel_options") or [],
            tracker.get_slot("meal_cancel_date"),
            None,
        )
        index = option_index(value, tracker, len(that_day)) if len(that_day) > 1 else None
        if index is not None:
            return {"meal_cancel_slot": that_day[index]["slot"]}
        slot = meals.to_slot(value) or meals.to_slot(latest_text(tracker))
        if slot is None:
            return self.reject(
                dispatcher, tracker, "meal_cancel_slot", meals.ASK_SLOT_AGAIN, unclear=True
            )
        return {"meal_cancel_slot": slot}

    async def validate_meal_cancel_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Yes or no."""
        answer = meals.confirmation(value)
        if answer is None:
            return self.reject(
                dispatcher, tracker, "meal_cancel_confirm", meals.ASK_CONFIRM_AGAIN, unclear=True
            )
        return {"meal_cancel_confirm": answer}

    async def settle(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, *, activation: bool
    ) -> dict[str, Any]:
        """Match what was said with the upcoming bookings (fetched once per run)."""
        if tracker.get_slot("meal_cancel_confirm") is not None:
            return {}
        result: dict[str, Any] = {}
        options = tracker.get_slot("meal_cancel_options")
        if options is None:
            try:
                bookings = await get_client().post(
                    meals.MY_BOOKINGS_PATH, {"identity": identity_of(tracker)}
                )
            except RecordsError as error:
                meals.tell_refusal(dispatcher, error)
                return self.stop(dispatcher, None)
            options = [option_of(b) for b in bookings or [] if b.get("status") != "cancelled"]
            result["meal_cancel_options"] = options
            if not options:
                return {**result, **self.stop(dispatcher, NOTHING_BOOKED)}
        day, slot = tracker.get_slot("meal_cancel_date"), tracker.get_slot("meal_cancel_slot")
        found = matching(options, day, slot)
        if not found:
            dispatcher.utter_message(text=self._not_booked(day, slot))
            result.update({"meal_cancel_date": None, "meal_cancel_slot": None})
            found = options
        if len(found) == 1:
            only = found[0]
            result.update({"meal_cancel_date": only["day"], "meal_cancel_slot": only["slot"]})
        elif len({o["day"] for o in found}) == 1:
            result["meal_cancel_date"] = found[0]["day"]
        return result

    @staticmethod
    def _not_booked(day: str | None, slot: str | None) -> str:
        today = meals.now().date()
        if day:
            meal = meals.when_words(day, slot, today)
            return f"您没有订{meal}。" if slot else f"您没有订{meal}的饭。"
        return f"您没有订{meals.SLOT_NAMES.get(slot or '', '这顿饭')}。"


class ActionAskMealCancelDate(Action):
    """Which booking (a choice among the upcoming ones), else which day."""

    def name(self) -> str:
        return "action_ask_meal_cancel_date"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        today = meals.now().date()
        options = offered(tracker)
        if options:
            choices = [
                (option_label(o, today),
                 f'/cancel_meal{{"date": "{o["day"]}", "meal_slot": "{o["slot"]}"}}')
                for o in options
            ]  # fmt: skip
            ask_choice(dispatcher, "要取消哪一顿？", choices)
        else:
            days = [(d, f'/cancel_meal{{"date": "{d}"}}') for d in ("今天", "明天", "后天")]
            ask_choice(dispatcher, "要取消哪天的饭？", days)
        return []


class ActionAskMealCancelSlot(Action):
    """Which meal of that day."""

    def name(self) -> str:
        return "action_ask_meal_cancel_slot"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        day = tracker.get_slot("meal_cancel_date")
        that_day = matching(tracker.get_slot("meal_cancel_options") or [], day, None)
        if len(that_day) > 1:
            choices = [
                (f"{meals.SLOT_NAMES.get(o['slot'], o['slot'])}{o.get('quantity')}份",
                 f'/cancel_meal{{"meal_slot": "{o["slot"]}"}}')
                for o in that_day
            ]  # fmt: skip
        else:
            choices = [
                (label, f'/cancel_meal{{"meal_slot": "{slot}"}}')
                for slot, label in meals.SLOT_NAMES.items()
            ]
        when = meals.when_words(day, None, meals.now().date()) if day else ""
        ask_choice(dispatcher, f"要取消{when}哪一顿？", choices)
        return []


class ActionAskMealCancelConfirm(Action):
    """Say which booking will be cancelled and ask."""

    def name(self) -> str:
        return "action_ask_meal_cancel_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        day, slot = tracker.get_slot("meal_cancel_date"), tracker.get_slot("meal_cancel_slot")
        meal = meals.when_words(day, slot, meals.now().date())
        found = matching(tracker.get_slot("meal_cancel_options") or [], day, slot)
        what = f"{found[0].get('quantity')}份" if found else "订餐"
        ask_yes_no(dispatcher, f"要取消{meal}的{what}吗？")
        return []


class ActionMealCancelSubmit(Action):
    """Cancel the booking once confirmed; always clear the form."""

    def name(self) -> str:
        return SUBMIT

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        done = meals.reset(FORM_SLOTS)
        if tracker.get_slot("meal_cancel_stop"):
            return done
        confirm = tracker.get_slot("meal_cancel_confirm")
        if confirm is not True:
            if confirm is False:
                dispatcher.utter_message(text=NOT_CANCELLED)
            return done
        body = {
            "identity": identity_of(tracker),
            "day": tracker.get_slot("meal_cancel_date"),
            "slot": tracker.get_slot("meal_cancel_slot"),
        }
        key = form_idempotency_key(
            tracker.sender_id,
            FORM,
            {"day": body["day"], "slot": body["slot"]},
            scope=meals.form_started(tracker, FORM),
        )
        try:
            booking = await get_client().post(CANCEL_PATH, body, idempotency_key=key)
        except RecordsError as error:
            meals.tell_refusal(dispatcher, error)
            return done
        dispatcher.utter_message(text=(booking or {}).get("text") or "已经取消了。")
        return done
