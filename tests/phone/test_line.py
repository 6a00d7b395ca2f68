"""The phone line end to end: baresip and SIPp call a real worker (python -m voice.phone) that
talks to the real stack (records, actions, Rasa) with real Vosk (Korean model) and real TTS.

Callers assert on what they heard (window by window against the line's synthesised speech),
on keys (RFC 4733 from baresip, SIP INFO from SIPp) and on the records the calls created.
The Mandarin dialogue is driven by the keypad; Korean speech only shows the audio path.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels.rasa_client import BotReply
from tests.e2e.stack import Stack
from tests.phone.conftest import Dialogue, Speech, phone_env
from tests.phone.harness import (
    RATE,
    Baresip,
    PhoneWorker,
    read_samples,
    run_sipp,
    silence,
    windowed_match,
)
from voice.audio import read_wav, resample
from voice.phone.dialogue import phone_replies
from voice.phone.line import RECORDING_NOTICE, TRANSFERRING

WAIT_S = 40.0  # guards against hanging, not timing assertions


def greeting_texts(dialogue: Dialogue) -> list[str]:
    """The greeting as the line speaks it (the key menu added)."""
    turn = dialogue.next_turn()
    replies = [BotReply(text=m["text"], expect=m["expect"]) for m in turn]
    return [r.text for r in phone_replies(replies, greeting=True)]


def key_for(message: dict[str, Any], label: str) -> str:
    """The key of the option with this label in a question."""
    options = (message["expect"] or {}).get("options") or []
    return next(str(o["key"]) for o in options if o["label"] == label)


def hear(caller: Baresip, expected: Any, *, start: int = 0, seconds: float = 5.0) -> float:
    """Wait until the first `seconds` of `expected` (all of it if shorter) have been heard,
    compare them window by window; the median correlation."""
    offset = caller.wait_heard(expected, start=start, timeout=WAIT_S)
    length = min(len(expected), int(seconds * RATE))
    deadline = time.monotonic() + WAIT_S
    while len(caller.heard()) < offset + length + RATE // 2:
        assert time.monotonic() < deadline, "the caller stopped hearing"
        time.sleep(0.2)
    match = windowed_match(caller.heard(), expected, offset=offset, length_s=length / RATE)
    assert match.sounds_like(), match.windows
    return match.median


def test_caller_hears_the_greeting_with_the_key_menu(
    stack: Stack, line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech
) -> None:
    caller = callers("13900000011")
    dialogue = Dialogue(stack, "phone:+8613900000011")
    caller.dial(line.uri)
    caller.wait_event("CALL_ESTABLISHED")
    texts = greeting_texts(dialogue)
    assert texts[-1].endswith("找人工按0。")
    hear(caller, speech.audio("".join(texts)))
    caller.hangup()
    line.wait_log(r"event=end caller=\w+ duration_s=[\d.]+ turns=1")
    # the call log knows the caller only by a keyed hash
    assert "13900000011" not in line.log()


@pytest.mark.slow
def test_keypad_only_call_books_tomorrows_lunch(
    stack: Stack, line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech
) -> None:
    # A registered resident of the demo community (records/demo.py numbers them from
    # FIRST_PHONE); not 13800001001, whom the dialogue tests book tomorrow's lunch for.
    number = "13800001007"
    sender = f"phone:+86{number}"
    # "明天" in the community's time zone (the bot's), not this machine's
    today = datetime.now(ZoneInfo(stack.env.get("TIMEZONE") or "Asia/Shanghai")).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    with stack.records() as records:  # a stack kept between runs may hold an earlier booking
        records.post("/api/v1/canteen/bookings/cancel",
                     json={"identity": sender, "day": tomorrow, "slot": "lunch"})
    dialogue = Dialogue(stack, sender)
    caller = callers(number)
    caller.dial(line.uri)
    caller.wait_event("CALL_ESTABLISHED")
    heard_at = caller.wait_heard(speech.audio("".join(greeting_texts(dialogue))))

    def answer(keys: str) -> list[dict[str, Any]]:
        """Press keys once the current question is being heard; the bot's next turn."""
        nonlocal heard_at
        caller.send_digits(keys)
        turn = dialogue.next_turn()
        heard_at = caller.wait_heard(
            speech.audio(Dialogue.spoken(turn[0])), start=heard_at + RATE // 2
        )
        return turn

    turn = answer("2")  # main menu: 订餐
    assert "哪天" in turn[-1]["text"]
    turn = answer(key_for(turn[-1], "明天"))
    assert "哪一顿" in turn[-1]["text"]
    turn = answer(key_for(turn[-1], "午饭"))
    assert turn[-1]["expect"]["type"] == "number"  # 要几份？ after tomorrow's lunch menu
    turn = answer("1#")
    if "送到家" in turn[-1]["text"]:  # only asked with a home address on record
        turn = answer(key_for(turn[-1], "不是"))
    assert "忌口" in turn[-1]["text"]
    turn = answer(key_for(turn[-1], "不是"))
    assert turn[-1]["text"].startswith("我帮您记下了：明天午饭，1份")
    turn = answer(key_for(turn[-1], "是"))
    # the booking confirmation, heard to its end
    hear(caller, speech.audio(turn[-1]["text"]), start=heard_at, seconds=60)
    caller.hangup()

    with stack.records() as records:
        bookings = records.post(
            "/api/v1/canteen/bookings/mine", json={"identity": sender, "from_day": tomorrow}
        ).json()
    assert [(b["day"], b["slot"], b["quantity"]) for b in bookings] == [(tomorrow, "lunch", 1)]
    assert {"digit", "enter"} <= {e["key"] for e in line.call_events("dtmf")}


