"""Vote actions: open votes, the vote form with its read-back, secret ballots, results."""

from datetime import datetime

import httpx
import pytest
from rasa_sdk import Tracker

from actions import civic, votes
from actions.civic import VERIFY_HOW, when_words
from actions.common import BACKEND_DOWN
from actions.records_client import form_idempotency_key
from actions.votes import (
    ActionAskVoteChoice,
    ActionAskVoteConfirm,
    ActionAskVoteId,
    ActionAskVoteResultId,
    ActionVoteList,
    ActionVoteResult,
    ActionVoteSubmit,
    ValidateVoteForm,
    ValidateVoteResultForm,
    compact,
    resolve_choice,
)
from tests.actions.civic_fakes import (
    NOT_VERIFIED_PROBLEM,
    NOW,
    SENDER,
    FakeRecords,
    expect_of,
    install,
    page,
    problem,
    run,
    slots_of,
    texts,
    tracker,
    vote,
)

OPEN_FOR_ME = "/api/v1/votes/open-for-me"
VOTES = "/api/v1/votes"
FORM = "vote_form"
RESULT_FORM = "vote_result_form"
LIFT = "3号楼加装电梯"
COLOUR = "小广场地面颜色"
LIFT_VOTE = vote(21, LIFT, scope="building", scope_name="3号楼")
COLOUR_VOTE = vote(22, COLOUR, options=["绿色", "蓝色"], closes_at="2026-11-25T04:30:00Z")


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> FakeRecords:
    return install(monkeypatch)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test hears times relative to NOW, whatever today's date is."""
    monkeypatch.setattr(civic, "now", lambda: NOW)


def snapshot(*items: dict[str, object]) -> list[dict[str, object]]:
    return [compact(v) for v in items]


# --- words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "words"),
    [
        ("2026-11-23T10:00:00Z", "今天晚上6点"),
        ("2026-11-24T01:30:00Z", "明天上午9点半"),
        ("2026-11-25T04:05:00Z", "后天中午12点5分"),
        ("2026-12-01T07:00:00Z", "12月1日下午3点"),
        ("2026-11-24T16:00:00Z", "明天晚上12点"),  # midnight ends the day before
    ],
)
def test_times_in_words(moment: str, words: str) -> None:
    assert when_words(datetime.fromisoformat(moment), NOW) == words


@pytest.mark.parametrize(
    ("said", "text", "code"),
    [
        ("yes", "", "yes"),
        ("no", "", "no"),
        ("2", "", "no"),
        (None, "我不同意", "no"),
        (None, "这事我弃权", "abstain"),
        (None, "赞成", "yes"),
        (None, "随便", None),
        ("4", "", None),
    ],
)
def test_choices_on_a_yes_no_vote(said: str | None, text: str, code: str | None) -> None:
    assert resolve_choice(compact(LIFT_VOTE), said, text) == code


@pytest.mark.parametrize(
    ("said", "text", "code"),
    [
        ("2", "", "2"),
        (None, "我选蓝色的", "2"),
        (None, "第一个", "1"),
        ("3", "", None),
        ("yes", "我同意", None),
    ],
)
def test_choices_on_an_options_vote(said: str | None, text: str, code: str | None) -> None:
    assert resolve_choice(compact(COLOUR_VOTE), said, text) == code


# --- listing ----------------------------------------------------------------------------------


def test_open_votes_are_read_with_when_they_close(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [LIFT_VOTE, COLOUR_VOTE])
    events, [message] = run(ActionVoteList(), tracker(text="现在有啥投票", intent="list_votes"))
    assert records.body(records.sent("POST", OPEN_FOR_ME)[0]) == {"identity": SENDER}
    assert message["text"] == (
        f"现在有2个投票您可以参加：1. {LIFT}（限3号楼），今天晚上6点截止；"
        f"2. {COLOUR}，后天中午12点半截止。您要投哪一个？"
    )
    assert expect_of(message)["type"] == "choice"
    assert [o["payload"] for o in expect_of(message)["options"]] == [
        '/cast_vote{"choice":"1"}',
        '/cast_vote{"choice":"2"}',
    ]
    assert slots_of(events)["civic_listed_votes"] == [21, 22]
    assert slots_of(events)["civic_open_votes"] == snapshot(LIFT_VOTE, COLOUR_VOTE)


