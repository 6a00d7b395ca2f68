"""Proposals (提案): a resident submits one, hears which are gathering support, supports one.

proposal_form: title → content → read-back → POST /api/v1/proposals.
proposal_support_form: which proposal → read-back → POST /api/v1/proposals/{id}/support.
Supports need a verified identity; submitting needs a resident the records know.
"""

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import records_client
from actions.civic import (
    SAY_YES_OR_NO,
    VERIFY_HOW,
    answered_just_now,
    bare,
    cleared,
    form_started_now,
    is_answer,
    latest_intent,
    match_title,
    numbered,
    pick,
    position_said,
    requested,
    say_refusal,
    says_no,
    says_stop,
    short,
    slot_events,
    stop,
    yes_or_no,
)
from actions.common import (
    ask_choice,
    ask_free_text,
    ask_yes_no,
    identity_of,
    latest_text,
    say_error,
)
from actions.records_client import (
    RecordsError,
    RecordsRefused,
    RecordsUnavailable,
    form_idempotency_key,
)

PROPOSALS = "/api/v1/proposals"
SUPPORTABLE = ("published", "supported")
LIST_LIMIT = 3  # read out after "有哪些提案"
CHOICE_LIMIT = 5  # offered when asking which one to support (keypad 1-5)

PROPOSAL_SLOTS = ("proposal_title", "proposal_content", "proposal_confirm")
SUPPORT_SLOTS = ("proposal_support_id", "proposal_support_title", "proposal_support_confirm")
LISTED = "civic_listed_proposals"
CANCELLED = "__cancelled__"  # an answer that means "stop": the validation ends the form

TITLE_MIN, TITLE_MAX = 2, 50
CONTENT_MAX = 5000

ASK_TITLE = "您的建议用一句话说是什么？"
ASK_CONTENT = "具体说说？"
TITLE_TOO_SHORT = "太短了，请用一句话说说您的建议，比如“小区门口装个长椅”。"
TITLE_TOO_LONG = "这句有点长，请用一句话说，五十个字以内。"
TITLE_FROM_LONG = "您说得很详细，我记下了。请再用一句话概括一下，五十个字以内。"
CONTENT_TOO_SHORT = "请再具体说说，比如在哪儿、为什么。"
NOT_SUBMITTED = "好的，这次先不提交。"
SUBMITTED = "好的，您的建议已经交给社区了。工作人员审核后会公示，有进展会告诉您。"
NOT_REGISTERED_EXTRA = "您也可以说“找人工”，请工作人员帮您。"
NONE_OPEN = "现在没有正在征集支持的提案。想提建议，可以说“我要提建议”。"
NONE_TO_SUPPORT = "现在没有正在征集支持的提案。"
WHICH_NOT_HEARD = "没听清您要支持哪一个。请说第几个，比如“第一个”。"
NOT_SUPPORTABLE = "这个提案现在不在征集支持的阶段，不能支持了。"
SUPPORT_NEEDS_VERIFIED = "支持提案需要先核实身份。" + VERIFY_HOW
NOT_SUPPORTED = "好的，这次先不支持。"
SUPPORT_THANKS = "谢谢您的支持！"

# "我建议…", "提个建议 …", "我要给社区提意见 …": the words after such a start are the title.
_REQUEST_HEAD = re.compile(
    r"^(?:我们|咱们|我|咱|俺)?(?:有个|有一个|也想|想|要|来)?(?:给(?:小区|社区|居委会|物业|大家)?)?"
    r"(?:提|发起|写)?(?:个|一个|一条|条)?(?:提案|建议|提议|意见|倡议|提按)(?:呗|吧|啊|哈)?"
)
_NOT_A_TITLE_START = tuple("想要让跟呢吗啊吧呀的是")
_ONLY_RECIPIENT = re.compile(r"^(?:给|跟|向|对)(?:小区|社区|居委会|物业|大家|你们)(?:说说|说|提)?$")
_NOTHING_MORE_WORDS = """
    没有 没有了 没了 没啥了 没什么了 没别的了 没有别的
    就这些 就这样 就这个 就这么多 不用 不用了 算了
"""
_NOTHING_MORE = frozenset(_NOTHING_MORE_WORDS.split())


def tidy(text: str) -> str:
    """One line: spaces between phrases become commas, no punctuation at the ends."""
    joined = "，".join(text.split())
    return joined.strip("，,。.！!？? 、")


