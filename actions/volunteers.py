"""Volunteers: signing up, hearing one's tasks and points, and answering tasks.

* volunteer_form (volunteer_skills, volunteer_confirm): a verified resident names what they
  can do ("送饭和陪老人聊天" → meal_delivery, visit), hears it read back and confirms; then
  POST /api/v1/volunteers.
* action_volunteer_task_list: the tasks waiting for an answer and those taken, numbered, and
  the points balance; the numbers are kept in people_listed_tasks.
* volunteer_task_form (volunteer_task_id): which task "我接" / "去不了" / "做完了" is about:
  the task a notification button names (`/task_accept{"task_id": 12}` fills the slot from
  the task_id entity), else the position said ("第二个") in the last list, else the only
  task that fits, else asked; then POST /api/v1/volunteers/tasks/{id}/accept|decline|done.
  "Done" carries the volunteer's words as a note, and a photo when the channel sent one
  (message metadata `photo`: a URL or the channel's file id).
* action_task_confirm: the resident confirms a task done for them (the 确认完成 button names
  it; else their latest done task): POST /api/v1/volunteers/tasks/confirm.
"""

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import normalize
from actions.common import (
    ask_choice,
    ask_yes_no,
    entity_value,
    identity_of,
    latest_text,
    say_error,
)
from actions.identity import (
    HOW_TO_VERIFY,
    as_events,
    form_is_starting,
    latest_intent,
    stop_form,
    wants_to_stop,
)
from actions.records_client import (
    RecordsError,
    RecordsRefused,
    RecordsUnavailable,
    form_idempotency_key,
    get_client,
)

SIGNUP_FORM = "volunteer_form"
TASK_FORM = "volunteer_task_form"
VOLUNTEERS_PATH = "/api/v1/volunteers"
ME_PATH = "/api/v1/volunteers/me"
MINE_PATH = "/api/v1/volunteers/tasks/mine"
CONFIRM_PATH = "/api/v1/volunteers/tasks/confirm"
NOTE_LIMIT = 1000
PHOTO_LIMIT = 500

# The backend's skill vocabulary (records.repository.volunteers.SKILLS), in its order.
SKILLS: dict[str, str] = {
    "meal_delivery": "送餐",
    "visit": "探访",
    "repair": "小修小补",
    "escort": "陪同出行",
    "first_aid": "急救",
    "driving": "开车接送",
}
# What people say for each skill; the longest match wins ("陪老人看病" is escort, not visit).
_SKILL_WORDS: dict[str, str] = {
    "meal_delivery": "送餐 送饭 送菜 配餐 助餐 送盒饭 打饭",
    "visit": "探访 探望 看望 拜访 上门看看 陪老人聊天 陪老人说话 陪聊 聊天 说说话 陪老人 陪伴 串门",
    "repair": "小修小补 维修帮手 维修 修理 修东西 修电器 修水管 水电 修",
    "escort": "陪同出行 陪同就医 陪老人看病 陪着看病 陪看病 陪诊 陪同 就医 看病 去医院 出行 陪护",
    "first_aid": "急救 心肺复苏 救护 包扎",
    "driving": "开车接送 开车 司机 驾驶 接送 有车",
}
_SKILL_LEXICON: list[tuple[str, str]] = sorted(
    ((word, skill) for skill, words in _SKILL_WORDS.items() for word in words.split()),
    key=lambda pair: -len(pair[0]),
)
_ALL_SKILLS_WORDS = ("都可以", "都行", "都能干", "都能做", "全部", "啥都行", "什么都行")
_NEGATIONS = ("不", "没", "别")
# What may surround option numbers in "第一个和第三个", "1、3".
_NUMBER_FILLER = re.compile(r"[第个项号和跟与及还有选我要、,，\s.。]+")

