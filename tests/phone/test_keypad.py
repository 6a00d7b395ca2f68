"""The keypad, the keypad hints, caller IDs and the phone's reading of replies (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from channels.rasa_client import BotReply
from voice.phone.callerid import CallerHasher, caller_number, to_e164
from voice.phone.dialogue import is_goodbye, is_handoff, phone_replies
from voice.phone.keypad import (
    MENU_HINT,
    Handoff,
    Keypad,
    NoMatch,
    Pending,
    Repeat,
    Send,
    keypad_hint,
    with_hint,
)

YES_NO: dict[str, Any] = {
    "type": "yes_no",
    "options": [
        {"key": "1", "label": "是", "payload": "/affirm"},
        {"key": "2", "label": "不是", "payload": "/deny"},
    ],
}
DAYS: dict[str, Any] = {
    "type": "choice",
    "options": [
        {"key": str(i), "label": label, "payload": f'/book_meal{{"date": "{label}"}}'}
        for i, label in enumerate(("今天", "明天", "后天"), start=1)
    ],
}
PORTIONS: dict[str, Any] = {"type": "number", "min": 1, "max": 10}
CODE: dict[str, Any] = {"type": "digits", "length": 6}


def press(keypad: Keypad, keys: str, expect: dict[str, Any] | None) -> list[object]:
    return [keypad.press(key, expect) for key in keys]


def test_options_answer_with_their_payloads() -> None:
    keypad = Keypad()
    assert keypad.press("1", YES_NO) == Send("/affirm")
    assert keypad.press("2", DAYS) == Send('/book_meal{"date": "明天"}')
    assert keypad.press("7", DAYS) == NoMatch("请按1到3，找人工按0。")
    assert keypad.press("5", YES_NO) == NoMatch("请按1或2，找人工按0。")


def test_zero_is_a_person_and_star_repeats_in_any_question() -> None:
    for expect in (None, YES_NO, DAYS, PORTIONS, {"type": "free_text"}):
        assert Keypad().press("0", expect) == Handoff()
        assert Keypad().press("*", expect) == Repeat()


def test_numbers_end_with_hash_or_when_no_digit_can_follow() -> None:
    keypad = Keypad()
    assert press(keypad, "1", PORTIONS) == [Pending()]  # 1 or 10?
    assert keypad.press("#", PORTIONS) == Send("1")
    assert press(keypad, "10", PORTIONS) == [Pending(), Send("10")]
    assert keypad.press("3", PORTIONS) == Send("3")  # 30 is out of range: no need to wait
    assert keypad.press("1", PORTIONS) == Pending()
    assert keypad.timeout(PORTIONS) == Send("1")  # no '#' pressed: sent after a pause
    assert press(keypad, "0", PORTIONS) == [Handoff()]  # a leading 0 is still a person
    assert keypad.press("#", PORTIONS) == NoMatch("请输入1到10之间的数字，再按井号键。")


def test_a_number_question_with_a_unit_is_answered_as_said() -> None:
    assert Keypad().press("2", {**PORTIONS, "unit": "份"}) == Send("2份")


def test_codes_take_every_digit_including_zero() -> None:
    keypad = Keypad()
    assert press(keypad, "10203", CODE) == [Pending()] * 5
    assert keypad.press("0", CODE) == Send("102030")
    assert press(keypad, "12*", CODE) == [Pending(), Pending(), Pending()]  # * starts again
    assert keypad.press("*", CODE) == Repeat()
    assert press(keypad, "12#", CODE)[-1] == NoMatch("请输入6位数字。")


def test_a_new_question_drops_a_half_typed_entry() -> None:
    keypad = Keypad()
    assert keypad.press("1", PORTIONS) == Pending()
    other = dict(PORTIONS)  # a new question, even if it looks the same
    assert keypad.press("#", other) == NoMatch("请输入1到10之间的数字，再按井号键。")


def test_without_a_question_the_main_menu_applies() -> None:
    assert Keypad().press("2", None) == Send("/book_meal")
    assert Keypad().press("1", None) == Send("/report_repair")
    assert isinstance(Keypad().press("9", None), NoMatch)
    assert isinstance(Keypad().press("3", {"type": "free_text"}), NoMatch)


def test_hints_name_the_keys_unless_the_question_does() -> None:
    assert keypad_hint(YES_NO) == "请说“是”或按1，“不是”按2。"
    assert keypad_hint(DAYS) == "今天按1，明天按2，后天按3。"
    assert with_hint("要送到家里吗？", YES_NO) == "要送到家里吗？请说“是”或按1，“不是”按2。"
    assert with_hint("是请按1，不是请按2。", YES_NO) == "是请按1，不是请按2。"
    assert with_hint("请说一下忌口。", {"type": "free_text"}) == "请说一下忌口。"


def test_the_greeting_gets_the_key_menu_and_questions_their_hints() -> None:
    greeting = phone_replies([BotReply(text="您好。")], greeting=True)
    assert greeting[0].text == "您好。" + MENU_HINT
    keypad_only = phone_replies([BotReply(text="您好。")], greeting=True, keypad_only=True)
    assert keypad_only[0].text.startswith("您好。现在听不清语音，请用按键。")
    turn = phone_replies([BotReply(text="明天午饭…"), BotReply(text="要几份？", expect=PORTIONS)])
    assert [r.text for r in turn] == ["明天午饭…", "要几份？也可以按数字键，按完再按井号键。"]


def test_handoff_and_goodbye_are_recognised() -> None:
    assert is_handoff(BotReply(text="社区工作人员会在30分钟内给您回电话。"))
    assert is_handoff(BotReply(text="好的。", metadata={"handoff": {"id": 3}}))
    assert not is_handoff(BotReply(text="要不要请工作人员给您回电话？", expect=YES_NO))
    assert is_goodbye(BotReply(text="好的，再见！有事随时找我。"))
    assert not is_goodbye(BotReply(text="再见前，要几份？", expect=PORTIONS))


@pytest.mark.parametrize(
    ("user", "number"),
    [
        ("13800001001", "+8613800001001"),
        ("+8613800001001", "+8613800001001"),
        ("008613800001001", "+8613800001001"),
        ("02088886666", "+862088886666"),
        ("caller", None),
        ("anonymous", None),
        ("123", None),
    ],
)
def test_caller_ids_become_e164(user: str, number: str | None) -> None:
    assert to_e164(user) == number


def test_the_asserted_identity_wins_over_from() -> None:
    invite = (
        "INVITE sip:assistant@10.0.0.1 SIP/2.0\r\n"
        "From: <sip:gateway@10.0.0.9>;tag=1\r\n"
        "P-Asserted-Identity: <sip:+8613800001002@trunk.example;user=phone>\r\n\r\n"
    )
    assert caller_number("<sip:gateway@10.0.0.9>", invite) == "+8613800001002"
    assert caller_number("<tel:138-0000-1003>") == "+8613800001003"


def test_log_tags_hide_the_number_but_match_each_other() -> None:
    hasher = CallerHasher("key")
    tag = hasher.tag("+8613800001001")
    assert tag == hasher.tag("+8613800001001") != hasher.tag("+8613800001002")
    assert tag.isalpha()  # no digit runs for log redaction to trip over
    assert CallerHasher("other").tag("+8613800001001") != tag
    assert hasher.tag(None) == "anonymous"