def title_from_request(text: str) -> str | None:
    """The proposal in a request such as "我建议小区多装几个长椅", if it names one."""
    match = _REQUEST_HEAD.match(text.strip())
    if not match:
        return None
    rest = tidy(text.strip()[match.end() :])
    if not TITLE_MIN + 2 <= len(rest) <= TITLE_MAX:
        return None
    if rest.startswith(_NOT_A_TITLE_START) or _ONLY_RECIPIENT.match(rest):
        return None
    return rest


def channel_of(tracker: Tracker) -> str:
    """The channel kind of the sender (telegram, phone, …)."""
    return identity_of(tracker).split(":", 1)[0]


# --- submitting a proposal ----------------------------------------------------------------


class ValidateProposalForm(FormValidationAction):
    """Title and content as the resident says them, then a yes/no read-back."""

    def name(self) -> str:
        return "validate_proposal_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if form_started_now(tracker, "proposal_form"):
            # A fresh start: nothing left over from an interrupted proposal; a request such
            # as "我建议门口装个长椅" already says the title.
            title = None
            if latest_intent(tracker) == "submit_proposal":
                title = title_from_request(latest_text(tracker))
            return slot_events(cleared(PROPOSAL_SLOTS, proposal_title=title))
        return await super().run(dispatcher, tracker, domain)

    def validate_proposal_title(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = tidy(str(value or ""))
        if says_no(tracker):
            dispatcher.utter_message(text=NOT_SUBMITTED)
            return stop(PROPOSAL_SLOTS)
        if len(text) < TITLE_MIN:
            dispatcher.utter_message(text=TITLE_TOO_SHORT)
            return {"proposal_title": None}
        if len(text) > TITLE_MAX:
            if not tracker.get_slot("proposal_content"):
                # A long first answer is the content: keep it and ask for the one sentence.
                dispatcher.utter_message(text=TITLE_FROM_LONG)
                return {"proposal_title": None, "proposal_content": text[:CONTENT_MAX]}
            dispatcher.utter_message(text=TITLE_TOO_LONG)
            return {"proposal_title": None}
        return {"proposal_title": text}

    def validate_proposal_content(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = tidy(str(value or ""))
        if says_stop(tracker):
            dispatcher.utter_message(text=NOT_SUBMITTED)
            return stop(PROPOSAL_SLOTS)
        short_reply = len(bare(text)) <= 6 and latest_intent(tracker) in ("affirm", "deny")
        if short_reply or bare(text) in _NOTHING_MORE:
            # "没有了": the one sentence says it all.
            return {"proposal_content": tracker.get_slot("proposal_title")}
        if len(bare(text)) < 2:
            dispatcher.utter_message(text=CONTENT_TOO_SHORT)
            return {"proposal_content": None}
        return {"proposal_content": text[:CONTENT_MAX]}

    def validate_proposal_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        answer = yes_or_no(tracker)
        if answer is None:
            dispatcher.utter_message(text=SAY_YES_OR_NO)
        return {"proposal_confirm": answer}


class ActionAskProposalTitle(Action):
    """Ask for the proposal in one sentence."""

    def name(self) -> str:
        return "action_ask_proposal_title"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ask_free_text(dispatcher, ASK_TITLE)
        return []


class ActionAskProposalContent(Action):
    """Ask for the details."""

    def name(self) -> str:
        return "action_ask_proposal_content"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        ask_free_text(dispatcher, ASK_CONTENT)
        return []


class ActionAskProposalConfirm(Action):
    """Read the proposal back before it goes to the community."""

    def name(self) -> str:
        return "action_ask_proposal_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        title = tracker.get_slot("proposal_title") or ""
        content = tracker.get_slot("proposal_content") or ""
        said = f"“{title}”" if content in ("", title) else f"“{title}”，{short(content, 60)}"
        ask_yes_no(dispatcher, f"我帮您记下了：{said}。现在交给社区，对吗？")
        return []


class ActionProposalSubmit(Action):
    """Submit the confirmed proposal once, say what happens next, and clear the form."""

    def name(self) -> str:
        return "action_proposal_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reset = slot_events(cleared(PROPOSAL_SLOTS))
        confirmed = tracker.get_slot("proposal_confirm")
        if confirmed is None:
            return reset  # the form stopped early and already said why
        if confirmed is not True:
            dispatcher.utter_message(text=NOT_SUBMITTED)
            return reset
        title = tracker.get_slot("proposal_title")
        content = tracker.get_slot("proposal_content") or title
        body = {
            "identity": identity_of(tracker),
            "title": title,
            "content": content,
            "channel": channel_of(tracker),
        }
        key = form_idempotency_key(
            tracker.sender_id, "proposal_form", {"title": title, "content": content}
        )
        try:
            await records_client.get_client().post(PROPOSALS, body, idempotency_key=key)
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            if error.status == 403:
                dispatcher.utter_message(text=NOT_REGISTERED_EXTRA)
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
        else:
            dispatcher.utter_message(text=SUBMITTED)
        return reset


# --- listing proposals ----------------------------------------------------------------------


async def supportable(limit: int) -> list[dict[str, Any]]:
    """Proposals gathering support, newest first."""
    page = await records_client.get_client().get(
        PROPOSALS, {"status": list(SUPPORTABLE), "limit": limit}
    )
    return list((page or {}).get("items") or [])


def support_payload(position: int) -> str:
    """The button payload that supports the proposal at this position of the list."""
    return f'/support_proposal{{"choice":"{position}"}}'


class ActionProposalList(Action):
    """Read the newest proposals gathering support and remember their order."""

    def name(self) -> str:
        return "action_proposal_list"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            page = await records_client.get_client().get(
                PROPOSALS, {"status": list(SUPPORTABLE), "limit": LIST_LIMIT}
            )
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return []
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return []
        items = list((page or {}).get("items") or [])
        total = int((page or {}).get("total") or len(items))
        if not items:
            dispatcher.utter_message(text=NONE_OPEN)
            return [SlotSet(LISTED, [])]
        if len(items) == 1:
            only = items[0]
            ask_yes_no(
                dispatcher,
                f"现在有1个提案在征集支持：“{only['title']}”，"
                f"已有{only['support_count']}人支持。您要支持它吗？",
            )
        else:
            head = f"现在有{total}个提案在征集支持"
            head += f"，最新的{len(items)}个是：" if total > len(items) else "："
            lines = [f"{p['title']}，{p['support_count']}人支持" for p in items]
            ask_choice(
                dispatcher,
                head + numbered(lines) + "您要支持哪一个？",
                [(short(p["title"]), support_payload(n)) for n, p in enumerate(items, start=1)],
            )
        return [SlotSet(LISTED, [p["id"] for p in items])]


# --- supporting a proposal ------------------------------------------------------------------


async def is_verified(tracker: Tracker) -> bool | None:
    """Whether the sender is verified now (None when the records cannot say)."""
    if tracker.get_slot("verified") is True:
        return True
    try:
        found = await records_client.get_client().post(
            "/api/v1/identities/resolve", {"identity": identity_of(tracker)}
        )
    except RecordsError:
        return None
    return bool((found or {}).get("verified"))


class ValidateProposalSupportForm(FormValidationAction):
    """Which proposal (by position in the last list, by its words, or the only one), then yes/no."""

    def name(self) -> str:
        return "validate_proposal_support_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if form_started_now(tracker, "proposal_support_form"):
            return slot_events(await self._start(dispatcher, tracker))
        return await super().run(dispatcher, tracker, domain)

    async def _start(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        verified = await is_verified(tracker)
        if verified is False:
            dispatcher.utter_message(text=SUPPORT_NEEDS_VERIFIED)
            return stop(SUPPORT_SLOTS)
        learned = verified and tracker.get_slot("verified") is not True
        extra = {"verified": True} if learned else {}
        listed = tracker.get_slot(LISTED) or []
        position = position_said(tracker)
        chosen = pick(listed, position)
        proposal: dict[str, Any] | bool | None
        try:
            if chosen is not None:
                proposal = await self._proposal(chosen)
            else:
                proposal = await self._guess(tracker, listed, position)
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return stop(SUPPORT_SLOTS)
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return stop(SUPPORT_SLOTS)
        if proposal is False:
            dispatcher.utter_message(text=NONE_TO_SUPPORT)
            return stop(SUPPORT_SLOTS)
        if not isinstance(proposal, dict):
            return cleared(SUPPORT_SLOTS, **extra)  # the form asks which one
        if proposal["status"] not in SUPPORTABLE:
            dispatcher.utter_message(text=NOT_SUPPORTABLE)
            return stop(SUPPORT_SLOTS)
        return cleared(
            SUPPORT_SLOTS,
            proposal_support_id=proposal["id"],
            proposal_support_title=proposal["title"],
            **extra,
        )

    @staticmethod
    async def _proposal(proposal_id: Any) -> dict[str, Any]:
        return await records_client.get_client().get(f"{PROPOSALS}/{proposal_id}")

    @staticmethod
    async def _guess(
        tracker: Tracker, listed: list[Any], position: int | None
    ) -> dict[str, Any] | bool | None:
        """The proposal meant without a usable position; None to ask, False if there is none."""
        items = await supportable(CHOICE_LIMIT)
        if not items:
            return False
        by_id = {p["id"]: p for p in items}
        titled = match_title(latest_text(tracker), [(p["id"], p["title"]) for p in items])
        if titled is not None:
            return by_id[titled]
        if position is not None:
            return pick(items, position)
        if len(listed) == 1 and listed[0] in by_id:
            return by_id[listed[0]]  # "这个我支持" right after hearing the only one
        return items[0] if len(items) == 1 else None

    async def extract_proposal_support_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if requested(tracker) != "proposal_support_id" or not answered_just_now(tracker):
            return {}
        if not is_answer(tracker):
            return {}
        if says_no(tracker):
            return {"proposal_support_id": CANCELLED}
        chosen = pick(tracker.get_slot(LISTED) or [], position_said(tracker))
        if chosen is None:
            try:
                items = await supportable(CHOICE_LIMIT)
            except RecordsError:
                items = []
            chosen = match_title(latest_text(tracker), [(p["id"], p["title"]) for p in items])
        return {"proposal_support_id": chosen if chosen is not None else latest_text(tracker)}

    async def validate_proposal_support_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCELLED:
            dispatcher.utter_message(text=NOT_SUPPORTED)
            return stop(SUPPORT_SLOTS)
        if not isinstance(value, int) or isinstance(value, bool):
            dispatcher.utter_message(text=WHICH_NOT_HEARD)
            return {"proposal_support_id": None}
        try:
            proposal = await self._proposal(value)
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return {"proposal_support_id": None}
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return stop(SUPPORT_SLOTS)
        if proposal["status"] not in SUPPORTABLE:
            dispatcher.utter_message(text=NOT_SUPPORTABLE)
            return {"proposal_support_id": None}
        return {"proposal_support_id": value, "proposal_support_title": proposal["title"]}

    def validate_proposal_support_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        answer = yes_or_no(tracker)
        if answer is None:
            dispatcher.utter_message(text=SAY_YES_OR_NO)
        return {"proposal_support_confirm": answer}


class ActionAskProposalSupportId(Action):
    """List the proposals gathering support and ask which one (keypad 1-5)."""

    def name(self) -> str:
        return "action_ask_proposal_support_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            items = await supportable(CHOICE_LIMIT)
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return [SlotSet("requested_slot", None)]
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return [SlotSet("requested_slot", None)]
        if not items:
            dispatcher.utter_message(text=NONE_TO_SUPPORT)
            return [SlotSet("requested_slot", None)]
        lines = [f"{p['title']}，{p['support_count']}人支持" for p in items]
        ask_choice(
            dispatcher,
            "正在征集支持的提案有：" + numbered(lines) + "您要支持哪一个？",
            [(short(p["title"]), support_payload(n)) for n, p in enumerate(items, start=1)],
        )
        return [SlotSet(LISTED, [p["id"] for p in items])]


class ActionAskProposalSupportConfirm(Action):
    """Read back which proposal is about to be supported."""

    def name(self) -> str:
        return "action_ask_proposal_support_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        title = tracker.get_slot("proposal_support_title") or "这个提案"
        ask_yes_no(dispatcher, f"您要支持“{title}”这个提案，对吗？")
        return []


class ActionProposalSupportSubmit(Action):
    """Count the confirmed support and read the backend's thanks; clear the form."""

    def name(self) -> str:
        return "action_proposal_support_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reset = slot_events(cleared(SUPPORT_SLOTS))
        confirmed = tracker.get_slot("proposal_support_confirm")
        proposal_id = tracker.get_slot("proposal_support_id")
        if confirmed is None or proposal_id is None:
            return reset  # the form stopped early and already said why
        if confirmed is not True:
            dispatcher.utter_message(text=NOT_SUPPORTED)
            return reset
        key = form_idempotency_key(
            tracker.sender_id, "proposal_support_form", {"proposal_id": proposal_id}
        )
        try:
            result = await records_client.get_client().post(
                f"{PROPOSALS}/{proposal_id}/support",
                {"identity": identity_of(tracker)},
                idempotency_key=key,
            )
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
        else:
            dispatcher.utter_message(text=(result or {}).get("text") or SUPPORT_THANKS)
        return reset