def test_one_open_vote_is_offered_with_yes_no(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [COLOUR_VOTE])
    _, [message] = run(ActionVoteList(), tracker())
    assert (
        message["text"] == f"现在有1个投票您可以参加：“{COLOUR}”，后天中午12点半截止。要现在投吗？"
    )
    assert expect_of(message)["type"] == "yes_no"


def test_listing_for_an_unverified_sender_says_how_to_verify(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, problem(*NOT_VERIFIED_PROBLEM))
    events, messages = run(ActionVoteList(), tracker())
    assert texts(messages) == ["需要先核实身份。" + VERIFY_HOW]
    assert events == []


def test_nothing_open(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [])
    events, messages = run(ActionVoteList(), tracker())
    assert texts(messages) == [votes.NO_OPEN_VOTES]
    assert slots_of(events) == {"civic_listed_votes": [], "civic_open_votes": []}


# --- vote_form: starting ----------------------------------------------------------------------


def test_the_only_open_vote_with_the_choice_said_goes_straight_to_the_read_back(
    records: FakeRecords,
) -> None:
    records.on("POST", OPEN_FOR_ME, [LIFT_VOTE])
    state = tracker(
        text="我投同意",
        intent="cast_vote",
        entities={"choice": "yes"},
        form=FORM,
        started=True,
        slots={"vote_confirm": True, "vote_choice": "no"},
    )
    events, messages = run(ValidateVoteForm(), state)
    assert slots_of(events) == {
        "vote_id": 21,
        "vote_choice": "yes",
        "vote_confirm": None,
        "civic_open_votes": snapshot(LIFT_VOTE),
    }
    assert messages == []


def test_a_number_after_hearing_several_votes_chooses_the_vote(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [LIFT_VOTE, COLOUR_VOTE])
    state = tracker(
        text="第二个",
        intent="cast_vote",
        entities={"choice": "2"},
        form=FORM,
        started=True,
        slots={"civic_listed_votes": [21, 22]},
    )
    events, _ = run(ValidateVoteForm(), state)
    assert slots_of(events)["vote_id"] == 22
    assert slots_of(events)["vote_choice"] is None  # the number chose the vote, not an option


def test_the_vote_by_its_words_and_the_option_by_number(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [LIFT_VOTE, COLOUR_VOTE])
    state = tracker(
        text="颜色那个投票我选第二个",
        intent="cast_vote",
        entities={"choice": "2"},
        form=FORM,
        started=True,
    )
    events, _ = run(ValidateVoteForm(), state)
    assert (slots_of(events)["vote_id"], slots_of(events)["vote_choice"]) == (22, "2")


def test_a_choice_said_before_the_vote_is_known_is_kept(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [LIFT_VOTE, COLOUR_VOTE])
    state = tracker(
        text="我投同意", intent="cast_vote", entities={"choice": "yes"}, form=FORM, started=True
    )
    events, _ = run(ValidateVoteForm(), state)
    assert (slots_of(events)["vote_id"], slots_of(events)["vote_choice"]) == (None, "yes")


def test_an_unverified_sender_hears_how_to_verify_and_the_form_stops(
    records: FakeRecords,
) -> None:
    records.on("POST", OPEN_FOR_ME, problem(*NOT_VERIFIED_PROBLEM))
    events, messages = run(
        ValidateVoteForm(), tracker(text="我要投票", intent="cast_vote", form=FORM, started=True)
    )
    assert texts(messages) == ["需要先核实身份。" + VERIFY_HOW]
    assert slots_of(events) == {
        "vote_id": None,
        "vote_choice": None,
        "vote_confirm": None,
        "requested_slot": None,
    }


