"""Validation of the repair forms: understand each answer, keep good values, ask again kindly.

repair_form: what is broken, where, what is wrong, how urgent, then a read-back.
repair_rate_form: how satisfied with the latest finished repair, then a read-back.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.common import entity_value, latest_text, say_error
from actions.normalize import (
    Location,
    parse_building,
    parse_location,
    parse_rating,
    parse_room,
    parse_unit,
    to_int,
    yes_no,
)
from actions.records_client import RecordsError, get_client
from actions.repairs import (
    CATEGORIES,
    NOTHING_TO_RATE,
    RATE_FORM,
    RATE_SLOTS,
    REPAIR_FORM,
    REPAIR_SLOTS,
    category_from_text,
    clean_description,
    describes_problem,
    home_location,
    latest_intent,
    location_words,
    my_repairs,
    rateable,
    repair_emergency,
    stop_form,
    urgency_from_words,
)

BUILDINGS_PATH = "/api/v1/community/buildings"
SUBMITS = {REPAIR_FORM: "action_repair_submit", RATE_FORM: "action_repair_rate_submit"}
YES_NO_INTENTS = {"affirm": True, "deny": False}

SAY_CATEGORY_AGAIN = "没听明白是什么坏了，请再说一遍。"
SAY_WHERE = "请说一说在哪里，比如“3栋2单元501”或者“小区东门”。"
SAY_BUILDING_TOO = "请连楼号一起说，比如“3栋2单元501”。"
SAY_HOME_FLAT = "请说您家是几号楼几单元几室。"
SAY_YES_OR_NO = "请说“是”或者“不是”。"
SAY_WHAT_IS_WRONG = "请说一说是什么坏了、什么情况。"
SAY_URGENT_OR_NOT = "请说“急”或者“不急”。"
SAY_RIGHT_OR_NOT = "请说“对”或者“不对”。"
SAY_RATING = "请说满意、一般，还是不满意；也可以打1到5分。"

_PUNCT_RE = re.compile(r"[\s,.;:!?，。；：！？、…~·'\"“”‘’()（）【】]+")
_PLACE_PREFIX_RE = re.compile(r"^(?:是在|就在|在|是)")
# "2号门" is a gate, not building 2.
_GATE_RE = re.compile(r"号(?:门|口|岗)")
_OPTION_RE = re.compile(r"^第?([1-9一二三四五六七八九])(?:个|项|号)?$")
_MIN_COMMENT_CHARS = 6
# Words a place usually has; an unclear answer to "是在您家吗？" needs one to count as a place.
_PLACE_HINT_RE = re.compile(
    "门|楼|路|场|园|区|口|边|旁|库|棚|梯|道|廊|房|室|厅|院|站|亭|池|墙|顶|角|下|上|里|前|后|外|桩|柜"
)
_NO_PREFIX_RE = re.compile(r"^(?:不是|不在|没有|不对|不)+")
_MY_HOME_WORDS = ("我家", "家里", "俺家", "咱家", "我们家")
_MIN_PLACE_CHARS = 2
_MIN_DESCRIPTION_CHARS = 2
# What is left of "3号楼门口" without the flat's own words: "门口".
_FLAT_CHARS_RE = re.compile(r"[0-9零〇一二两三四五六七八九十百幺号楼栋幢座单元室房间\-]")
_MAX_RATING = 5
_RATING_WORDS = {"satisfied": _MAX_RATING, "unsatisfied": 1}


def activating(tracker: Tracker, form: str) -> bool:
    """Whether this validation runs as the form starts (on the message that started it)."""
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            return False
        if kind == "active_loop" and event.get("name") == form:
            return True
    return False


def drop_stale(tracker: Tracker, form: str, slots: tuple[str, ...]) -> list[EventType]:
    """As the form starts, empty values left from an earlier run that was interrupted
    (an emergency or a call-back request stops a form without emptying its slots).

    Fresh values are those set since the message that started the form, before the form
    ran; a restart by the submit action itself (to ask where again) keeps everything.
    """
    if not activating(tracker, form) or _after_latest_user(tracker, "action", SUBMITS[form]):
        return []
    fresh = set()
    for event in _events_since_user(tracker):
        if event.get("event") == "action" and event.get("name") == form:
            break
        if event.get("event") == "slot":
            fresh.add(event.get("name"))
    stale = [s for s in slots if tracker.get_slot(s) is not None and s not in fresh]
    events = [SlotSet(slot, None) for slot in stale]
    tracker.add_slots(events)  # seen by the extraction and validation that follow
    return events


def _events_since_user(tracker: Tracker) -> list[dict[str, Any]]:
    events = tracker.events
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    return events[last_user + 1 :]


def _after_latest_user(tracker: Tracker, kind: str, name: str) -> bool:
    events = _events_since_user(tracker)
    return any(e.get("event") == kind and e.get("name") == name for e in events)


def is_payload(text: str) -> bool:
    """A button payload such as "/affirm" rather than words."""
    return text.startswith("/")


# Not an answer, whatever the intent classifier thought ("不知道" is no "no").
_UNSURE_WORDS = (
    "不知道", "不确定", "不清楚", "不记得", "说不好", "再想想", "想一想", "考虑", "等等",
)  # fmt: skip


def answer_yes_no(tracker: Tracker, text: str) -> bool | None:
    """A yes/no answer from the intent (buttons, keypad, 没毛病) or the words."""
    if not is_payload(text) and any(word in text for word in _UNSURE_WORDS):
        return None
    intent = latest_intent(tracker)
    if intent in YES_NO_INTENTS:
        return YES_NO_INTENTS[intent]
    return None if is_payload(text) else yes_no(text)


def location_in(tracker: Tracker, text: str) -> Location | None:
    """Building, unit and room from the words, completed by the NLU's entities."""
    if _GATE_RE.search(text) and not re.search("楼|栋|幢|单元", text):
        return None
    parsed = parse_location(text)
    building, unit, room = (
        (parsed.building, parsed.unit, parsed.room) if parsed else (None, None, None)
    )
    if building is None and (value := entity_value(tracker, "building")):
        building = parse_building(str(value))
    if unit is None and (value := entity_value(tracker, "unit")):
        unit = parse_unit(str(value))
    if room is None and (value := entity_value(tracker, "room")):
        room = parse_room(str(value))
    if building is None and unit is None and room is None:
        return None
    return Location(building, unit, room)


