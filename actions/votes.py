"""Votes (投票): which votes are open for me, casting a secret ballot, reading a result.

vote_form: which vote → the choice → an explicit read-back → POST /api/v1/votes/{id}/ballots.
vote_result_form: which closed vote → GET /api/v1/votes/{id}/tally.
Voting needs a verified identity; the backend says who may vote and refuses a second ballot.
The ballot's Idempotency-Key never depends on the choice: keys are stored next to the sender.
"""

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import records_client
from actions.civic import (
    answered_just_now,
    bare,
    cleared,
    form_started_now,
    is_answer,
    latest_intent,
    match_title,
    numbered,
    pick,
    position_in_text,
    position_said,
    requested,
    say_refusal,
    says_no,
    short,
    slot_events,
    stop,
    when_words,
    yes_or_no,
)
from actions.common import (
    ask_choice,
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
)

VOTES = "/api/v1/votes"
RESULTS_LIMIT = 3

VOTE_SLOTS = ("vote_id", "vote_choice", "vote_confirm")
RESULT_SLOTS = ("vote_result_id",)
LISTED = "civic_listed_votes"  # ids in the order last read out
OPEN = "civic_open_votes"  # the open votes for this sender, as last fetched
LISTED_RESULTS = "civic_listed_results"
CANCELLED = "__cancelled__"

YES_NO_CODES = ("yes", "no", "abstain")
# Words for the yes/no/abstain options; "no" first, since 不同意 contains 同意.
_CHOICE_WORDS = (
    ("no", ("不同意", "不赞成", "不支持", "反对", "返对", "否决")),
    ("abstain", ("弃权", "弃票", "不表态", "气权", "器权")),
    ("yes", ("同意", "赞成", "支持", "同义", "赞城")),
)

NO_OPEN_VOTES = "现在没有您可以参加的投票。投过的不会再列出来，有新的投票会通知您。"
WHICH_VOTE_NOT_HEARD = "没听清是哪一个投票。请说第几个，比如“第一个”。"
VOTE_GONE = "这个投票现在不能投了。"
YES_NO_HELP = "没听清您的选择。请说“同意”、“反对”，或者“弃权”。"
OPTIONS_HELP = "没听清您选的是哪一个。请说第几个，比如“第一个”。"
SAY_SURE_OR_NOT = "请说“确定”，或者说“不投了”。"
NOT_VOTED = "好的，这次先不投。"
NO_CLOSED_VOTES = "最近还没有结束的投票。结果要等投票结束以后才公布。"
WHICH_RESULT_NOT_HEARD = "没听清是哪一个。请说第几个，比如“第一个”。"
NO_RESULT_WANTED = "好的。"


# --- votes as the assistant keeps them ----------------------------------------------------


def compact(vote: dict[str, Any]) -> dict[str, Any]:
    """What the dialogue needs of a vote (kept in a slot between turns)."""
    return {
        "id": vote["id"],
        "title": vote["title"],
        "kind": vote.get("kind", "yes_no"),
        "closes_at": vote.get("closes_at"),
        "scope": vote.get("scope", "community"),
        "scope_name": vote.get("scope_name") or "本社区",
        "options": [
            {"code": o["code"], "label": o["label"], "position": o["position"]}
            for o in vote.get("options") or []
        ],
    }


def find(votes: list[dict[str, Any]] | None, vote_id: Any) -> dict[str, Any] | None:
    """The vote with this id."""
    return next((v for v in votes or [] if v["id"] == vote_id), None)


def current_vote(tracker: Tracker) -> dict[str, Any] | None:
    """The vote the form is about."""
    return find(tracker.get_slot(OPEN), tracker.get_slot("vote_id"))


def label_of(vote: dict[str, Any], code: Any) -> str:
    """The label people hear for an option code."""
    return next((o["label"] for o in vote["options"] if o["code"] == code), str(code))