def test_nothing_to_vote_on_stops_the_form(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, [])
    events, messages = run(
        ValidateVoteForm(), tracker(text="我要投票", intent="cast_vote", form=FORM, started=True)
    )
    assert texts(messages) == [votes.NO_OPEN_VOTES]
    assert slots_of(events)["requested_slot"] is None


def test_the_backend_down_at_the_start_stops_the_form(records: FakeRecords) -> None:
    records.on("POST", OPEN_FOR_ME, problem(503, "unavailable", "x"))
    events, messages = run(
        ValidateVoteForm(), tracker(text="我要投票", intent="cast_vote", form=FORM, started=True)
    )
    assert texts(messages) == [BACKEND_DOWN]
    assert slots_of(events)["requested_slot"] is None


# --- vote_form: questions and answers ---------------------------------------------------------


def test_which_vote_is_asked_over_the_open_ones() -> None:
    state = tracker(slots={"civic_open_votes": snapshot(LIFT_VOTE, COLOUR_VOTE)})
    events, [message] = run(ActionAskVoteId(), state)
    assert message["text"].startswith(f"现在可以投的有：1. {LIFT}（限3号楼），今天晚上6点截止；")
    assert message["text"].endswith("您要投哪一个？")
    assert [b["payload"] for b in message["buttons"]] == [
        '/cast_vote{"choice":"1"}',
        '/cast_vote{"choice":"2"}',
    ]
    assert slots_of(events) == {"civic_listed_votes": [21, 22]}


def test_a_typed_number_answers_which_vote_and_checks_the_kept_choice() -> None:
    state = tracker(
        text="2",
        intent="nlu_fallback",
        form=FORM,
        requested="vote_id",
        slots={
            "civic_open_votes": snapshot(LIFT_VOTE, COLOUR_VOTE),
            "civic_listed_votes": [21, 22],
            "vote_choice": "yes",
        },
    )
    events, messages = run(ValidateVoteForm(), state)
    # "同意" said earlier does not fit the colour vote: it is asked for again.
    assert slots_of(events) == {"vote_id": 22, "vote_choice": None}
    assert messages == []


def test_an_answer_that_names_no_vote_is_asked_again() -> None:
    state = tracker(
        text="嗯",
        intent="affirm",
        form=FORM,
        requested="vote_id",
        slots={
            "civic_open_votes": snapshot(LIFT_VOTE, COLOUR_VOTE),
            "civic_listed_votes": [21, 22],
        },
    )
    events, messages = run(ValidateVoteForm(), state)
    assert slots_of(events) == {"vote_id": None}
    assert texts(messages) == [votes.WHICH_VOTE_NOT_HEARD]


def test_yes_no_votes_offer_agree_disagree_abstain_as_buttons() -> None:
    state = tracker(slots={"civic_open_votes": snapshot(LIFT_VOTE), "vote_id": 21})
    _, [message] = run(ActionAskVoteChoice(), state)
    assert message["text"] == f"“{LIFT}”，您投同意、反对，还是弃权？"
    assert expect_of(message)["options"] == [
        {"key": "1", "label": "同意", "payload": '/cast_vote{"choice":"yes"}'},
        {"key": "2", "label": "反对", "payload": '/cast_vote{"choice":"no"}'},
        {"key": "3", "label": "弃权", "payload": '/cast_vote{"choice":"abstain"}'},
    ]


def test_option_votes_offer_their_labels() -> None:
    state = tracker(slots={"civic_open_votes": snapshot(COLOUR_VOTE), "vote_id": 22})
    _, [message] = run(ActionAskVoteChoice(), state)
    assert message["text"] == f"“{COLOUR}”有2个方案：1. 绿色；2. 蓝色。您选哪一个？"
    assert [o["payload"] for o in expect_of(message)["options"]] == [
        '/cast_vote{"choice":"1"}',
        '/cast_vote{"choice":"2"}',
    ]