def _flat(location: Location, *, at_home: bool) -> dict[str, Any]:
    return {
        "repair_location": location_words(location),
        "repair_at_home": at_home,
        "repair_building": location.building,
        "repair_unit": location.unit,
        "repair_room": location.room,
        "repair_place": None,
    }


def _home(home_address: str, place: str | None = None) -> dict[str, Any]:
    """The registered home, with a spot in or near it if one was said ("楼下")."""
    location = home_location(home_address)
    said = f"{home_address}（{place}）" if place else home_address
    if location is None:
        return {
            "repair_location": said,
            "repair_at_home": True,
            "repair_building": None,
            "repair_unit": None,
            "repair_room": None,
            "repair_place": said[:200],
        }
    return {**_flat(location, at_home=True), "repair_location": said, "repair_place": place}


def _free_place(place: str) -> dict[str, Any]:
    """A place said in words, without a building ("小区东门")."""
    return {
        "repair_location": place[:200],
        "repair_at_home": False,
        "repair_building": None,
        "repair_unit": None,
        "repair_room": None,
        "repair_place": place[:200],
    }


def _is_place(text: str) -> bool:
    """Whether words sound like a place ("东门", "楼下车棚") rather than "嗯嗯"."""
    return len(text) >= _MIN_PLACE_CHARS and bool(_PLACE_HINT_RE.search(text))


async def building_problem(location: Location) -> str | None:
    """Why the building or unit cannot be right, checked with the backend if it answers."""
    try:
        buildings = await get_client().get(BUILDINGS_PATH)
    except RecordsError:
        return None  # the report itself is checked again when it is sent
    if not isinstance(buildings, list) or not buildings:
        return None
    found = next(
        (b for b in buildings if isinstance(b, dict) and b.get("number") == location.building),
        None,
    )
    if found is None:
        return f"小区里没有{location.building}号楼，请再说一遍楼号。"
    entrances = found.get("entrances")
    if location.unit is not None and isinstance(entrances, int) and location.unit > entrances:
        name = found.get("name") or f"{location.building}号楼"
        return f"{name}没有{location.unit}单元，请再说一遍。"
    return None