TASK_VERBS = ("accept", "decline", "done")
VERB_OF_INTENT = {"task_accept": "accept", "task_decline": "decline", "task_done": "done"}
INTENT_OF_VERB = {verb: intent for intent, verb in VERB_OF_INTENT.items()}
# Which of a volunteer's tasks each answer can be about, in order of preference.
CANDIDATE_STATUSES = {
    "accept": (("offered",),),
    "decline": (("offered",), ("accepted",)),
    "done": (("accepted",),),
}
TASK_QUESTION = {
    "accept": "您要接哪个任务？",
    "decline": "哪个任务您去不了？",
    "done": "您完成的是哪个任务？",
}
NO_TASK = {
    "accept": "现在没有等您接的任务。有新任务时我会告诉您。",
    "decline": "现在没有需要您回复的任务。",
    "done": "您现在没有进行中的任务。",
}
TASK_DONE_DEFAULT = {
    "accept": "谢谢您！这个任务交给您了。",
    "decline": "好的，已经记下了，谢谢您！",
    "done": "辛苦了！已经记下任务完成，确认以后会给您记积分。",
}
STATUS_WORDS = {"offered": "等您回复", "accepted": "您已接下"}
LIST_LIMIT = 5

ASK_SKILLS = "您想做哪些志愿服务？有送餐、探访、小修小补、陪同出行、急救、开车接送，可以选几样。"
SKILLS_NOT_UNDERSTOOD = "这个我没听明白。"
NEED_VERIFY = "报名志愿者要先核实身份。请向社区工作人员要一个验证码，" + HOW_TO_VERIFY
ALREADY_VOLUNTEER = "您已经是志愿者了，不用再报名。"
NOT_VOLUNTEER = "您还不是志愿者。想报名的话，跟我说“报名志愿者”。"
NOT_SUBMITTED = "好的，这次先不提交。"
SAY_YES_OR_NO = "请说“对”或者“不对”。"
STOPPED = "好的，先不办了。"
SAY_POSITION = "请说第几个，比如“第一个”。"


# --- understanding answers ---------------------------------------------------------------


def parse_skills(text: str) -> list[str]:
    """Skills named in the text, in vocabulary order: "送饭和陪老人聊天" → meal_delivery, visit.

    "都可以" means all of them; a negated word ("不会开车") does not count.
    """
    cleaned = "".join(unicodedata.normalize("NFKC", text).split())
    for word in _ALL_SKILLS_WORDS:
        at = cleaned.find(word)
        if at >= 0 and not any(neg in cleaned[max(0, at - 3) : at] for neg in _NEGATIONS):
            return list(SKILLS)
    found: set[str] = set()
    i = 0
    while i < len(cleaned):
        for word, skill in _SKILL_LEXICON:
            if cleaned.startswith(word, i):
                if not any(neg in cleaned[max(0, i - 3) : i] for neg in _NEGATIONS):
                    found.add(skill)
                i += len(word)
                break
        else:
            i += 1
    return [skill for skill in SKILLS if skill in found]


def _option_numbers(text: str) -> list[int]:
    """Option numbers in an answer that is only numbers: "1和3", "第二个", "二"."""
    rest = _NUMBER_FILLER.sub(" ", unicodedata.normalize("NFKC", text)).split()
    numbers = [normalize.to_int(part) for part in rest]
    if not rest or any(n is None for n in numbers):
        return []
    return [n for n in numbers if n is not None]


def skills_from_answer(tracker: Tracker, text: str) -> list[str]:
    """Skills from words, else from option numbers (1 送餐 … 6 开车接送)."""
    skills = parse_skills(text)
    if skills:
        return skills
    order = list(SKILLS)
    numbers = _option_numbers(text)
    choice = entity_value(tracker, "choice")
    if not numbers and isinstance(choice, str) and choice.isdigit():
        numbers = [int(choice)]
    picked = {order[n - 1] for n in numbers if 1 <= n <= len(order)}
    return [skill for skill in order if skill in picked]


def skill_words(skills: list[str]) -> str:
    """The skills as said to residents: "送餐、探访"."""
    return "、".join(SKILLS.get(skill, skill) for skill in skills)


_ORDINAL = re.compile(r"第([0-9零一二两三四五六七八九十]+)")
_BARE_NUMBER = re.compile(r"^[0-9零一二两三四五六七八九十]+(?:个|单|项|件|条|号)?$")