def test_sip_info_zero_asks_for_a_person_and_the_callback_request_stands(
    stack: Stack, line: PhoneWorker, tmp_path: Path
) -> None:
    number = "13800001002"
    result = run_sipp(
        "uac_info_dtmf.xml",
        f"127.0.0.1:{line.port}",
        workdir=tmp_path,
        keys={"caller": number, "digit1": "*", "digit2": "0"},
        extra=["-s", "assistant", "-set", "wait_ms", "2000", "-set", "hold_ms", "3000"],
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    methods = [e.get("method") for e in line.call_events("dtmf")]
    assert methods.count("sip-info") >= 2
    with stack.records() as records:
        handoffs = records.get("/api/v1/handoffs", params={"limit": 100}).json()["items"]
    mine = [h for h in handoffs if h["callback_phone"] == f"+86{number}"]
    assert len(mine) == 1
    assert (mine[0]["channel"], mine[0]["status"]) == ("phone", "open")


@pytest.mark.slow
def test_zero_transfers_the_caller_to_the_operator(
    stack: Stack,
    callers: Callable[..., Baresip],
    speech: Speech,
    tmp_path: Path,
) -> None:
    operator = callers("operator", auto_answer=True)
    worker = PhoneWorker(
        tmp_path / "line",
        env=phone_env(stack, tmp_path, PHONE_OPERATOR_URI=operator.uri),
        name="transfer",
    ).start()
    try:
        caller = callers("13800001003")
        caller.dial(worker.uri)
        caller.wait_event("CALL_ESTABLISHED")
        caller.wait_heard(speech.audio("您好"), timeout=WAIT_S, check_s=0.4)
        caller.send_digits("0")
        caller.wait_heard(speech.audio(TRANSFERRING), timeout=WAIT_S)
        operator.wait_event("CALL_ESTABLISHED", timeout=WAIT_S)  # the caller reached a person
        worker.wait_log(r"event=transfer status=done")
        worker.wait_log(r"event=end .*transfer=done")
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()
    with stack.records() as records:
        handoffs = records.get("/api/v1/handoffs", params={"limit": 100}).json()["items"]
    assert [h["callback_phone"] for h in handoffs].count("+8613800001003") == 1


def test_star_repeats_the_last_message(
    stack: Stack, line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech
) -> None:
    caller = callers("13900000012")
    dialogue = Dialogue(stack, "phone:+8613900000012")
    caller.dial(line.uri)
    caller.wait_event("CALL_ESTABLISHED")
    greeting = speech.audio("".join(greeting_texts(dialogue)))
    first = caller.wait_heard(greeting)
    caller.send_digits("*")
    again = caller.wait_heard(greeting, start=first + RATE)
    assert again > first
    caller.hangup()


def test_caller_hanging_up_mid_sentence_ends_the_call_cleanly(
    line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech
) -> None:
    caller = callers("13900000013")
    caller.dial(line.uri)
    caller.wait_event("CALL_ESTABLISHED")
    caller.wait_heard(speech.audio("您好"), check_s=0.4)
    ended = len(line.call_events("end"))
    caller.hangup()  # the greeting is still playing
    line.wait_log(r"event=end ", count=ended + 1)
    assert line.alive()
    # the line goes on answering
    again = callers("13900000014")
    again.dial(line.uri)
    again.wait_event("CALL_ESTABLISHED")
    again.wait_heard(speech.audio("您好"), check_s=0.4)
    again.hangup()


def test_korean_speech_reaches_the_dialogue_and_the_answer_is_heard(
    stack: Stack, line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech
) -> None:
    # Korean (the only model here): the Mandarin dialogue does not understand it and says so.
    korean = subprocess.run(
        ["espeak-ng", "-v", "ko", "--stdout", "안녕하세요 수리를 신청하고 싶습니다"],
        capture_output=True,
        check=True,
    ).stdout
    pcm, rate = read_wav(korean)
    audio = silence(3.0) + resample(pcm, rate, RATE) + silence(2.0)
    caller = callers("13900000015", audio=audio)
    dialogue = Dialogue(stack, "phone:+8613900000015")
    caller.dial(line.uri)
    caller.wait_event("CALL_ESTABLISHED")
    dialogue.next_turn()  # the greeting
    turn = dialogue.next_turn(timeout=WAIT_S)  # the answer to what was said
    assert "没听明白" in turn[0]["text"]
    caller.wait_heard(speech.audio(Dialogue.spoken(turn[0])), timeout=WAIT_S)
    caller.hangup()
    sent = read_samples(caller.dump("enc") or Path("missing"))
    assert len(sent) > 0


@pytest.mark.slow
def test_recorded_calls_announce_the_recording_first(
    stack: Stack, callers: Callable[..., Baresip], speech: Speech, tmp_path: Path
) -> None:
    worker = PhoneWorker(
        tmp_path / "line", env=phone_env(stack, tmp_path, PHONE_RECORD_CALLS="true"), name="rec"
    ).start()
    try:
        caller = callers("13900000016")
        dialogue = Dialogue(stack, "phone:+8613900000016")
        caller.dial(worker.uri)
        caller.wait_event("CALL_ESTABLISHED")
        notice = caller.wait_heard(speech.audio(RECORDING_NOTICE), timeout=WAIT_S)
        greeting = speech.audio("".join(greeting_texts(dialogue)))
        assert caller.wait_heard(greeting, start=notice + RATE, check_s=2.0) > notice
        caller.hangup()
        worker.wait_log(r"event=recording status=stopped")
    finally:
        worker.stop()
    recordings = list((tmp_path / "recordings").rglob("*.wav"))
    assert len(recordings) == 1
    # what the line said after the notice is in the recording
    recorded = read_samples(recordings[0])
    assert windowed_match(recorded, greeting, length_s=1.5).sounds_like()


def test_windowed_comparison_tells_other_speech_apart(speech: Speech) -> None:
    # The checks above mean something: other words do not match, the same words do.
    heard = speech.audio("订哪一顿？早饭按1，午饭按2，晚饭按3。")
    assert not windowed_match(heard, speech.audio("有没有忌口，比如少盐、软一点？")).sounds_like()
    assert windowed_match(heard, speech.audio("订哪一顿？")).sounds_like()