def answering(
    slot: str,
    text: str,
    intent: str,
    *,
    vote_id: int = 21,
    entities: dict[str, str] | None = None,
    slots: dict[str, object] | None = None,
    candidates: dict[str, object] | None = None,
    after: str | None = None,
) -> Tracker:
    """The vote form's validation, answering `slot` about vote `vote_id`."""
    known = {"civic_open_votes": snapshot(LIFT_VOTE, COLOUR_VOTE), "vote_id": vote_id}
    return tracker(
        text=text,
        intent=intent,
        entities=entities,
        form=FORM,
        requested=slot,
        slots={**known, **(slots or {})},
        candidates=candidates,
        after=after,
    )


def test_a_pressed_button_fills_the_choice() -> None:
    state = answering(
        "vote_choice", '/cast_vote{"choice":"no"}', "cast_vote", entities={"choice": "no"}
    )
    events, messages = run(ValidateVoteForm(), state)
    assert slots_of(events) == {"vote_choice": "no"}
    assert messages == []


def test_an_option_that_does_not_exist_is_asked_again() -> None:
    state = answering("vote_choice", "选第三个", "cast_vote", vote_id=22, entities={"choice": "3"})
    events, messages = run(ValidateVoteForm(), state)
    assert slots_of(events) == {"vote_choice": None}
    assert texts(messages) == [votes.OPTIONS_HELP]


def test_an_option_by_its_label() -> None:
    state = answering("vote_choice", "蓝色那个", "nlu_fallback", vote_id=22)
    events, _ = run(ValidateVoteForm(), state)
    assert slots_of(events) == {"vote_choice": "2"}


def test_not_voting_after_all() -> None:
    state = answering("vote_choice", "不投了", "deny")
    events, messages = run(ValidateVoteForm(), state)
    assert texts(messages) == ["好的，这次先不投。"]
    assert slots_of(events)["requested_slot"] is None


def test_the_read_back_says_it_cannot_be_changed() -> None:
    state = tracker(
        slots={"civic_open_votes": snapshot(LIFT_VOTE), "vote_id": 21, "vote_choice": "yes"}
    )
    _, [message] = run(ActionAskVoteConfirm(), state)
    assert message["text"] == f"您要对『{LIFT}』投『同意』，投了就不能改了，确定吗？"
    assert expect_of(message)["type"] == "yes_no"


def test_a_different_choice_at_the_read_back_is_read_back_again() -> None:
    state = answering(
        "vote_confirm",
        "我反对",
        "cast_vote",
        entities={"choice": "no"},
        slots={"vote_choice": "yes"},
        candidates={"vote_confirm": "我反对"},
    )
    events, messages = run(ValidateVoteForm(), state)
    assert slots_of(events) == {"vote_choice": "no", "vote_confirm": None}
    assert messages == []


@pytest.mark.parametrize(
    ("said", "intent", "answer"),
    [
        ("确定", "affirm", True),
        ("不是", "deny", False),
        ("2", "nlu_fallback", False),
        ("我再想想", "nlu_fallback", None),
    ],
)
def test_sure_or_not(said: str, intent: str, answer: bool | None) -> None:
    state = answering(
        "vote_confirm",
        said,
        intent,
        slots={"vote_choice": "yes"},
        candidates={"vote_confirm": said},
    )
    events, messages = run(ValidateVoteForm(), state)
    assert slots_of(events)["vote_confirm"] is answer
    assert texts(messages) == ([] if answer is not None else [votes.SAY_SURE_OR_NOT])


def test_help_in_the_middle_is_not_an_answer() -> None:
    state = answering("vote_choice", "我该怎么说", "help", after="action_help")
    events, messages = run(ValidateVoteForm(), state)
    assert events == []
    assert messages == []


# --- casting ----------------------------------------------------------------------------------


def _confirmed(**slots: object) -> dict[str, object]:
    return {
        "civic_open_votes": snapshot(LIFT_VOTE),
        "vote_id": 21,
        "vote_choice": "yes",
        "vote_confirm": True,
        **slots,
    }


RECEIPT = {
    "vote_id": 21,
    "vote_title": LIFT,
    "results_at": "2026-11-23T10:00:00Z",
    "text": f"您的投票已经记下了，谢谢参与！“{LIFT}”的结果会在11月23日18:00投票结束后公布。",
}


