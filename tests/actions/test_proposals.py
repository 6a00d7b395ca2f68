"""Proposal actions: the proposal form, listing, supporting; against a scripted records API."""

import httpx
import pytest

from actions import proposals
from actions.civic import VERIFY_HOW, match_title, position_in_text
from actions.common import BACKEND_DOWN
from actions.proposals import (
    ActionAskProposalConfirm,
    ActionAskProposalContent,
    ActionAskProposalSupportConfirm,
    ActionAskProposalSupportId,
    ActionAskProposalTitle,
    ActionProposalList,
    ActionProposalSubmit,
    ActionProposalSupportSubmit,
    ValidateProposalForm,
    ValidateProposalSupportForm,
    title_from_request,
)
from actions.records_client import form_idempotency_key
from tests.actions.civic_fakes import (
    NOT_VERIFIED_PROBLEM,
    SENDER,
    FakeRecords,
    expect_of,
    install,
    page,
    problem,
    proposal,
    run,
    slots_of,
    texts,
    tracker,
)

LIST = "/api/v1/proposals"
FORM = "proposal_form"
SUPPORT_FORM = "proposal_support_form"
BENCH = "小区门口多装几个长椅"
SHADE = "在广场搭个凉棚"
LIGHTS = "楼道里的灯再亮一点"


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> FakeRecords:
    return install(monkeypatch)


# --- understanding what was said ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "title"),
    [
        ("我建议小区多装几个长椅 老人走累了能歇歇", "小区多装几个长椅，老人走累了能歇歇"),
        ("提个建议 3号楼门口装个充电桩", "3号楼门口装个充电桩"),
        ("我提议咱们楼加装电梯", "咱们楼加装电梯"),
        ("建议在广场搭个凉棚 夏天太晒了", "在广场搭个凉棚，夏天太晒了"),
        ("我要提按 小区绿化太少了", "小区绿化太少了"),
        ("我要给社区提意见 垃圾分类点太远了", "垃圾分类点太远了"),
        ("我想提个提议 给老人办个书法班", "给老人办个书法班"),
        ("我要提个提案", None),
        ("我想提个建议", None),
        ("给小区提个建议", None),
        ("写个建议给居委会", None),
        ("我有个提案想让大家投票", None),
        ("我有个想法想跟社区说说", None),
        ("我想提一个关于停车的建议", None),
        ("新建提案", None),
    ],
)
def test_a_request_that_names_the_proposal_gives_its_title(said: str, title: str | None) -> None:
    assert title_from_request(said) == title


@pytest.mark.parametrize(
    ("said", "position"),
    [
        ("支持第二个", 2),
        ("第2个", 2),
        ("方案三", 3),
        ("2", 2),
        ("二", 2),
        ("选一个", 1),
        ("我支持这个提案", None),
        ("3号楼加装电梯那个", None),
    ],
)
def test_positions_in_words(said: str, position: int | None) -> None:
    assert position_in_text(said) == position


def test_a_title_is_found_by_its_words_only_when_one_fits() -> None:
    items = [(1, BENCH), (2, SHADE), (3, LIGHTS)]
    assert match_title("凉棚那个提案我附议", items) == 2
    assert match_title("我支持这个提案", items) is None
    assert match_title("小区那个", items) is None  # too general to say which


# --- proposal_form -----------------------------------------------------------------------------


def test_a_request_naming_the_proposal_starts_with_the_title_and_nothing_left_over() -> None:
    state = tracker(
        text="我建议小区门口多装几个长椅",
        intent="submit_proposal",
        form=FORM,
        started=True,
        slots={"proposal_content": "上次没提交的内容", "proposal_confirm": True},
    )
    events, messages = run(ValidateProposalForm(), state)
    assert slots_of(events) == {
        "proposal_title": BENCH,
        "proposal_content": None,
        "proposal_confirm": None,
    }
    assert messages == []


