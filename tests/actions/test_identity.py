"""verify_form: reading the code, checking it with the backend, filling who the sender is."""

from typing import Any

import pytest

from actions.common import BACKEND_DOWN
from actions.identity import (
    ALREADY_VERIFIED,
    ASK_CODE,
    GIVE_UP_MISSES,
    GIVE_UP_WRONG,
    LOCKED,
    STOPPED,
    VERIFIED,
    VERIFY_PATH,
    ActionAskVerificationCode,
    ActionVerifySubmit,
    ValidateVerifyForm,
    find_code,
)
from tests.actions.people_support import (
    SENDER,
    FakeRecords,
    make_tracker,
    problem,
    run_action,
    slot_events,
    texts,
)

FORM = "verify_form"
BAD_CODE = "验证码不对或已过期，请核对后再说一遍。"
LOCKED_DETAIL = "验证码错误次数太多，请一小时后再试，或联系工作人员。"

# POST /api/v1/identities/verify, 200 (records.schemas.people.IdentityOut).
VERIFIED_OUT = {
    "identity": SENDER,
    "kind": "telegram",
    "state": "verified",
    "verified": True,
    "recognised_by": "identity",
    "resident": {
        "id": 3,
        "name": "王秀英",
        "is_elderly": True,
        "lives_alone": True,
        "dietary_notes": "少盐",
        "address": {
            "building_id": 3,
            "building_number": 3,
            "entrance": 2,
            "room": "501",
            "text": "3号楼2单元501",
        },
    },
}


def answering(text: str, *, intent: str = "verify_identity", **slots: object):
    """The tracker when the user answers the code question with this text."""
    return make_tracker(
        text=text,
        intent=intent,
        slots=dict(slots),
        active_loop=FORM,
        requested_slot="verification_code",
        answer=("verification_code", text),
    )


def assert_code_never_said(messages: list[dict[str, Any]], code: str) -> None:
    for text in texts(messages):
        assert code not in text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("我的验证码是三七五一九二", "375192"),
        ("385921", "385921"),
        ("验证码是 604117", "604117"),
        ("验证码是幺零八八六七", "108867"),
        ("我念给你听 六 八 二 零 四 一", "682041"),
        ("幺二三 四五六", "123456"),
        ("385 921", "385921"),
        ("我住3栋2单元501 码是 193027", "193027"),
        ("我是302的，验证码193027", "193027"),
        ("零三七五一九", "037519"),
        ("验正码 ５１８２４０", "518240"),
    ],
)
def test_find_code_reads_spoken_and_typed_codes(text: str, code: str) -> None:
    assert find_code(text) == code


@pytest.mark.parametrize("text", ["验证身份", "12345", "1234567", "我是6号楼302的", ""])
def test_find_code_needs_exactly_six_digits(text: str) -> None:
    assert find_code(text) is None


def test_ask_for_the_code_expects_six_digits() -> None:
    events, messages = run_action(ActionAskVerificationCode(), make_tracker())
    assert events == []
    assert messages[0]["text"] == ASK_CODE
    assert messages[0]["expect"] == {"type": "digits", "length": 6}


def test_code_in_the_first_message_is_checked_at_activation() -> None:
    backend = FakeRecords({VERIFY_PATH: (200, VERIFIED_OUT)})
    tracker = make_tracker(text="我的验证码是385921", intent="verify_identity")
    events, messages = run_action(ValidateVerifyForm(), tracker, backend)

    assert [(c.method, c.path, c.body) for c in backend.calls] == [
        ("POST", VERIFY_PATH, {"identity": SENDER, "code": "385921"})
    ]
    assert slot_events(events) == {
        "verification_code": VERIFIED,
        "verified": True,
        "resident_known": True,
        "resident_name": "王秀英",
        "home_address": "3号楼2单元501",
        "verify_failures": 0,
        "verify_misses": 0,
    }
    assert messages == []


def test_activation_with_the_form_already_marked_active() -> None:
    # Rasa's first validation call at activation already has the form as the active loop.
    backend = FakeRecords({VERIFY_PATH: (200, VERIFIED_OUT)})
    tracker = make_tracker(text="验证码 385921", intent="verify_identity", active_loop=FORM)
    events, _ = run_action(ValidateVerifyForm(), tracker, backend)
    assert slot_events(events)["verification_code"] == VERIFIED
    assert len(backend.calls) == 1


def test_spoken_answer_is_verified_and_fills_who_the_sender_is() -> None:
    backend = FakeRecords({VERIFY_PATH: (200, VERIFIED_OUT)})
    events, messages = run_action(
        ValidateVerifyForm(), answering("我的验证码是三七五一九二"), backend
    )
    assert backend.calls[0].body == {"identity": SENDER, "code": "375192"}
    slots = slot_events(events)
    assert slots["verification_code"] == VERIFIED
    assert slots["verified"] is True
    assert slots["resident_name"] == "王秀英"
    assert "requested_slot" not in slots or slots["requested_slot"] is None
    assert_code_never_said(messages, "375192")