def test_the_ballot_is_cast_once_with_a_key_that_does_not_reveal_the_choice(
    records: FakeRecords,
) -> None:
    records.on("POST", f"{VOTES}/21/ballots", httpx.Response(201, json=RECEIPT))
    events, messages = run(ActionVoteSubmit(), tracker(slots=_confirmed()))
    [sent] = records.sent("POST", f"{VOTES}/21/ballots")
    assert records.body(sent) == {"identity": SENDER, "choice": "yes"}
    key = sent.headers["Idempotency-Key"]
    assert key == form_idempotency_key(SENDER, "vote_form", {"vote_id": 21})
    assert texts(messages) == [RECEIPT["text"]]
    assert slots_of(events) == dict.fromkeys(votes.VOTE_SLOTS)
    # Another choice gives the same key: the stored key says nothing about the ballot.
    run(ActionVoteSubmit(), tracker(slots=_confirmed(vote_choice="no")))
    assert records.sent("POST", f"{VOTES}/21/ballots")[1].headers["Idempotency-Key"] == key


@pytest.mark.parametrize(
    ("status", "code", "detail"),
    [
        (409, "already-voted", "您已经投过票了，每人只能投一次。"),
        (409, "vote-closed", "投票已经结束了，谢谢您的关心。"),
        (403, "not-in-scope", "这次投票只限3号楼的居民参加。"),
        (403, "no-household", "这次投票按户进行，您还没有登记住址，请先联系社区工作人员登记。"),
    ],
)
def test_refusals_are_told_as_the_backend_says(
    records: FakeRecords, status: int, code: str, detail: str
) -> None:
    records.on("POST", f"{VOTES}/21/ballots", problem(status, code, detail))
    events, messages = run(ActionVoteSubmit(), tracker(slots=_confirmed()))
    assert texts(messages) == [detail]
    assert slots_of(events) == dict.fromkeys(votes.VOTE_SLOTS)


def test_a_ballot_refused_for_want_of_verification_says_how(records: FakeRecords) -> None:
    records.on("POST", f"{VOTES}/21/ballots", problem(*NOT_VERIFIED_PROBLEM))
    _, messages = run(ActionVoteSubmit(), tracker(slots=_confirmed()))
    assert texts(messages) == ["需要先核实身份。" + VERIFY_HOW]


def test_an_unreachable_backend_never_claims_the_vote_counted(records: FakeRecords) -> None:
    records.on("POST", f"{VOTES}/21/ballots", problem(502, "bad-gateway", "x"))
    _, messages = run(ActionVoteSubmit(), tracker(slots=_confirmed()))
    assert texts(messages) == [BACKEND_DOWN]


def test_no_at_the_read_back_casts_nothing(records: FakeRecords) -> None:
    _, messages = run(ActionVoteSubmit(), tracker(slots=_confirmed(vote_confirm=False)))
    assert texts(messages) == ["好的，这次先不投。"]
    assert records.requests == []


def test_a_form_that_stopped_early_is_cleared_silently(records: FakeRecords) -> None:
    events, messages = run(ActionVoteSubmit(), tracker(slots=_confirmed(vote_confirm=None)))
    assert messages == []
    assert records.requests == []
    assert slots_of(events) == dict.fromkeys(votes.VOTE_SLOTS)


# --- results ----------------------------------------------------------------------------------

CLOSED_A = vote(11, "东门加装道闸", state="closed", closes_at="2026-11-15T10:00:00Z")
CLOSED_B = vote(
    12,
    "广场舞时间调整",
    options=["晚7点到8点", "晚7点半到8点半"],
    state="closed",
    closes_at="2026-11-10T10:00:00Z",
)
TALLY = {
    "vote_id": 11,
    "title": "东门加装道闸",
    "closes_at": "2026-11-15T10:00:00Z",
    "options": [
        {"code": "yes", "label": "同意", "position": 1, "count": 52},
        {"code": "no", "label": "反对", "position": 2, "count": 9},
        {"code": "abstain", "label": "弃权", "position": 3, "count": 3},
    ],
    "total": 64,
    "eligible": 160,
    "turnout": 0.4,
    "text": "“东门加装道闸”投票结果：同意52票，反对9票，弃权3票；共64票，参与率40%。",
}