def test_a_plain_request_starts_empty() -> None:
    state = tracker(
        text="我要提个提案",
        intent="submit_proposal",
        form=FORM,
        started=True,
        slots={"proposal_title": "旧的"},
    )
    events, _ = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_title"] is None


def test_the_title_is_taken_as_said() -> None:
    state = tracker(
        text=f" {SHADE}。",
        intent="nlu_fallback",
        form=FORM,
        requested="proposal_title",
        candidates={"proposal_title": f" {SHADE}。"},
    )
    events, messages = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_title"] == SHADE
    assert messages == []


def test_a_too_short_title_is_asked_again() -> None:
    state = tracker(
        text="嗯",
        intent="affirm",
        form=FORM,
        requested="proposal_title",
        candidates={"proposal_title": "嗯"},
    )
    events, messages = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_title"] is None
    assert texts(messages) == [proposals.TITLE_TOO_SHORT]


def test_a_long_first_answer_becomes_the_content_and_the_title_is_asked_again() -> None:
    said = "咱们小区东门口那块空地一直空着，夏天特别晒，老人们出来遛弯没地方歇脚，" * 2
    state = tracker(
        text=said,
        intent="submit_proposal",
        form=FORM,
        requested="proposal_title",
        candidates={"proposal_title": said},
    )
    events, messages = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_title"] is None
    assert slots_of(events)["proposal_content"].startswith("咱们小区东门口")
    assert texts(messages) == [proposals.TITLE_FROM_LONG]


def test_never_mind_at_the_title_stops_without_submitting() -> None:
    state = tracker(
        text="算了",
        intent="deny",
        form=FORM,
        requested="proposal_title",
        candidates={"proposal_title": "算了"},
    )
    events, messages = run(ValidateProposalForm(), state)
    assert slots_of(events) == {
        "proposal_title": None,
        "proposal_content": None,
        "proposal_confirm": None,
        "requested_slot": None,
    }
    assert texts(messages) == [proposals.NOT_SUBMITTED]


def test_nothing_more_to_say_keeps_the_title_as_content() -> None:
    state = tracker(
        text="没有了",
        intent="deny",
        form=FORM,
        requested="proposal_content",
        slots={"proposal_title": SHADE},
        candidates={"proposal_content": "没有了"},
    )
    events, _ = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_content"] == SHADE


def test_the_content_is_taken_as_said() -> None:
    said = "夏天太晒了 老人没地方乘凉"
    state = tracker(
        text=said,
        intent="nlu_fallback",
        form=FORM,
        requested="proposal_content",
        slots={"proposal_title": SHADE},
        candidates={"proposal_content": said},
    )
    events, _ = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_content"] == "夏天太晒了，老人没地方乘凉"


@pytest.mark.parametrize(
    ("said", "intent", "answer"),
    [
        ("是的", "affirm", True),
        ("不是", "deny", False),
        ("1", "nlu_fallback", True),
        ("对，交吧", "nlu_fallback", True),
        ("我再想想", "nlu_fallback", None),
    ],
)
def test_the_read_back_answer(said: str, intent: str, answer: bool | None) -> None:
    state = tracker(
        text=said,
        intent=intent,
        form=FORM,
        requested="proposal_confirm",
        slots={"proposal_title": SHADE, "proposal_content": SHADE},
        candidates={"proposal_confirm": said},
    )
    events, messages = run(ValidateProposalForm(), state)
    assert slots_of(events)["proposal_confirm"] is answer
    assert texts(messages) == ([] if answer is not None else ["请说“是”或者“不是”。"])


def test_the_questions_carry_their_expected_answers() -> None:
    _, title = run(ActionAskProposalTitle(), tracker())
    _, content = run(ActionAskProposalContent(), tracker())
    assert texts(title) == ["您的建议用一句话说是什么？"]
    assert texts(content) == ["具体说说？"]
    assert expect_of(title[0]) == expect_of(content[0]) == {"type": "free_text"}


