"""Identity: linking a sender to a resident with the one-time code staff hand out.

verify_form asks for the 6-digit code (there is no entity for it: the digits are read from the
message text, spoken or typed), checks it with the records backend at once and, when it is
right, fills the core slots (verified, resident_known, resident_name, home_address). A wrong
code gets one more try; after that, or when the backend has locked the sender, the form stops.
The code itself is never said back.

Also holds the small helpers the volunteer forms share (form state, "stop" answers).
"""

import re
import unicodedata
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import normalize
from actions.common import ask_digits, identity_of, latest_text, say_error
from actions.records_client import RecordsRefused, RecordsUnavailable, get_client

VERIFY_FORM = "verify_form"
VERIFY_PATH = "/api/v1/identities/verify"
CODE_LENGTH = 6
# A second wrong code ends the form (the backend itself locks after more failures).
MAX_WRONG_CODES = 2
# Answers without a code in a row before the form gives up.
MAX_MISSES = 3
# Stored in verification_code once the backend accepted the code: the code is not kept.
VERIFIED = "verified"

ASK_CODE = "请说出工作人员给您的6位验证码。"
NO_CODE_HEARD = "我没听到验证码。"
ALREADY_VERIFIED = "您的身份已经验证过了，不用再验证。"
STOPPED = "好的，先不验证了。验证码可以找社区工作人员要，拿到后跟我说“验证身份”。"
GIVE_UP_MISSES = "我还是没听清验证码。您可以说“找人工”，请工作人员帮您。"
GIVE_UP_WRONG = "验证码还是不对，先不验证了。请跟社区工作人员核对一下，或者说“找人工”。"
# The backend's text for 429: the client turns a 429 into RecordsUnavailable, losing the detail.
LOCKED = "验证码错误次数太多，请一小时后再试，或联系工作人员。"
NOT_CONFIRMED = "这次没有验证成功。请联系社区工作人员。"
HOW_TO_VERIFY = "拿到验证码后，跟我说“验证身份”就行。"

# Words that end a form when no answer to its question was given.
STOP_WORDS = ("算了", "不要了", "不办了", "不弄了", "不用了", "先不", "不验证", "不报名", "取消")

_CODE_CHARS = "0-9零〇一二三四五六七八九幺两"
_CODE_RUN = re.compile(f"[{_CODE_CHARS}]+")
_SPACES = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[\s,，、.。;；:：\-—_/]+")


# --- helpers shared with the volunteer forms -----------------------------------------------


def form_is_starting(tracker: Tracker, domain: DomainDict, form: str) -> bool:
    """Whether the form is being activated: none of its questions has been asked yet.

    The active loop cannot tell: Rasa validates at activation with the form already marked
    active (and sometimes a second time without). The requested slot can: it is one of the
    form's slots only once the form has asked its first question.
    """
    required = ((domain.get("forms") or {}).get(form) or {}).get("required_slots") or []
    return tracker.get_slot("requested_slot") not in required


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def wants_to_stop(tracker: Tracker, text: str) -> bool:
    """The user answered "no" or "never mind" instead of answering the question."""
    if latest_intent(tracker) == "deny":
        return True
    if any(word in text for word in STOP_WORDS):
        return True
    return normalize.yes_no(text) is False


def stop_form(**slots: Any) -> dict[str, Any]:
    """Slot values that end the running form early (its submit action then does nothing)."""
    return {**slots, "requested_slot": None}


def as_events(values: dict[str, Any]) -> list[EventType]:
    """SlotSet events for a dict of slot values."""
    return [SlotSet(name, value) for name, value in values.items()]


# --- reading the code ---------------------------------------------------------------------


def code_runs(text: str) -> list[str]:
    """The digit strings in the text, best guess first joined across spaces and separators.

    Tries the runs as they are, then joined over spaces ("六 八 二 零 四 一", "385 921"), then
    over any separator, and returns the first reading that holds a code-length run.
    """
    base = unicodedata.normalize("NFKC", text)
    readings = (
        _SEPARATORS.split(base),
        [_SPACES.sub("", part) for part in re.split(r"[,，、.。;；:：\-—_/]+", base)],
        [_SEPARATORS.sub("", base)],
    )
    first: list[str] = []
    for index, parts in enumerate(readings):
        runs = [
            value
            for part in parts
            for run in _CODE_RUN.findall(part)
            if (value := normalize.digits(run))
        ]
        if index == 0:
            first = runs
        if any(len(run) == CODE_LENGTH for run in runs):
            return runs
    return first


def find_code(text: str) -> str | None:
    """The 6-digit code in "我的验证码是三七五一九二", "385921", "幺二三 四五六" and the like."""
    return next((run for run in code_runs(text) if len(run) == CODE_LENGTH), None)