def test_the_only_recent_result_needs_no_question(records: FakeRecords) -> None:
    records.on("GET", VOTES, page([CLOSED_A]))
    state = tracker(text="投票结果", intent="vote_result", form=RESULT_FORM, started=True)
    events, _ = run(ValidateVoteResultForm(), state)
    [sent] = records.sent("GET", VOTES)
    assert (sent.url.params["state"], sent.url.params["limit"]) == ("closed", "3")
    assert slots_of(events) == {"vote_result_id": 11}


def test_several_results_are_offered(records: FakeRecords) -> None:
    records.on("GET", VOTES, page([CLOSED_A, CLOSED_B]))
    state = tracker(text="投票结果出来了吗", intent="vote_result", form=RESULT_FORM, started=True)
    events, _ = run(ValidateVoteResultForm(), state)
    assert slots_of(events) == {"vote_result_id": None}
    events, [message] = run(ActionAskVoteResultId(), tracker())
    assert (
        message["text"]
        == "最近结束的投票有：1. 东门加装道闸；2. 广场舞时间调整。您想听哪一个的结果？"
    )
    assert expect_of(message)["options"][1]["payload"] == '/vote_result{"choice":"2"}'
    assert slots_of(events) == {"civic_listed_results": [11, 12]}


def test_a_result_by_position_in_the_list_heard() -> None:
    state = tracker(
        text="第二个",
        intent="cast_vote",
        entities={"choice": "2"},
        form=RESULT_FORM,
        requested="vote_result_id",
        slots={"civic_listed_results": [11, 12]},
    )
    events, _ = run(ValidateVoteResultForm(), state)
    assert slots_of(events) == {"vote_result_id": 12}


def test_a_result_answer_not_understood(records: FakeRecords) -> None:
    records.on("GET", VOTES, page([CLOSED_A, CLOSED_B]))
    state = tracker(
        text="嗯",
        intent="affirm",
        form=RESULT_FORM,
        requested="vote_result_id",
        slots={"civic_listed_results": [11, 12]},
    )
    events, messages = run(ValidateVoteResultForm(), state)
    assert slots_of(events) == {"vote_result_id": None}
    assert texts(messages) == [votes.WHICH_RESULT_NOT_HEARD]


def test_an_open_vote_asked_by_its_words_is_told_when_results_come(records: FakeRecords) -> None:
    records.on("GET", VOTES, page([CLOSED_A]))
    state = tracker(
        text="加装电梯那个投票通过了吗",
        intent="vote_result",
        form=RESULT_FORM,
        started=True,
        slots={"civic_open_votes": snapshot(LIFT_VOTE)},
    )
    events, _ = run(ValidateVoteResultForm(), state)
    assert slots_of(events) == {"vote_result_id": 21}
    detail = "投票还没结束，结果会在11月23日18:00后公布。"
    records.on("GET", f"{VOTES}/21/tally", problem(409, "vote-not-closed", detail))
    events, messages = run(ActionVoteResult(), tracker(slots={"vote_result_id": 21}))
    assert texts(messages) == [detail]
    assert slots_of(events) == {"vote_result_id": None}


def test_the_counts_are_read(records: FakeRecords) -> None:
    records.on("GET", f"{VOTES}/11/tally", TALLY)
    events, messages = run(ActionVoteResult(), tracker(slots={"vote_result_id": 11}))
    assert texts(messages) == [TALLY["text"]]
    assert slots_of(events) == {"vote_result_id": None}


def test_no_closed_votes_yet(records: FakeRecords) -> None:
    records.on("GET", VOTES, page([]))
    state = tracker(text="投票结果", intent="vote_result", form=RESULT_FORM, started=True)
    events, messages = run(ValidateVoteResultForm(), state)
    assert texts(messages) == [votes.NO_CLOSED_VOTES]
    assert slots_of(events)["requested_slot"] is None