class ValidateRepairForm(FormValidationAction):
    """Checks and normalises each answer of repair_form; gas, fire or trapped go to emergency."""

    def name(self) -> str:
        return "validate_repair_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = latest_text(tracker)
        lift = tracker.get_slot("repair_category") == "lift"
        if not is_payload(text) and repair_emergency(text, lift=lift):
            return [*stop_form(REPAIR_SLOTS), FollowupAction("action_emergency")]
        dropped = drop_stale(tracker, REPAIR_FORM, REPAIR_SLOTS)
        return [*dropped, *await super().run(dispatcher, tracker, domain)]

    # --- extraction from the message that started the form ---------------------------------

    async def extract_repair_category(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        text = latest_text(tracker)
        if tracker.get_slot("repair_category") is not None or is_payload(text):
            return {}
        if not activating(tracker, REPAIR_FORM) or latest_intent(tracker) in YES_NO_INTENTS:
            return {}
        code = category_from_text(text)
        return {"repair_category": code} if code else {}

    async def extract_repair_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        text = latest_text(tracker)
        if tracker.get_slot("repair_description") is not None or is_payload(text):
            return {}
        if latest_intent(tracker) in YES_NO_INTENTS or not describes_problem(text):
            return {}
        starting = activating(tracker, REPAIR_FORM)
        if not starting and tracker.get_slot("requested_slot") != "repair_category":
            return {}
        return {"repair_description": clean_description(text)}

    async def extract_repair_location(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        text = latest_text(tracker)
        if tracker.get_slot("repair_location") is not None or is_payload(text):
            return {}
        if tracker.get_slot("requested_slot") == "repair_location":
            return {}  # the answer itself fills it
        if latest_intent(tracker) in YES_NO_INTENTS:
            return {}
        location = location_in(tracker, text)
        if location is not None and location.building is not None:
            return {"repair_location": text}
        about_my_home = any(word in text for word in _MY_HOME_WORDS)
        if about_my_home and tracker.get_slot("home_address") and activating(tracker, REPAIR_FORM):
            return {"repair_location": "我家"}  # "我家厨房水管漏了": no need to ask where
        return {}

    # --- validation ---------------------------------------------------------------------------

    async def validate_repair_category(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if value is None:
            return {"repair_category": None}  # emptied, as a stale value
        if value in CATEGORIES:
            return {"repair_category": value}
        text = latest_text(tracker) if not isinstance(value, str) else value
        asked = tracker.get_slot("requested_slot") == "repair_category"
        if asked:
            option = self._option(tracker, text)
            if option is not None:
                return {"repair_category": option}
        code = category_from_text(text)
        if code is None and describes_problem(text):
            code = "other"  # something is broken that no category names
        if code is None and asked:
            dispatcher.utter_message(text=SAY_CATEGORY_AGAIN)
        return {"repair_category": code}

    @staticmethod
    def _option(tracker: Tracker, text: str) -> str | None:
        """The category picked by its number in the list ("2", "第二个")."""
        choice = entity_value(tracker, "choice")
        match = _OPTION_RE.match(_PUNCT_RE.sub("", text))
        number = to_int(str(choice)) if choice else to_int(match.group(1)) if match else None
        if number is not None and 1 <= number <= len(CATEGORIES):
            return CATEGORIES[number - 1]
        return None

    async def validate_repair_location(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if value is None:
            return {"repair_location": None}  # emptied, as a stale value
        text = str(value)
        asked = tracker.get_slot("requested_slot") == "repair_location"
        home = tracker.get_slot("home_address")
        asked_home = bool(home) and asked and tracker.get_slot("repair_at_home") is None
        location = None if is_payload(text) else location_in(tracker, text)
        place = _PLACE_PREFIX_RE.sub("", _PUNCT_RE.sub("", text))
        if location is not None and location.building is not None:
            problem = await building_problem(location)
            if problem:
                dispatcher.utter_message(text=problem)
                return {"repair_location": None}
            flat = _flat(location, at_home=False)
            if asked and len(_FLAT_CHARS_RE.sub("", place)) >= _MIN_PLACE_CHARS:
                # "3号楼门口": keep the spot too
                flat.update({"repair_location": place[:200], "repair_place": place[:200]})
            return flat
        if asked_home:
            answer = answer_yes_no(tracker, text)
            if answer is True:
                return _home(home)
            rest = _PLACE_PREFIX_RE.sub("", _NO_PREFIX_RE.sub("", place))
            if answer is False:
                if not is_payload(text) and _is_place(rest):
                    return _free_place(rest)  # "不是，在小区东门"
                return {"repair_location": None, "repair_at_home": False}
            if not _is_place(place):
                dispatcher.utter_message(text=SAY_YES_OR_NO)
                return {"repair_location": None}
        said_yes_or_no = text == latest_text(tracker) and latest_intent(tracker) in YES_NO_INTENTS
        if is_payload(text) or said_yes_or_no:
            if asked:
                dispatcher.utter_message(text=SAY_YES_OR_NO if asked_home else SAY_WHERE)
            return {"repair_location": None}
        if location is not None:  # a unit or room without the building
            dispatcher.utter_message(text=SAY_BUILDING_TOO)
            return {"repair_location": None}
        if "家" in place:
            if home:
                spot = place.replace("我家", "").replace("家里", "").replace("家", "")
                return _home(home, spot or None)
            dispatcher.utter_message(text=SAY_HOME_FLAT)
            return {"repair_location": None}
        if len(place) < _MIN_PLACE_CHARS:
            dispatcher.utter_message(text=SAY_WHERE)
            return {"repair_location": None}
        return _free_place(place)

    async def validate_repair_description(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if value is None:
            return {"repair_description": None}  # emptied, as a stale value
        text = str(value)
        asked = tracker.get_slot("requested_slot") == "repair_description"
        description = "" if is_payload(text) else clean_description(text)
        yes_or_no = text == latest_text(tracker) and latest_intent(tracker) in YES_NO_INTENTS
        if len(_PUNCT_RE.sub("", description)) < _MIN_DESCRIPTION_CHARS or yes_or_no:
            if asked:
                dispatcher.utter_message(text=SAY_WHAT_IS_WRONG)
            return {"repair_description": None}
        slots: dict[str, Any] = {"repair_description": description}
        if tracker.get_slot("repair_urgency") is None and (urgency := urgency_from_words(text)):
            slots["repair_urgency"] = urgency
        if tracker.get_slot("repair_category") is None and (code := category_from_text(text)):
            slots["repair_category"] = code
        return slots

    async def validate_repair_urgency(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if value is None:
            return {"repair_urgency": None}  # emptied, as a stale value
        if value in ("urgent", "normal"):
            return {"repair_urgency": value}
        text = str(value)
        urgency = None if is_payload(text) else urgency_from_words(text)
        if urgency is None:
            answer = answer_yes_no(tracker, text)  # "急不急？" yes is urgent
            urgency = None if answer is None else "urgent" if answer else "normal"
        if urgency is None:
            dispatcher.utter_message(text=SAY_URGENT_OR_NOT)
        return {"repair_urgency": urgency}

    async def validate_repair_confirm(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        return read_back_answer("repair_confirm", value, dispatcher, tracker)


def read_back_answer(
    slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
) -> dict[str, Any]:
    """The yes/no answer to a read-back; asks again kindly when it is neither."""
    if value is None:
        return {slot: None}  # emptied, as a stale value
    answer = value if isinstance(value, bool) else answer_yes_no(tracker, str(value))
    if answer is None:
        dispatcher.utter_message(text=SAY_RIGHT_OR_NOT)
    return {slot: answer}


def rating_score(value: Any, text: str) -> int | None:
    """1-5 from the rating entity (satisfied 5, unsatisfied 1, "1".."5") or the words."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if 1 <= value <= _MAX_RATING else None
    word = str(value).strip()
    if word in _RATING_WORDS:
        return _RATING_WORDS[word]
    score = parse_rating(word)
    if score is None and not is_payload(text):
        score = parse_rating(text)
    return score


class ValidateRepairRateForm(FormValidationAction):
    """Finds the repair to rate as the form starts, then checks the rating and the read-back."""

    def name(self) -> str:
        return "validate_repair_rate_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        found = drop_stale(tracker, RATE_FORM, RATE_SLOTS)
        if tracker.get_slot("repair_rate_repair") is None:
            try:
                target = rateable(await my_repairs(tracker, limit=5))
            except RecordsError as error:
                say_error(dispatcher, error)
                return stop_form(RATE_SLOTS)
            if target is None:
                dispatcher.utter_message(text=NOTHING_TO_RATE)
                return stop_form(RATE_SLOTS)
            label = target.get("category_name") or "报修"
            found += [
                SlotSet("repair_rate_repair", target.get("id")),
                SlotSet("repair_rate_label", label),
            ]
            tracker.slots.update({"repair_rate_repair": target.get("id")})
            tracker.slots.update({"repair_rate_label": label})
        return [*found, *await super().run(dispatcher, tracker, domain)]

    async def validate_repair_rating(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if value is None:
            return {"repair_rating": None}  # emptied, as a stale value
        text = latest_text(tracker)
        score = rating_score(value, text)
        if score is None:
            if tracker.get_slot("requested_slot") == "repair_rating":
                dispatcher.utter_message(text=SAY_RATING)
            return {"repair_rating": None}
        comment = None
        if not is_payload(text) and len(_PUNCT_RE.sub("", text)) >= _MIN_COMMENT_CHARS:
            comment = text.strip()[:500]
        return {"repair_rating": score, "repair_rate_comment": comment}

    async def validate_repair_rate_confirm(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        return read_back_answer("repair_rate_confirm", value, dispatcher, tracker)