def position(tracker: Tracker, text: str) -> int | None:
    """The position said: the choice entity ("第二个" → "2"), "第2单", or a bare "2"."""
    choice = entity_value(tracker, "choice")
    if isinstance(choice, str) and choice.isdigit():
        return int(choice)
    cleaned = "".join(unicodedata.normalize("NFKC", text).split())
    match = _ORDINAL.search(cleaned)
    if match:
        return normalize.to_int(match.group(1))
    if _BARE_NUMBER.match(cleaned):
        return normalize.to_int(cleaned)
    return None


def task_id_entity(tracker: Tracker) -> int | None:
    """The task a button names (`/task_accept{"task_id": 12}`), if any."""
    return as_task_id(entity_value(tracker, "task_id"))


def as_task_id(value: Any) -> int | None:
    """A positive task id from an entity or slot value (12, 12.0, "12"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value == int(value) and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def done_details(tracker: Tracker) -> dict[str, str]:
    """The note and photo of a volunteer reporting done: their words, and the channel's
    `photo` metadata (a URL or file id)."""
    latest = tracker.latest_message or {}
    details: dict[str, str] = {}
    text = (latest.get("text") or "").strip()
    # A button's command or "第二个" (which task) says nothing about the work itself.
    if text and not text.startswith("/") and position(tracker, text) is None:
        details["note"] = text[:NOTE_LIMIT]
    photo = (latest.get("metadata") or {}).get("photo")
    if isinstance(photo, str) and photo.strip():
        details["photo"] = photo.strip()[:PHOTO_LIMIT]
    return details


def task_verb(tracker: Tracker) -> str | None:
    """accept, decline or done: from the slot, else from the latest intent."""
    verb = tracker.get_slot("volunteer_task_verb") or VERB_OF_INTENT.get(
        latest_intent(tracker) or ""
    )
    return verb if verb in TASK_VERBS else None


def candidates(tasks: list[dict[str, Any]], verb: str) -> list[dict[str, Any]]:
    """The tasks an answer can be about: offers to accept, offers (else taken) to decline…"""
    for statuses in CANDIDATE_STATUSES[verb]:
        found = [t for t in tasks if t.get("status") in statuses]
        if found:
            return found
    return []


def open_tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Offers waiting for an answer first, then the tasks taken and not yet done."""
    return [t for t in tasks if t.get("status") == "offered"] + [
        t for t in tasks if t.get("status") == "accepted"
    ]


def when_words(value: str | None, now: datetime) -> str:
    """A due time as said: "今天11:30", "明天9:00", "11月25日14:00" (Shanghai); "" if none."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    local = normalize.local_now(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    today = normalize.local_now(now).date()
    day = {today: "今天", today + timedelta(days=1): "明天", today + timedelta(days=2): "后天"}
    label = day.get(local.date(), f"{local.month}月{local.day}日")
    return f"{label}{local.hour}:{local.minute:02d}"


def describe(task: dict[str, Any], now: datetime) -> str:
    """One task as read out: "给王奶奶送午饭（明天11:30前，等您回复）"."""
    when = when_words(task.get("due_at"), now)
    state = STATUS_WORDS.get(str(task.get("status")), "")
    notes = "，".join(p for p in (f"{when}前" if when else "", state) if p)
    return f"{task.get('title') or '志愿任务'}（{notes}）" if notes else str(task.get("title"))


async def my_tasks(tracker: Tracker) -> list[dict[str, Any]]:
    """The sender's tasks (offers and taken); RecordsRefused 403 if not a volunteer."""
    found = await get_client().post(MINE_PATH, {"identity": identity_of(tracker)})
    return [t for t in found or [] if isinstance(t, dict)]


async def my_volunteer_record(tracker: Tracker) -> dict[str, Any] | None:
    """What /volunteers/me says about the sender, None if the backend cannot say."""
    try:
        found = await get_client().post(ME_PATH, {"identity": identity_of(tracker)})
    except RecordsError:
        return None
    return found if isinstance(found, dict) else None