def test_the_read_back_is_a_yes_no_question() -> None:
    state = tracker(slots={"proposal_title": SHADE, "proposal_content": "夏天太晒了"})
    _, messages = run(ActionAskProposalConfirm(), state)
    assert texts(messages) == [f"我帮您记下了：“{SHADE}”，夏天太晒了。现在交给社区，对吗？"]
    assert expect_of(messages[0])["type"] == "yes_no"
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/affirm", "/deny"]


def _confirmed(**slots: object) -> dict[str, object]:
    return {
        "proposal_title": SHADE,
        "proposal_content": "夏天太晒了",
        "proposal_confirm": True,
        **slots,
    }


def test_a_confirmed_proposal_is_submitted_once_and_the_form_cleared(records: FakeRecords) -> None:
    records.on(
        "POST",
        LIST,
        lambda request: httpx.Response(
            201, json=proposal(31, SHADE, status="submitted", supports=0)
        ),
    )
    events, messages = run(ActionProposalSubmit(), tracker(slots=_confirmed()))
    [sent] = records.sent("POST", LIST)
    assert records.body(sent) == {
        "identity": SENDER,
        "title": SHADE,
        "content": "夏天太晒了",
        "channel": "telegram",
    }
    key = form_idempotency_key(SENDER, "proposal_form", {"title": SHADE, "content": "夏天太晒了"})
    assert sent.headers["Idempotency-Key"] == key
    assert texts(messages) == [proposals.SUBMITTED]
    assert slots_of(events) == dict.fromkeys(proposals.PROPOSAL_SLOTS)
    # Submitted again (a retried turn), it carries the same key: the backend replays.
    run(ActionProposalSubmit(), tracker(slots=_confirmed()))
    assert records.sent("POST", LIST)[1].headers["Idempotency-Key"] == key


def test_a_phone_caller_submits_on_the_phone_channel(records: FakeRecords) -> None:
    records.on("POST", LIST, proposal(32, SHADE, status="submitted"))
    run(ActionProposalSubmit(), tracker(slots=_confirmed(), sender="phone:+8613800000001"))
    assert records.body(records.sent("POST", LIST)[0])["channel"] == "phone"


def test_an_unknown_sender_hears_the_reason_and_no_success(records: FakeRecords) -> None:
    detail = "提交提案需要先在社区登记。请联系社区工作人员登记后再提交。"
    records.on("POST", LIST, problem(403, "unknown-resident", detail))
    events, messages = run(ActionProposalSubmit(), tracker(slots=_confirmed()))
    assert texts(messages) == [detail, proposals.NOT_REGISTERED_EXTRA]
    assert slots_of(events) == dict.fromkeys(proposals.PROPOSAL_SLOTS)


def test_an_unreachable_backend_is_never_a_success(records: FakeRecords) -> None:
    records.on("POST", LIST, problem(503, "unavailable", "系统出了点问题，请稍后再试。"))
    _, messages = run(ActionProposalSubmit(), tracker(slots=_confirmed()))
    assert texts(messages) == [BACKEND_DOWN]


def test_no_at_the_read_back_submits_nothing(records: FakeRecords) -> None:
    events, messages = run(
        ActionProposalSubmit(), tracker(slots=_confirmed(proposal_confirm=False))
    )
    assert records.requests == []
    assert texts(messages) == ["好的，这次先不提交。"]
    assert slots_of(events) == dict.fromkeys(proposals.PROPOSAL_SLOTS)


def test_a_form_that_stopped_early_is_cleared_silently(records: FakeRecords) -> None:
    events, messages = run(ActionProposalSubmit(), tracker(slots=_confirmed(proposal_confirm=None)))
    assert records.requests == []
    assert messages == []
    assert slots_of(events) == dict.fromkeys(proposals.PROPOSAL_SLOTS)


# --- listing -------------------------------------------------------------------------------------