def vote_line(vote: dict[str, Any], *, quoted: bool = False) -> str:
    """标题（限3号楼），明天晚上6点截止"""
    title = f"“{vote['title']}”" if quoted else vote["title"]
    scope = f"（限{vote['scope_name']}）" if vote.get("scope") != "community" else ""
    closes = f"，{when_words(vote['closes_at'])}截止" if vote.get("closes_at") else ""
    return f"{title}{scope}{closes}"


def choose_payload(position: int) -> str:
    """Button payload choosing the vote at this position of the list."""
    return f'/cast_vote{{"choice":"{position}"}}'


def result_payload(position: int) -> str:
    """Button payload choosing the result at this position of the list."""
    return f'/vote_result{{"choice":"{position}"}}'


def resolve_choice(vote: dict[str, Any], said: Any, text: str = "") -> str | None:
    """The option code meant: a code ("yes", "2"), a position, the option's words or label."""
    options = vote["options"]
    codes = {o["code"] for o in options}

    def at(position: int | None) -> str | None:
        return next((o["code"] for o in options if o["position"] == position), None)

    if isinstance(said, str) and said:
        if said in codes:
            return said
        if said.isdigit():
            return at(int(said))
    words = bare(text)
    if not words:
        return None
    if vote["kind"] == "yes_no":
        for code, synonyms in _CHOICE_WORDS:
            if code in codes and any(word in words for word in synonyms):
                return code
    for option in sorted(options, key=lambda o: len(o["label"]), reverse=True):
        if option["label"] and bare(option["label"]) in words:
            return str(option["code"])
    return at(position_in_text(text))


def choice_help(vote: dict[str, Any]) -> str:
    """How to answer the choice question of this vote."""
    return YES_NO_HELP if vote["kind"] == "yes_no" else OPTIONS_HELP


async def open_for_me(tracker: Tracker) -> list[dict[str, Any]]:
    """The open votes this sender may still vote in (403 when not verified)."""
    votes = await records_client.get_client().post(
        f"{VOTES}/open-for-me", {"identity": identity_of(tracker)}
    )
    return [compact(v) for v in votes or []]


async def recent_closed() -> list[dict[str, Any]]:
    """The latest closed votes."""
    page = await records_client.get_client().get(VOTES, {"state": "closed", "limit": RESULTS_LIMIT})
    return list((page or {}).get("items") or [])


# --- listing votes ----------------------------------------------------------------------------


class ActionVoteList(Action):
    """Read the open votes this resident may still vote in, and remember their order."""

    def name(self) -> str:
        return "action_vote_list"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            votes = await open_for_me(tracker)
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return []
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return []
        events: list[EventType] = [SlotSet(LISTED, [v["id"] for v in votes]), SlotSet(OPEN, votes)]
        if not votes:
            dispatcher.utter_message(text=NO_OPEN_VOTES)
        elif len(votes) == 1:
            ask_yes_no(
                dispatcher,
                f"现在有1个投票您可以参加：{vote_line(votes[0], quoted=True)}。要现在投吗？",
            )
        else:
            ask_choice(
                dispatcher,
                f"现在有{len(votes)}个投票您可以参加："
                + numbered([vote_line(v) for v in votes])
                + "您要投哪一个？",
                [(short(v["title"]), choose_payload(n)) for n, v in enumerate(votes, start=1)],
            )
        return events


# --- casting a ballot -------------------------------------------------------------------------


def which_vote(
    tracker: Tracker, votes: list[dict[str, Any]], *, answering: bool
) -> tuple[Any | None, bool]:
    """The vote meant, and whether a number said was its position (not an option).

    By its words ("电梯那个"), by position in the list last read out (a number is a position
    when answering "which one", or when several votes are open), or the only open vote.
    """
    ids = [v["id"] for v in votes]
    titled = match_title(latest_text(tracker), [(v["id"], v["title"]) for v in votes])
    if titled is not None:
        return titled, False
    position = position_said(tracker)
    if position is not None and (answering or len(votes) > 1):
        chosen = pick(tracker.get_slot(LISTED) or ids, position)
        if chosen in ids:
            return chosen, True
    if len(votes) == 1 and not answering:
        return ids[0], False
    return None, False


