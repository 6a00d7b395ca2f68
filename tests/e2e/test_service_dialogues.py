"""Chinese conversations through the REST channel, checked against the records they create."""

import uuid

from tests.e2e.conversation import said, talk
from tests.e2e.stack import Stack

ELDER_PHONE = "phone:+8613800001001"  # a demo resident's registered phone


def web() -> str:
    """A fresh, unknown web sender."""
    return f"web:e2e-{uuid.uuid4().hex[:8]}"


def test_unknown_person_reports_a_repair(stack: Stack) -> None:
    who = web()
    transcript = talk(
        stack,
        who,
        "我要报修",
        [
            ("对吗", "对"),  # the read-back first: it repeats words the other questions use
            ("哪", "3号楼2单元501"),
            ("什么问题", "厨房水管一直漏水"),
            ("说说", "厨房水管一直漏水"),
            ("什么", "水管漏水"),
            ("急", "不急"),
            ("对吗", "对"),
            ("对不对", "对"),
        ],
        done=lambda reply: "编号" in reply or "系统恢复" in reply,
    )
    with stack.records() as records:
        mine = records.post("/api/v1/repairs/mine", json={"identity": who, "limit": 5}).json()
    assert len(mine) == 1, transcript
    assert mine[0]["category"] == "water"


def test_registered_caller_books_tomorrows_lunch(stack: Stack) -> None:
    transcript = talk(
        stack,
        ELDER_PHONE,
        "我想订明天的午饭",
        [
            ("对吗", "对"),  # the read-back first: it repeats words the other questions use
            ("几份", "一份"),
            ("送", "不用送"),
            ("忌口", "没有"),
            ("对吗", "对"),
            ("对不对", "对"),
            ("确认", "对"),
        ],
        done=lambda reply: "订好" in reply or "预订成功" in reply or "已经帮您订" in reply,
    )
    with stack.records() as records:
        booked = records.post(
            "/api/v1/canteen/bookings/mine", json={"identity": ELDER_PHONE}
        ).json()
    items = booked["items"] if isinstance(booked, dict) else booked
    assert any(b["quantity"] == 1 and b["slot"] == "lunch" for b in items), transcript


def test_verified_resident_casts_one_ballot(stack: Stack) -> None:
    who = web()
    with stack.records() as records:
        resident = records.post("/api/v1/identities/resolve", json={"identity": ELDER_PHONE})
        resident_id = resident.json()["resident"]["id"]
        code = records.post(f"/api/v1/residents/{resident_id}/verification-codes").json()["code"]
        vote = records.get("/api/v1/votes", params={"state": "open"}).json()["items"][0]
    verified = said(stack.chat(who, f"验证身份，验证码是{code}"))
    if "验证码" in verified and "成功" not in verified:
        verified = said(stack.chat(who, code))
    assert "成功" in verified
    transcript = talk(
        stack,
        who,
        "我要投票",
        [("确定", "确定"), ("哪", "第一个"), ("同意", "同意")],
        done=lambda reply: "投票已经记下" in reply,
    )
    with stack.records() as records:
        voted = records.post(f"/api/v1/votes/{vote['id']}/has-voted", json={"identity": who}).json()
    assert voted["voted"] is True, transcript
    again = said(stack.chat(who, "我要投票"))
    assert "投过" in again or "没有" in again or "已经" in again


def test_emergency_in_the_middle_of_a_form_stops_it_and_alerts(stack: Stack) -> None:
    who = web()
    stack.chat(who, "我要报修")
    reply = stack.chat(who, "救命 我家有很大的煤气味")
    assert "通知" in said(reply)
    with stack.records() as records:
        alerts = records.get("/api/v1/alerts", params={"limit": 100}).json()["items"]
    assert any(a["kind"] == "gas" for a in alerts)
    after = said(stack.chat(who, "不用了"))
    assert "报修" not in after or "哪" not in after


def test_questions_carry_expected_answer_metadata(stack: Stack) -> None:
    reply = stack.chat(ELDER_PHONE, "我要订后天的晚饭")
    expects = [m.get("metadata", {}).get("expect") for m in reply]
    assert any(e and e["type"] in ("number", "yes_no", "choice") for e in expects), reply