def longest_number(text: str) -> int:
    """How many digits the longest number in the text has (0 if none)."""
    return max((len(run) for run in code_runs(text)), default=0)


# --- the form -------------------------------------------------------------------------------


class ActionAskVerificationCode(Action):
    """Ask for the code (6 digits: the phone takes them from the keypad)."""

    def name(self) -> str:
        return "action_ask_verification_code"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_digits(dispatcher, ASK_CODE, CODE_LENGTH)
        return []


class ValidateVerifyForm(FormValidationAction):
    """Read the code, check it with the backend, and fill in who the sender is."""

    def name(self) -> str:
        return "validate_verify_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not form_is_starting(tracker, domain, VERIFY_FORM):
            return await super().run(dispatcher, tracker, domain)
        # Activation: "我的验证码是385921" carries the code; "验证身份" does not.
        text = latest_text(tracker)
        if find_code(text) is not None or longest_number(text) >= CODE_LENGTH - 1:
            return as_events(await self.check_code(dispatcher, tracker, text))
        if tracker.get_slot("verified"):
            dispatcher.utter_message(text=ALREADY_VERIFIED)
            return as_events(stop_form())
        return []

    async def validate_verification_code(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """The answer to "请说出…验证码": a code is checked at once, anything else asked again."""
        if slot_value == VERIFIED:
            return {"verification_code": VERIFIED}
        return await self.check_code(dispatcher, tracker, str(slot_value or ""))

    async def check_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str
    ) -> dict[str, Any]:
        """Check the code in the text with the backend; the slot values that follow."""
        code = find_code(text)
        if code is None:
            return self._no_code(dispatcher, tracker, text)
        body = {"identity": identity_of(tracker), "code": code}
        try:
            # Every try counts as a failure at the backend: never repeat it automatically.
            found = await get_client().post(VERIFY_PATH, body, retry=False)
        except RecordsRefused as error:
            return self._refused(dispatcher, tracker, error)
        except RecordsUnavailable as error:
            if error.status == 429:
                dispatcher.utter_message(text=LOCKED)
            else:
                say_error(dispatcher, error)
            return stop_form(verification_code=None, verify_failures=0, verify_misses=0)
        resident = (found or {}).get("resident") or {}
        if not (found or {}).get("verified") or not resident:
            dispatcher.utter_message(text=NOT_CONFIRMED)
            return stop_form(verification_code=None, verify_failures=0, verify_misses=0)
        return {
            "verification_code": VERIFIED,
            "verified": True,
            "resident_known": True,
            "resident_name": resident.get("name"),
            "home_address": (resident.get("address") or {}).get("text"),
            "verify_failures": 0,
            "verify_misses": 0,
        }

    def _no_code(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, text: str
    ) -> dict[str, Any]:
        longest = longest_number(text)
        if longest == 0 and wants_to_stop(tracker, text):
            dispatcher.utter_message(text=STOPPED)
            return stop_form(verification_code=None, verify_failures=0, verify_misses=0)
        misses = int(tracker.get_slot("verify_misses") or 0) + 1
        if misses >= MAX_MISSES:
            dispatcher.utter_message(text=GIVE_UP_MISSES)
            return stop_form(verification_code=None, verify_failures=0, verify_misses=0)
        if longest >= 3:
            dispatcher.utter_message(text=f"验证码是6位数字，我听到的是{longest}位。")
        else:
            dispatcher.utter_message(text=NO_CODE_HEARD)
        return {"verification_code": None, "verify_misses": misses}

    def _refused(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, error: RecordsRefused
    ) -> dict[str, Any]:
        if error.status == 422 and error.code == "bad-code":
            failures = int(tracker.get_slot("verify_failures") or 0) + 1
            if failures < MAX_WRONG_CODES:
                dispatcher.utter_message(text=error.detail_zh)
                return {"verification_code": None, "verify_failures": failures}
            dispatcher.utter_message(text=GIVE_UP_WRONG)
        elif error.status == 429:
            dispatcher.utter_message(text=error.detail_zh or LOCKED)
        else:
            say_error(dispatcher, error)
        return stop_form(verification_code=None, verify_failures=0, verify_misses=0)


class ActionVerifySubmit(Action):
    """Greet the newly verified resident by name; clear the form either way."""

    def name(self) -> str:
        return "action_verify_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("verification_code") == VERIFIED:
            name = tracker.get_slot("resident_name")
            dispatcher.utter_message(text=f"验证成功，{name}您好！" if name else "验证成功！")
        return [
            SlotSet("verification_code", None),
            SlotSet("verify_failures", 0),
            SlotSet("verify_misses", 0),
        ]