class ValidateVoteForm(FormValidationAction):
    """Which vote, which choice (checked against that vote's options), then sure or not."""

    def name(self) -> str:
        return "validate_vote_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if form_started_now(tracker, "vote_form"):
            return slot_events(await self._start(dispatcher, tracker))
        return await super().run(dispatcher, tracker, domain)

    async def _start(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        try:
            votes = await open_for_me(tracker)
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return stop(VOTE_SLOTS)
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return stop(VOTE_SLOTS)
        if not votes:
            dispatcher.utter_message(text=NO_OPEN_VOTES)
            return {**stop(VOTE_SLOTS), OPEN: []}
        values = cleared(VOTE_SLOTS, **{OPEN: votes})
        vote_id, was_position = which_vote(tracker, votes, answering=False)
        said = entity_value(tracker, "choice")
        vote = find(votes, vote_id)
        if vote is not None:
            values["vote_id"] = vote_id
            if not was_position:
                values["vote_choice"] = resolve_choice(vote, said, latest_text(tracker))
        elif said in YES_NO_CODES:
            values["vote_choice"] = said  # kept until the vote is chosen
        return values

    async def extract_vote_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if requested(tracker) != "vote_id" or not answered_just_now(tracker):
            return {}
        if not is_answer(tracker):
            return {}
        if says_no(tracker):
            return {"vote_id": CANCELLED}
        vote_id, _ = which_vote(tracker, tracker.get_slot(OPEN) or [], answering=True)
        return {"vote_id": vote_id if vote_id is not None else latest_text(tracker)}

    async def extract_vote_choice(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not answered_just_now(tracker) or not is_answer(tracker):
            return {}
        said = entity_value(tracker, "choice")
        asked = requested(tracker)
        if asked == "vote_id" and said in YES_NO_CODES:
            return {"vote_choice": said}  # said before choosing the vote: kept for later
        if asked != "vote_choice":
            return {}
        if says_no(tracker):
            return {"vote_choice": CANCELLED}
        vote = current_vote(tracker)
        code = resolve_choice(vote, said, latest_text(tracker)) if vote else None
        return {"vote_choice": code if code is not None else latest_text(tracker)}

    def validate_vote_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCELLED:
            dispatcher.utter_message(text=NOT_VOTED)
            return stop(VOTE_SLOTS)
        vote = find(tracker.get_slot(OPEN), value)
        if vote is None:
            gone = isinstance(value, int) and not isinstance(value, bool)
            dispatcher.utter_message(text=VOTE_GONE if gone else WHICH_VOTE_NOT_HEARD)
            return {"vote_id": None}
        result: dict[str, Any] = {"vote_id": value}
        pending = tracker.get_slot("vote_choice")
        if pending is not None:
            result["vote_choice"] = resolve_choice(vote, pending)
        return result

    def validate_vote_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCELLED:
            dispatcher.utter_message(text=NOT_VOTED)
            return stop(VOTE_SLOTS)
        vote = current_vote(tracker)
        if vote is None:
            return {"vote_choice": value if value in YES_NO_CODES else None}
        code = resolve_choice(vote, value, str(value or ""))
        if code is None:
            dispatcher.utter_message(text=choice_help(vote))
        return {"vote_choice": code}

    def validate_vote_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        vote = current_vote(tracker)
        said = entity_value(tracker, "choice")
        if vote is not None and said and latest_intent(tracker) == "cast_vote":
            # "反对" when asked "确定吗": a change of mind, read back again.
            code = resolve_choice(vote, said, latest_text(tracker))
            if code is not None and code != tracker.get_slot("vote_choice"):
                return {"vote_choice": code, "vote_confirm": None}
            if code is not None:
                return {"vote_confirm": True}
        answer = yes_or_no(tracker)
        if answer is None:
            dispatcher.utter_message(text=SAY_SURE_OR_NOT)
        return {"vote_confirm": answer}


class ActionAskVoteId(Action):
    """Ask which of the open votes (keypad: its number)."""

    def name(self) -> str:
        return "action_ask_vote_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        votes = tracker.get_slot(OPEN) or []
        if not votes:
            dispatcher.utter_message(text=NO_OPEN_VOTES)
            return [SlotSet("requested_slot", None)]
        ask_choice(
            dispatcher,
            "现在可以投的有：" + numbered([vote_line(v) for v in votes]) + "您要投哪一个？",
            [(short(v["title"]), choose_payload(n)) for n, v in enumerate(votes, start=1)],
        )
        return [SlotSet(LISTED, [v["id"] for v in votes])]


class ActionAskVoteChoice(Action):
    """Ask for the choice: 同意/反对/弃权, or the options of this vote."""

    def name(self) -> str:
        return "action_ask_vote_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        vote = current_vote(tracker)
        if vote is None:
            return [SlotSet("requested_slot", None)]
        options = sorted(vote["options"], key=lambda o: o["position"])
        buttons = [(o["label"], f'/cast_vote{{"choice":"{o["code"]}"}}') for o in options]
        if vote["kind"] == "yes_no":
            labels = "、".join(o["label"] for o in options[:-1]) + f"，还是{options[-1]['label']}"
            text = f"“{vote['title']}”，您投{labels}？"
        else:
            text = (
                f"“{vote['title']}”有{len(options)}个方案："
                + numbered([o["label"] for o in options])
                + "您选哪一个？"
            )
        ask_choice(dispatcher, text, buttons)
        return []


class ActionAskVoteConfirm(Action):
    """The explicit read-back: a ballot cannot be changed."""

    def name(self) -> str:
        return "action_ask_vote_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        vote = current_vote(tracker)
        if vote is None:
            return [SlotSet("requested_slot", None)]
        label = label_of(vote, tracker.get_slot("vote_choice"))
        ask_yes_no(dispatcher, f"您要对『{vote['title']}』投『{label}』，投了就不能改了，确定吗？")
        return []


class ActionVoteSubmit(Action):
    """Cast the confirmed ballot once and read the receipt; clear the form."""

    def name(self) -> str:
        return "action_vote_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reset = slot_events(cleared(VOTE_SLOTS))
        confirmed = tracker.get_slot("vote_confirm")
        vote_id = tracker.get_slot("vote_id")
        choice = tracker.get_slot("vote_choice")
        if confirmed is None or vote_id is None or choice is None:
            return reset  # the form stopped early and already said why
        if confirmed is not True:
            dispatcher.utter_message(text=NOT_VOTED)
            return reset
        # One ballot per vote and sender: the key must not depend on the choice (secrecy).
        key = form_idempotency_key(tracker.sender_id, "vote_form", {"vote_id": vote_id})
        try:
            receipt = await records_client.get_client().post(
                f"{VOTES}/{vote_id}/ballots",
                {"identity": identity_of(tracker), "choice": choice},
                idempotency_key=key,
            )
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
        else:
            dispatcher.utter_message(
                text=(receipt or {}).get("text") or "您的投票已经记下了，谢谢参与！"
            )
        return reset


# --- results ----------------------------------------------------------------------------------


class ValidateVoteResultForm(FormValidationAction):
    """Which vote's result: by position in the last list, by its words, or the only one."""

    def name(self) -> str:
        return "validate_vote_result_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if form_started_now(tracker, "vote_result_form"):
            return slot_events(await self._start(dispatcher, tracker))
        return await super().run(dispatcher, tracker, domain)

    async def _start(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        position = position_said(tracker)
        chosen = pick(tracker.get_slot(LISTED_RESULTS) or [], position)
        if chosen is not None:
            return cleared(RESULT_SLOTS, vote_result_id=chosen)
        try:
            closed = await recent_closed()
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return stop(RESULT_SLOTS)
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return stop(RESULT_SLOTS)
        closed_ids = [v["id"] for v in closed]
        # Open ones too: "电梯那个投票通过了吗" before it closes is told when results come.
        still_open = [v for v in tracker.get_slot(OPEN) or [] if v["id"] not in closed_ids]
        titled = match_title(
            latest_text(tracker), [(v["id"], v["title"]) for v in [*closed, *still_open]]
        )
        chosen = titled if titled is not None else pick(closed_ids, position)
        if chosen is not None:
            return cleared(RESULT_SLOTS, vote_result_id=chosen)
        if not closed:
            dispatcher.utter_message(text=NO_CLOSED_VOTES)
            return stop(RESULT_SLOTS)
        if len(closed) == 1:
            return cleared(RESULT_SLOTS, vote_result_id=closed_ids[0])
        return cleared(RESULT_SLOTS)  # the form asks which one

    async def extract_vote_result_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if requested(tracker) != "vote_result_id" or not answered_just_now(tracker):
            return {}
        if not is_answer(tracker):
            return {}
        if says_no(tracker):
            return {"vote_result_id": CANCELLED}
        chosen = pick(tracker.get_slot(LISTED_RESULTS) or [], position_said(tracker))
        if chosen is None:
            try:
                closed = await recent_closed()
            except RecordsError:
                closed = []
            chosen = match_title(latest_text(tracker), [(v["id"], v["title"]) for v in closed])
        return {"vote_result_id": chosen if chosen is not None else latest_text(tracker)}

    def validate_vote_result_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCELLED:
            dispatcher.utter_message(text=NO_RESULT_WANTED)
            return stop(RESULT_SLOTS)
        if isinstance(value, int) and not isinstance(value, bool):
            return {"vote_result_id": value}
        dispatcher.utter_message(text=WHICH_RESULT_NOT_HEARD)
        return {"vote_result_id": None}


class ActionAskVoteResultId(Action):
    """Ask which of the latest closed votes (keypad: its number)."""

    def name(self) -> str:
        return "action_ask_vote_result_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            closed = await recent_closed()
        except RecordsRefused as error:
            say_refusal(dispatcher, error)
            return [SlotSet("requested_slot", None)]
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
            return [SlotSet("requested_slot", None)]
        if not closed:
            dispatcher.utter_message(text=NO_CLOSED_VOTES)
            return [SlotSet("requested_slot", None)]
        ask_choice(
            dispatcher,
            "最近结束的投票有：" + numbered([v["title"] for v in closed]) + "您想听哪一个的结果？",
            [(short(v["title"]), result_payload(n)) for n, v in enumerate(closed, start=1)],
        )
        return [SlotSet(LISTED_RESULTS, [v["id"] for v in closed])]


def tally_words(tally: dict[str, Any]) -> str:
    """The public result in words (the backend's sentence when it gives one)."""
    if tally.get("text"):
        return str(tally["text"])
    counts = "，".join(f"{o['label']}{o['count']}票" for o in tally.get("options") or [])
    return f"“{tally.get('title', '')}”投票结果：{counts}；共{tally.get('total', 0)}票。"


class ActionVoteResult(Action):
    """Read the tally of the chosen vote, or when it will be published; clear the form."""

    def name(self) -> str:
        return "action_vote_result"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reset = slot_events(cleared(RESULT_SLOTS))
        vote_id = tracker.get_slot("vote_result_id")
        if vote_id is None:
            return reset  # the form stopped early and already said why
        try:
            tally = await records_client.get_client().get(f"{VOTES}/{vote_id}/tally")
        except RecordsRefused as error:
            say_refusal(dispatcher, error)  # 409 before it closes: when results come
        except RecordsUnavailable as error:
            say_error(dispatcher, error)
        else:
            dispatcher.utter_message(text=tally_words(tally or {}))
        return reset