def test_activation_without_a_code_just_asks() -> None:
    backend = FakeRecords({})
    events, messages = run_action(
        ValidateVerifyForm(), make_tracker(text="验证身份", intent="verify_identity"), backend
    )
    assert events == []
    assert messages == []
    assert backend.calls == []


def test_already_verified_sender_is_told_and_the_form_stops() -> None:
    tracker = make_tracker(text="验证身份", intent="verify_identity", slots={"verified": True})
    events, messages = run_action(ValidateVerifyForm(), tracker)
    assert texts(messages) == [ALREADY_VERIFIED]
    assert slot_events(events) == {"requested_slot": None}


def test_wrong_code_is_relayed_and_asked_once_more() -> None:
    backend = FakeRecords({VERIFY_PATH: problem(422, "bad-code", BAD_CODE)})
    events, messages = run_action(ValidateVerifyForm(), answering("385920"), backend)
    assert texts(messages) == [BAD_CODE]
    slots = slot_events(events)
    assert slots["verification_code"] is None
    assert slots["verify_failures"] == 1
    assert "requested_slot" not in slots  # the form asks again
    assert_code_never_said(messages, "385920")


def test_second_wrong_code_ends_the_form() -> None:
    backend = FakeRecords({VERIFY_PATH: problem(422, "bad-code", BAD_CODE)})
    events, messages = run_action(
        ValidateVerifyForm(), answering("385920", verify_failures=1), backend
    )
    assert texts(messages) == [GIVE_UP_WRONG]
    slots = slot_events(events)
    assert slots["requested_slot"] is None
    assert slots["verification_code"] is None
    assert slots["verify_failures"] == 0


def test_locked_sender_is_told_once_and_the_code_is_not_retried() -> None:
    backend = FakeRecords({VERIFY_PATH: problem(429, "verification-locked", LOCKED_DETAIL)})
    events, messages = run_action(ValidateVerifyForm(), answering("385921"), backend)
    # The client would retry a 429; every try would count as a failed code.
    assert len(backend.calls) == 1
    assert texts(messages) == [LOCKED]
    assert slot_events(events)["requested_slot"] is None
    assert slot_events(events)["verification_code"] is None


def test_backend_down_is_never_reported_as_verified() -> None:
    backend = FakeRecords({VERIFY_PATH: (503, {"detail": "down"})})
    events, messages = run_action(ValidateVerifyForm(), answering("385921"), backend)
    assert len(backend.calls) == 1
    assert texts(messages) == [BACKEND_DOWN]
    slots = slot_events(events)
    assert slots["requested_slot"] is None
    assert "verified" not in slots


def test_wrong_length_is_asked_again_without_calling_the_backend() -> None:
    backend = FakeRecords({})
    events, messages = run_action(ValidateVerifyForm(), answering("验证码 12345"), backend)
    assert backend.calls == []
    assert texts(messages) == ["验证码是6位数字，我听到的是5位。"]
    assert slot_events(events) == {"verification_code": None, "verify_misses": 1}


def test_no_code_heard_counts_a_miss_and_the_third_gives_up() -> None:
    events, messages = run_action(ValidateVerifyForm(), answering("嗯", intent="nlu_fallback"))
    assert slot_events(events) == {"verification_code": None, "verify_misses": 1}
    assert texts(messages) == ["我没听到验证码。"]

    events, messages = run_action(
        ValidateVerifyForm(), answering("嗯", intent="nlu_fallback", verify_misses=2)
    )
    assert texts(messages) == [GIVE_UP_MISSES]
    assert slot_events(events)["requested_slot"] is None


@pytest.mark.parametrize(
    ("text", "intent"), [("算了", "deny"), ("我没有验证码", "verify_identity")]
)
def test_no_code_after_all_stops_and_says_how_to_get_one(text: str, intent: str) -> None:
    events, messages = run_action(ValidateVerifyForm(), answering(text, intent=intent))
    assert texts(messages) == [STOPPED]
    assert slot_events(events)["requested_slot"] is None


def test_submit_greets_by_name_and_clears_the_form() -> None:
    tracker = make_tracker(slots={"verification_code": VERIFIED, "resident_name": "王秀英"})
    events, messages = run_action(ActionVerifySubmit(), tracker)
    assert texts(messages) == ["验证成功，王秀英您好！"]
    assert slot_events(events) == {
        "verification_code": None,
        "verify_failures": 0,
        "verify_misses": 0,
    }


def test_submit_after_a_stopped_form_says_nothing_more() -> None:
    events, messages = run_action(ActionVerifySubmit(), make_tracker())
    assert messages == []
    assert slot_events(events)["verification_code"] is None