def test_the_newest_three_are_read_with_their_support(records: FakeRecords) -> None:
    items = [
        proposal(5, BENCH, supports=3),
        proposal(6, SHADE, status="supported", supports=12),
        proposal(7, LIGHTS, supports=0),
    ]
    records.on("GET", LIST, page(items, total=5))
    events, [message] = run(ActionProposalList(), tracker(text="现在有哪些提案"))
    [sent] = records.sent("GET", LIST)
    assert sent.url.params.get_list("status") == ["published", "supported"]
    assert sent.url.params["limit"] == "3"
    assert message["text"] == (
        f"现在有5个提案在征集支持，最新的3个是：1. {BENCH}，3人支持；2. {SHADE}，12人支持；"
        f"3. {LIGHTS}，0人支持。您要支持哪一个？"
    )
    expect = expect_of(message)
    assert expect["type"] == "choice"
    assert [o["payload"] for o in expect["options"]] == [
        '/support_proposal{"choice":"1"}',
        '/support_proposal{"choice":"2"}',
        '/support_proposal{"choice":"3"}',
    ]
    assert slots_of(events) == {"civic_listed_proposals": [5, 6, 7]}


def test_a_single_proposal_is_offered_with_yes_no(records: FakeRecords) -> None:
    records.on("GET", LIST, page([proposal(6, SHADE, supports=4)]))
    events, [message] = run(ActionProposalList(), tracker())
    assert message["text"] == f"现在有1个提案在征集支持：“{SHADE}”，已有4人支持。您要支持它吗？"
    assert expect_of(message)["type"] == "yes_no"
    assert slots_of(events) == {"civic_listed_proposals": [6]}


def test_no_proposals_says_how_to_make_one(records: FakeRecords) -> None:
    records.on("GET", LIST, page([]))
    events, messages = run(ActionProposalList(), tracker())
    assert texts(messages) == [proposals.NONE_OPEN]
    assert slots_of(events) == {"civic_listed_proposals": []}


def test_listing_while_the_backend_is_down(records: FakeRecords) -> None:
    records.on("GET", LIST, problem(503, "unavailable", "x"))
    events, messages = run(ActionProposalList(), tracker())
    assert texts(messages) == [BACKEND_DOWN]
    assert events == []


# --- proposal_support_form -----------------------------------------------------------------------