def say_refusal(dispatcher: CollectingDispatcher, error: RecordsError) -> None:
    """The backend's reason, with our own words where the bot can help further."""
    if isinstance(error, RecordsRefused) and error.code == "not-a-volunteer":
        dispatcher.utter_message(text=NOT_VOLUNTEER)
    else:
        say_error(dispatcher, error)


# --- signing up ---------------------------------------------------------------------------


class ActionAskVolunteerSkills(Action):
    """Ask what they would like to do (a keypad can pick one; by voice several)."""

    def name(self) -> str:
        return "action_ask_volunteer_skills"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_choice(dispatcher, ASK_SKILLS, [(label, label) for label in SKILLS.values()])
        return []


class ActionAskVolunteerConfirm(Action):
    """Read the sign-up back before sending it."""

    def name(self) -> str:
        return "action_ask_volunteer_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        skills = tracker.get_slot("volunteer_skills") or []
        ask_yes_no(dispatcher, f"我帮您记下了：报名当志愿者，做{skill_words(skills)}。对吗？")
        return []


class ValidateVolunteerForm(FormValidationAction):
    """Only verified residents who are not volunteers yet; skills to the backend's words."""

    def name(self) -> str:
        return "validate_volunteer_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not form_is_starting(tracker, domain, SIGNUP_FORM):
            return await super().run(dispatcher, tracker, domain)
        # Activation: check who is asking before asking them anything.
        if not tracker.get_slot("verified"):
            dispatcher.utter_message(text=NEED_VERIFY)
            return as_events(stop_form())
        me = await my_volunteer_record(tracker)
        volunteer = (me or {}).get("volunteer") or {}
        if (me or {}).get("is_volunteer") and volunteer.get("active", True):
            points = int((me or {}).get("points") or 0)
            dispatcher.utter_message(text=f"{ALREADY_VOLUNTEER}您现在有{points}个积分。")
            return as_events(stop_form())
        # "我能帮着送餐 报个名": the skills are already said.
        skills = parse_skills(latest_text(tracker))
        return [SlotSet("volunteer_skills", skills)] if skills else []

    async def validate_volunteer_skills(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Skills said: "送饭和陪老人聊天" → [meal_delivery, visit]; "算了" ends the form."""
        if isinstance(slot_value, list) and slot_value and set(slot_value) <= set(SKILLS):
            return {"volunteer_skills": [s for s in SKILLS if s in slot_value]}
        text = str(slot_value or "")
        skills = skills_from_answer(tracker, text)
        if skills:
            return {"volunteer_skills": skills}
        if wants_to_stop(tracker, text):
            dispatcher.utter_message(text="好的，这次先不报名了。")
            return stop_form(volunteer_skills=None, volunteer_confirm=None)
        dispatcher.utter_message(text=SKILLS_NOT_UNDERSTOOD)
        return {"volunteer_skills": None}

    async def validate_volunteer_confirm(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Yes or no to the read-back; "不对，只送饭" changes the skills and asks again."""
        if isinstance(slot_value, bool):
            return {"volunteer_confirm": slot_value}
        text = str(slot_value or "")
        intent = latest_intent(tracker)
        answer = True if intent == "affirm" else False if intent == "deny" else None
        if answer is None:
            answer = normalize.yes_no(text)
        corrected = parse_skills(text)
        if answer is not True and corrected and corrected != tracker.get_slot("volunteer_skills"):
            return {"volunteer_skills": corrected, "volunteer_confirm": None}
        if answer is None:
            dispatcher.utter_message(text=SAY_YES_OR_NO)
        return {"volunteer_confirm": answer}


class ActionVolunteerSubmit(Action):
    """Sign the resident up (idempotent per day and skills), or say it was not sent."""

    def name(self) -> str:
        return "action_volunteer_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        skills = tracker.get_slot("volunteer_skills") or []
        confirmed = tracker.get_slot("volunteer_confirm")
        reset: list[EventType] = [
            SlotSet("volunteer_skills", None),
            SlotSet("volunteer_confirm", None),
        ]
        if confirmed is False:
            dispatcher.utter_message(text=NOT_SUBMITTED)
            return reset
        if confirmed is not True or not skills:
            return reset  # the form stopped early and already said why
        today = normalize.local_now(datetime.now(UTC)).date().isoformat()
        key = form_idempotency_key(tracker.sender_id, SIGNUP_FORM, {"skills": skills}, scope=today)
        body = {"identity": identity_of(tracker), "skills": skills}
        try:
            await get_client().post(VOLUNTEERS_PATH, body, idempotency_key=key)
        except RecordsRefused as error:
            if error.status == 409:
                dispatcher.utter_message(text=ALREADY_VOLUNTEER)
            elif error.status == 403:
                dispatcher.utter_message(text=f"{error.detail_zh}{HOW_TO_VERIFY}")
                return [*reset, SlotSet("verified", False)]
            else:
                say_error(dispatcher, error)
            return reset
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return reset
        dispatcher.utter_message(
            text=f"报名成功，谢谢您！有{skill_words(skills)}的任务时，我会告诉您。"
        )
        return reset


# --- tasks and points ---------------------------------------------------------------------


class ActionVolunteerTaskList(Action):
    """Read the volunteer's open tasks with numbers, and their points."""

    def name(self) -> str:
        return "action_volunteer_task_list"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            tasks = open_tasks(await my_tasks(tracker))
        except RecordsError as error:
            say_refusal(dispatcher, error)
            return []
        me = await my_volunteer_record(tracker)
        points = f"您现在有{int(me.get('points') or 0)}个积分。" if me else ""
        if not tasks:
            dispatcher.utter_message(text=f"您现在没有任务。{points}")
            return [SlotSet("people_listed_tasks", [])]
        now = datetime.now(UTC)
        shown = tasks[:LIST_LIMIT]
        lines = [f"{i}. {describe(task, now)}" for i, task in enumerate(shown, start=1)]
        more = f"还有{len(tasks) - len(shown)}个没念。" if len(tasks) > len(shown) else ""
        hint = "要接的话，就说“第一个我接”。" if shown[0].get("status") == "offered" else ""
        text = "\n".join([f"您有{len(tasks)}个任务：", *lines, f"{more}{points}{hint}"])
        dispatcher.utter_message(text=text.strip())
        return [SlotSet("people_listed_tasks", [int(t["id"]) for t in shown])]


class ActionAskVolunteerTaskId(Action):
    """Ask which task, listing the ones that fit with numbers (keypad 1..n)."""

    def name(self) -> str:
        return "action_ask_volunteer_task_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        verb = task_verb(tracker) or "accept"
        # The tasks found at activation, unless the answer changed since ("做完了" while
        # asked which task to take): then the tasks that fit the new answer.
        stored = tracker.get_slot("volunteer_task_options")
        fits = isinstance(stored, dict) and stored.get("verb") == verb
        options = (stored.get("tasks") or []) if fits else []
        if not options:
            try:
                options = [
                    {"id": int(t["id"]), "title": t.get("title")}
                    for t in candidates(await my_tasks(tracker), verb)[:LIST_LIMIT]
                ]
            except RecordsError:
                options = []
        if not options:
            dispatcher.utter_message(text=NO_TASK[verb])
            return as_events(stop_form())
        listed = "；".join(f"第{i}个，{o.get('title')}" for i, o in enumerate(options, start=1))
        intent = INTENT_OF_VERB[verb]
        ask_choice(
            dispatcher,
            f"{TASK_QUESTION[verb]}{listed}。请说第几个。",
            [
                (str(o.get("title")), f'/{intent}{{"choice":"{i}"}}')
                for i, o in enumerate(options, start=1)
            ],
        )
        return [SlotSet("people_listed_tasks", [int(o["id"]) for o in options])]


class ValidateVolunteerTaskForm(FormValidationAction):
    """Which task the answer is about: said position, the only one that fits, or asked."""

    def name(self) -> str:
        return "validate_volunteer_task_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not form_is_starting(tracker, domain, TASK_FORM):
            return await super().run(dispatcher, tracker, domain)
        verb = task_verb(tracker)
        if verb is None:
            return as_events(stop_form())
        # A tap on a notification's button names the task: no question needed.
        named = task_id_entity(tracker) or as_task_id(tracker.get_slot("volunteer_task_id"))
        if named is not None:
            return [SlotSet("volunteer_task_id", named)]
        listed = tracker.get_slot("people_listed_tasks") or []
        said = position(tracker, latest_text(tracker))
        if said is not None and 1 <= said <= len(listed):
            return [SlotSet("volunteer_task_id", int(listed[said - 1]))]
        try:
            fitting = candidates(await my_tasks(tracker), verb)
        except RecordsError as error:
            say_refusal(dispatcher, error)
            return as_events(stop_form())
        if not fitting:
            dispatcher.utter_message(text=NO_TASK[verb])
            return as_events(stop_form())
        if len(fitting) == 1:
            return [SlotSet("volunteer_task_id", int(fitting[0]["id"]))]
        options = [{"id": int(t["id"]), "title": t.get("title")} for t in fitting[:LIST_LIMIT]]
        return [SlotSet("volunteer_task_options", {"verb": verb, "tasks": options})]

    async def validate_volunteer_task_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Position said: "第二个" (or keypad 2) → the second task of the list just read."""
        if isinstance(slot_value, int) and not isinstance(slot_value, bool):
            return {"volunteer_task_id": slot_value}
        named = task_id_entity(tracker)
        if named is not None:
            return {"volunteer_task_id": named}
        text = str(slot_value or "")
        listed = tracker.get_slot("people_listed_tasks") or []
        said = position(tracker, text)
        if said is not None and 1 <= said <= len(listed):
            return {"volunteer_task_id": int(listed[said - 1])}
        if said is None and wants_to_stop(tracker, text):
            dispatcher.utter_message(text=STOPPED)
            return stop_form(volunteer_task_id=None)
        if said is not None:
            dispatcher.utter_message(text=f"没有第{said}个，一共{len(listed)}个。")
        else:
            dispatcher.utter_message(text=SAY_POSITION)
        return {"volunteer_task_id": None}


class ActionVolunteerTaskSubmit(Action):
    """Accept, decline or report done; relay what the backend says."""

    def name(self) -> str:
        return "action_volunteer_task_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        verb = task_verb(tracker)
        task_id = tracker.get_slot("volunteer_task_id")
        reset: list[EventType] = [
            SlotSet("volunteer_task_id", None),
            SlotSet("volunteer_task_verb", None),
            SlotSet("volunteer_task_options", None),
        ]
        if verb is None or not isinstance(task_id, int | float) or isinstance(task_id, bool):
            return reset  # the form stopped early and already said why
        task_id = int(task_id)
        key = form_idempotency_key(tracker.sender_id, TASK_FORM, {"task": task_id, "verb": verb})
        path = f"/api/v1/volunteers/tasks/{task_id}/{verb}"
        body: dict[str, Any] = {"identity": identity_of(tracker)}
        if verb == "done":
            body.update(done_details(tracker))
        try:
            answer = await get_client().post(path, body, idempotency_key=key)
        except RecordsError as error:
            say_refusal(dispatcher, error)
            return reset
        message = (answer or {}).get("message") if isinstance(answer, dict) else None
        dispatcher.utter_message(text=message or TASK_DONE_DEFAULT[verb])
        return reset


# --- the resident confirms ----------------------------------------------------------------


class ActionTaskConfirm(Action):
    """The resident confirms a volunteer's work (the 确认完成 button, or "饭收到了")."""

    def name(self) -> str:
        return "action_task_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        body: dict[str, Any] = {"identity": identity_of(tracker)}
        named = task_id_entity(tracker)
        if named is not None:
            body["task_id"] = named
        try:
            answer = await get_client().post(CONFIRM_PATH, body)
        except RecordsError as error:
            say_error(dispatcher, error)
            return []
        message = (answer or {}).get("message") if isinstance(answer, dict) else None
        dispatcher.utter_message(text=message or "谢谢您的确认！")
        return []