def test_support_the_second_of_the_list_heard(records: FakeRecords) -> None:
    records.on("GET", f"{LIST}/6", proposal(6, SHADE))
    state = tracker(
        text="支持第二个",
        intent="support_proposal",
        form=SUPPORT_FORM,
        started=True,
        slots={"verified": True, "civic_listed_proposals": [5, 6, 7]},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert slots_of(events) == {
        "proposal_support_id": 6,
        "proposal_support_title": SHADE,
        "proposal_support_confirm": None,
    }
    assert messages == []


def test_an_unverified_sender_is_told_how_to_verify_before_choosing(records: FakeRecords) -> None:
    records.on(
        "POST",
        "/api/v1/identities/resolve",
        {
            "identity": SENDER,
            "kind": "telegram",
            "state": "unverified",
            "verified": False,
            "recognised_by": None,
            "resident": None,
        },
    )
    state = tracker(text="附议", intent="support_proposal", form=SUPPORT_FORM, started=True)
    events, messages = run(ValidateProposalSupportForm(), state)
    assert texts(messages) == ["支持提案需要先核实身份。" + VERIFY_HOW]
    assert "验证身份" in messages[0]["text"]
    assert slots_of(events)["requested_slot"] is None
    assert records.sent("GET", LIST) == []


def test_a_sender_verified_since_the_session_began_is_remembered(records: FakeRecords) -> None:
    records.on(
        "POST",
        "/api/v1/identities/resolve",
        {
            "identity": SENDER,
            "kind": "telegram",
            "state": "verified",
            "verified": True,
            "recognised_by": "identity",
            "resident": {
                "id": 7,
                "name": "王秀英",
                "is_elderly": True,
                "lives_alone": True,
                "dietary_notes": None,
                "address": None,
            },
        },
    )
    records.on("GET", LIST, page([proposal(6, SHADE)]))
    state = tracker(text="附议", intent="support_proposal", form=SUPPORT_FORM, started=True)
    events, messages = run(ValidateProposalSupportForm(), state)
    assert slots_of(events)["verified"] is True
    assert slots_of(events)["proposal_support_id"] == 6
    assert messages == []


def test_support_by_the_words_of_the_title(records: FakeRecords) -> None:
    records.on("GET", LIST, page([proposal(5, BENCH), proposal(6, SHADE)], limit=5))
    state = tracker(
        text="凉棚那个提案我附议",
        intent="support_proposal",
        form=SUPPORT_FORM,
        started=True,
        slots={"verified": True},
    )
    events, _ = run(ValidateProposalSupportForm(), state)
    assert slots_of(events)["proposal_support_id"] == 6
    assert records.sent("GET", LIST)[0].url.params["limit"] == "5"


def test_the_only_proposal_is_the_one_meant(records: FakeRecords) -> None:
    records.on("GET", LIST, page([proposal(6, SHADE)]))
    state = tracker(
        text="我附议",
        intent="support_proposal",
        form=SUPPORT_FORM,
        started=True,
        slots={"verified": True},
    )
    events, _ = run(ValidateProposalSupportForm(), state)
    assert slots_of(events)["proposal_support_id"] == 6


def test_which_one_is_asked_when_several_could_be_meant(records: FakeRecords) -> None:
    records.on("GET", LIST, page([proposal(5, BENCH), proposal(6, SHADE)]))
    state = tracker(
        text="我附议",
        intent="support_proposal",
        form=SUPPORT_FORM,
        started=True,
        slots={"verified": True, "proposal_support_id": 99},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert slots_of(events)["proposal_support_id"] is None
    assert "requested_slot" not in slots_of(events)
    assert messages == []


def test_nothing_to_support(records: FakeRecords) -> None:
    records.on("GET", LIST, page([]))
    state = tracker(
        text="附议",
        intent="support_proposal",
        form=SUPPORT_FORM,
        started=True,
        slots={"verified": True},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert texts(messages) == [proposals.NONE_TO_SUPPORT]
    assert slots_of(events)["requested_slot"] is None


def test_asking_which_one_lists_them_with_keypad_numbers(records: FakeRecords) -> None:
    records.on("GET", LIST, page([proposal(5, BENCH), proposal(6, SHADE, supports=9)]))
    events, [message] = run(ActionAskProposalSupportId(), tracker())
    assert message["text"] == (
        f"正在征集支持的提案有：1. {BENCH}，3人支持；2. {SHADE}，9人支持。您要支持哪一个？"
    )
    assert [o["key"] for o in expect_of(message)["options"]] == ["1", "2"]
    assert slots_of(events) == {"civic_listed_proposals": [5, 6]}


def test_the_answer_by_position_or_button(records: FakeRecords) -> None:
    records.on("GET", f"{LIST}/6", proposal(6, SHADE))
    state = tracker(
        text='/support_proposal{"choice":"2"}',
        intent="support_proposal",
        entities={"choice": "2"},
        form=SUPPORT_FORM,
        requested="proposal_support_id",
        slots={"civic_listed_proposals": [5, 6]},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert slots_of(events) == {"proposal_support_id": 6, "proposal_support_title": SHADE}
    assert messages == []


def test_an_answer_not_understood_is_asked_again(records: FakeRecords) -> None:
    records.on("GET", LIST, page([proposal(5, BENCH), proposal(6, SHADE)]))
    state = tracker(
        text="嗯",
        intent="affirm",
        form=SUPPORT_FORM,
        requested="proposal_support_id",
        slots={"civic_listed_proposals": [5, 6]},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert slots_of(events) == {"proposal_support_id": None}
    assert texts(messages) == [proposals.WHICH_NOT_HEARD]


def test_a_proposal_no_longer_gathering_support_is_refused(records: FakeRecords) -> None:
    records.on("GET", f"{LIST}/5", proposal(5, BENCH, status="answered"))
    state = tracker(
        text="第一个",
        intent="cast_vote",
        entities={"choice": "1"},
        form=SUPPORT_FORM,
        requested="proposal_support_id",
        slots={"civic_listed_proposals": [5, 6]},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert slots_of(events) == {"proposal_support_id": None}
    assert texts(messages) == [proposals.NOT_SUPPORTABLE]


def test_after_repeat_the_old_message_is_not_taken_as_the_answer(records: FakeRecords) -> None:
    state = tracker(
        text="再说一遍",
        intent="repeat",
        form=SUPPORT_FORM,
        after="action_repeat",
        requested="proposal_support_id",
        slots={"civic_listed_proposals": [5, 6]},
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert events == []
    assert messages == []
    assert records.requests == []


def test_no_thanks_stops_supporting() -> None:
    state = tracker(
        text="不用了", intent="deny", form=SUPPORT_FORM, requested="proposal_support_id"
    )
    events, messages = run(ValidateProposalSupportForm(), state)
    assert texts(messages) == ["好的，这次先不支持。"]
    assert slots_of(events)["requested_slot"] is None


def test_the_support_read_back() -> None:
    _, [message] = run(
        ActionAskProposalSupportConfirm(), tracker(slots={"proposal_support_title": SHADE})
    )
    assert message["text"] == f"您要支持“{SHADE}”这个提案，对吗？"
    assert expect_of(message)["type"] == "yes_no"


def _support(**slots: object) -> dict[str, object]:
    return {
        "proposal_support_id": 6,
        "proposal_support_title": SHADE,
        "proposal_support_confirm": True,
        **slots,
    }


def test_a_confirmed_support_is_counted_and_the_thanks_read(records: FakeRecords) -> None:
    thanks = f"谢谢您的支持！“{SHADE}”已经有4位居民支持，达到10人后社区会正式答复。"
    records.on(
        "POST", f"{LIST}/6/support", {"proposal": proposal(6, SHADE, supports=4), "text": thanks}
    )
    events, messages = run(ActionProposalSupportSubmit(), tracker(slots=_support()))
    [sent] = records.sent("POST", f"{LIST}/6/support")
    assert records.body(sent) == {"identity": SENDER}
    assert sent.headers["Idempotency-Key"] == form_idempotency_key(
        SENDER, "proposal_support_form", {"proposal_id": 6}
    )
    assert texts(messages) == [thanks]
    assert slots_of(events) == dict.fromkeys(proposals.SUPPORT_SLOTS)


def test_support_refused_because_not_verified_says_how_to_verify(records: FakeRecords) -> None:
    records.on("POST", f"{LIST}/6/support", problem(*NOT_VERIFIED_PROBLEM))
    _, messages = run(ActionProposalSupportSubmit(), tracker(slots=_support()))
    assert texts(messages) == ["需要先核实身份。" + VERIFY_HOW]


def test_supporting_twice_is_told_kindly(records: FakeRecords) -> None:
    records.on(
        "POST", f"{LIST}/6/support", problem(409, "already-supported", "您已经支持过这个提案了。")
    )
    _, messages = run(ActionProposalSupportSubmit(), tracker(slots=_support()))
    assert texts(messages) == ["您已经支持过这个提案了。"]


def test_no_at_the_support_read_back(records: FakeRecords) -> None:
    _, messages = run(
        ActionProposalSupportSubmit(), tracker(slots=_support(proposal_support_confirm=False))
    )
    assert texts(messages) == ["好的，这次先不支持。"]
    assert records.requests == []
