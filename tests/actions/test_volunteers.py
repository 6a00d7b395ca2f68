"""Volunteers: sign-up form, task list with points, and answering tasks."""

from datetime import UTC, datetime
from typing import Any

import pytest

from actions import normalize
from actions.common import BACKEND_DOWN
from actions.identity import HOW_TO_VERIFY
from actions.records_client import form_idempotency_key
from actions.volunteers import (
    ALREADY_VOLUNTEER,
    ASK_SKILLS,
    ME_PATH,
    MINE_PATH,
    NEED_VERIFY,
    NO_TASK,
    NOT_SUBMITTED,
    NOT_VOLUNTEER,
    SAY_POSITION,
    SAY_YES_OR_NO,
    SKILLS,
    SKILLS_NOT_UNDERSTOOD,
    STOPPED,
    VOLUNTEERS_PATH,
    ActionAskVolunteerConfirm,
    ActionAskVolunteerSkills,
    ActionAskVolunteerTaskId,
    ActionVolunteerSubmit,
    ActionVolunteerTaskList,
    ActionVolunteerTaskSubmit,
    ValidateVolunteerForm,
    ValidateVolunteerTaskForm,
    parse_skills,
    position,
    skills_from_answer,
    when_words,
)
from tests.actions.people_support import (
    SENDER,
    FakeRecords,
    expect_of,
    make_tracker,
    problem,
    run_action,
    slot_events,
    texts,
)

SIGNUP = "volunteer_form"
TASKS = "volunteer_task_form"
NOT_A_VOLUNTEER = problem(
    403, "not-a-volunteer", "您还不是志愿者。想报名的话，请联系社区工作人员。"
)


def volunteer_out(**overrides: object) -> dict[str, Any]:
    """records.schemas.volunteers.VolunteerOut."""
    return {
        "id": 5,
        "resident_id": 3,
        "name": "王秀英",
        "skills": ["meal_delivery", "visit"],
        "home_building_id": 3,
        "availability": {"weekdays": [], "slots": []},
        "active": True,
        "created_at": "2026-11-23T02:00:00Z",
        **overrides,
    }


def me_out(points: int = 12, *, is_volunteer: bool = True, active: bool = True) -> dict[str, Any]:
    """records.schemas.volunteers.VolunteerMe."""
    if not is_volunteer:
        return {
            "is_volunteer": False,
            "volunteer": None,
            "points": 0,
            "message": "您还不是志愿者。想报名的话，请联系社区工作人员。",
        }
    return {
        "is_volunteer": True,
        "volunteer": volunteer_out(active=active),
        "points": points,
        "message": f"您是志愿者，现在一共有{points}积分。",
    }


def task_out(
    task_id: int, title: str, status: str = "offered", **overrides: object
) -> dict[str, Any]:
    """records.schemas.volunteers.TaskOut."""
    return {
        "id": task_id,
        "kind": "meal_delivery",
        "status": status,
        "title": title,
        "details": None,
        "resident_id": 7,
        "building_id": 3,
        "booking_id": None,
        "repair_id": None,
        "alert_id": None,
        "volunteer_id": 5 if status != "offered" else None,
        "points": 2,
        "due_at": None,
        "expires_at": None,
        "accepted_at": None,
        "done_at": None,
        "done_note": None,
        "confirmed_at": None,
        "created_at": "2026-11-23T01:00:00Z",
        **overrides,
    }


def answer_out(task: dict[str, Any], message: str) -> dict[str, Any]:
    """records.schemas.volunteers.TaskAnswer."""
    return {"task": task, "message": message}


# --- understanding skills and positions -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "skills"),
    [
        ("送饭和陪老人聊天", ["meal_delivery", "visit"]),
        ("我能帮着送餐", ["meal_delivery"]),
        ("陪老人看病", ["escort"]),
        ("陪老人", ["visit"]),
        ("我会修水管，也能开车", ["repair", "driving"]),
        ("我学过急救", ["first_aid"]),
        ("我不会开车，能送饭", ["meal_delivery"]),
        ("都可以", list(SKILLS)),
        ("我什么都不太会", []),
        ("我想当志愿者", []),
    ],
)
def test_parse_skills_maps_words_to_the_backend_vocabulary(text: str, skills: list[str]) -> None:
    assert parse_skills(text) == skills


def test_skills_by_option_number_or_choice_entity() -> None:
    plain = make_tracker()
    assert skills_from_answer(plain, "1和3") == ["meal_delivery", "repair"]
    assert skills_from_answer(plain, "第二个") == ["visit"]
    assert skills_from_answer(plain, "9") == []
    said = make_tracker(entities=[{"entity": "choice", "value": "6"}])
    assert skills_from_answer(said, "第六个") == ["driving"]


def test_position_from_entity_ordinal_or_bare_number() -> None:
    assert position(make_tracker(entities=[{"entity": "choice", "value": "2"}]), "x") == 2
    assert position(make_tracker(), "第一单我接") == 1
    assert position(make_tracker(), "3") == 3
    assert position(make_tracker(), "我接3号楼那个单") is None
    assert position(make_tracker(), "我接") is None


def test_when_words_in_shanghai_time() -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert when_words("2026-11-23T03:30:00Z", now) == "今天11:30"
    assert when_words("2026-11-24T01:00:00Z", now) == "明天9:00"
    assert when_words("2026-11-28T06:00:00Z", now) == "11月28日14:00"
    assert when_words(None, now) == ""


# --- sign-up form ---------------------------------------------------------------------------


def test_ask_skills_offers_the_six_skills() -> None:
    _, messages = run_action(ActionAskVolunteerSkills(), make_tracker())
    assert messages[0]["text"] == ASK_SKILLS
    expect = expect_of(messages[0])
    assert expect["type"] == "choice"
    assert [o["label"] for o in expect["options"]] == list(SKILLS.values())
    assert expect["options"][0] == {"key": "1", "label": "送餐", "payload": "送餐"}


def test_signup_needs_a_verified_resident() -> None:
    backend = FakeRecords({})
    events, messages = run_action(
        ValidateVolunteerForm(),
        make_tracker(text="我想当志愿者", intent="volunteer_signup"),
        backend,
    )
    assert texts(messages) == [NEED_VERIFY]
    assert "验证身份" in NEED_VERIFY
    assert slot_events(events) == {"requested_slot": None}
    assert backend.calls == []


def test_signup_of_an_active_volunteer_stops_with_their_points() -> None:
    backend = FakeRecords({ME_PATH: (200, me_out(12))})
    tracker = make_tracker(text="我想当志愿者", intent="volunteer_signup", slots={"verified": True})
    events, messages = run_action(ValidateVolunteerForm(), tracker, backend)
    assert backend.calls[0].body == {"identity": SENDER}
    assert texts(messages) == [f"{ALREADY_VOLUNTEER}您现在有12个积分。"]
    assert slot_events(events) == {"requested_slot": None}


def test_signup_takes_skills_from_the_first_message() -> None:
    backend = FakeRecords({ME_PATH: (200, me_out(is_volunteer=False))})
    tracker = make_tracker(
        text="我能帮着送餐 报个名", intent="volunteer_signup", slots={"verified": True}
    )
    events, messages = run_action(ValidateVolunteerForm(), tracker, backend)
    assert slot_events(events) == {"volunteer_skills": ["meal_delivery"]}
    assert messages == []


def test_paused_volunteer_may_sign_up_again() -> None:
    backend = FakeRecords({ME_PATH: (200, me_out(3, active=False))})
    tracker = make_tracker(text="报名志愿者", intent="volunteer_signup", slots={"verified": True})
    events, messages = run_action(ValidateVolunteerForm(), tracker, backend)
    assert events == []
    assert messages == []


def skills_answer(text: str, intent: str = "volunteer_signup"):
    return make_tracker(
        text=text,
        intent=intent,
        slots={"verified": True},
        active_loop=SIGNUP,
        requested_slot="volunteer_skills",
        answer=("volunteer_skills", text),
    )


def test_skills_answer_is_normalised() -> None:
    events, messages = run_action(ValidateVolunteerForm(), skills_answer("送饭和陪老人聊天"))
    assert slot_events(events) == {"volunteer_skills": ["meal_delivery", "visit"]}
    assert messages == []


def test_keypad_choice_of_a_skill() -> None:
    events, _ = run_action(ValidateVolunteerForm(), skills_answer("急救", intent="nlu_fallback"))
    assert slot_events(events) == {"volunteer_skills": ["first_aid"]}


def test_skills_answer_without_a_skill_is_asked_again() -> None:
    events, messages = run_action(ValidateVolunteerForm(), skills_answer("我想当志愿者"))
    assert texts(messages) == [SKILLS_NOT_UNDERSTOOD]
    assert slot_events(events) == {"volunteer_skills": None}


def test_never_mind_at_the_skills_question_stops() -> None:
    events, messages = run_action(ValidateVolunteerForm(), skills_answer("算了", intent="deny"))
    assert texts(messages) == ["好的，这次先不报名了。"]
    assert slot_events(events)["requested_slot"] is None


def test_read_back_is_a_yes_no_question() -> None:
    tracker = make_tracker(slots={"volunteer_skills": ["meal_delivery", "visit"]})
    _, messages = run_action(ActionAskVolunteerConfirm(), tracker)
    assert messages[0]["text"] == "我帮您记下了：报名当志愿者，做送餐、探访。对吗？"
    assert expect_of(messages[0])["type"] == "yes_no"


def confirm_answer(text: str, intent: str):
    return make_tracker(
        text=text,
        intent=intent,
        slots={"verified": True, "volunteer_skills": ["meal_delivery", "visit"]},
        active_loop=SIGNUP,
        requested_slot="volunteer_confirm",
        answer=("volunteer_confirm", text),
    )


@pytest.mark.parametrize(
    ("text", "intent", "value"),
    [("对", "affirm", True), ("好的没问题", "nlu_fallback", True), ("不对", "deny", False)],
)
def test_read_back_answer(text: str, intent: str, value: bool) -> None:
    events, messages = run_action(ValidateVolunteerForm(), confirm_answer(text, intent))
    assert slot_events(events) == {"volunteer_confirm": value}
    assert messages == []


def test_correction_at_the_read_back_changes_the_skills_and_asks_again() -> None:
    events, _ = run_action(ValidateVolunteerForm(), confirm_answer("不对，我只送饭", "deny"))
    assert slot_events(events) == {"volunteer_skills": ["meal_delivery"], "volunteer_confirm": None}


def test_unclear_read_back_answer_is_asked_again() -> None:
    events, messages = run_action(ValidateVolunteerForm(), confirm_answer("不知道", "nlu_fallback"))
    assert slot_events(events) == {"volunteer_confirm": None}
    assert texts(messages) == [SAY_YES_OR_NO]


def confirmed(confirm: object = True):
    return make_tracker(
        slots={
            "verified": True,
            "volunteer_skills": ["meal_delivery", "visit"],
            "volunteer_confirm": confirm,
        }
    )


def test_submit_signs_up_once_with_a_form_key() -> None:
    backend = FakeRecords({VOLUNTEERS_PATH: (201, volunteer_out())})
    events, messages = run_action(ActionVolunteerSubmit(), confirmed(), backend)
    today = normalize.local_now(datetime.now(UTC)).date().isoformat()
    call = backend.calls[0]
    assert (call.method, call.path) == ("POST", VOLUNTEERS_PATH)
    assert call.body == {"identity": SENDER, "skills": ["meal_delivery", "visit"]}
    assert call.key == form_idempotency_key(
        SENDER, SIGNUP, {"skills": ["meal_delivery", "visit"]}, scope=today
    )
    assert texts(messages) == ["报名成功，谢谢您！有送餐、探访的任务时，我会告诉您。"]
    assert slot_events(events) == {"volunteer_skills": None, "volunteer_confirm": None}

    run_action(ActionVolunteerSubmit(), confirmed(), backend)
    assert backend.calls[1].key == call.key


def test_denied_read_back_submits_nothing() -> None:
    backend = FakeRecords({})
    events, messages = run_action(ActionVolunteerSubmit(), confirmed(False), backend)
    assert backend.calls == []
    assert texts(messages) == [NOT_SUBMITTED]
    assert slot_events(events) == {"volunteer_skills": None, "volunteer_confirm": None}


def test_submit_after_a_stopped_form_says_nothing() -> None:
    events, messages = run_action(ActionVolunteerSubmit(), confirmed(None))
    assert messages == []
    assert slot_events(events) == {"volunteer_skills": None, "volunteer_confirm": None}


def test_already_a_volunteer_is_said_plainly() -> None:
    backend = FakeRecords(
        {VOLUNTEERS_PATH: problem(409, "already-volunteer", "这位居民已经是志愿者了。")}
    )
    _, messages = run_action(ActionVolunteerSubmit(), confirmed(), backend)
    assert texts(messages) == [ALREADY_VOLUNTEER]


def test_not_verified_is_relayed_with_how_to_verify() -> None:
    detail = "需要先核实身份。请向社区工作人员要一个验证码，再告诉我。"
    backend = FakeRecords({VOLUNTEERS_PATH: problem(403, "not-verified", detail)})
    events, messages = run_action(ActionVolunteerSubmit(), confirmed(), backend)
    assert texts(messages) == [detail + HOW_TO_VERIFY]
    assert slot_events(events)["verified"] is False


def test_backend_down_is_not_a_sign_up() -> None:
    backend = FakeRecords({VOLUNTEERS_PATH: (503, {"detail": "down"})})
    _, messages = run_action(ActionVolunteerSubmit(), confirmed(), backend)
    assert texts(messages) == [BACKEND_DOWN]
    assert len(backend.calls) == 3  # retried with the same key
    assert len({c.key for c in backend.calls}) == 1


# --- task list and points -------------------------------------------------------------------


def test_task_list_reads_open_tasks_with_numbers_and_points() -> None:
    mine = [
        task_out(9, "给3号楼王奶奶送午饭", "offered", due_at="2026-11-24T03:30:00Z"),
        task_out(8, "陪李大爷去医院", "accepted"),
        task_out(4, "上周的送餐", "done"),
    ]
    backend = FakeRecords({MINE_PATH: (200, mine), ME_PATH: (200, me_out(12))})
    events, messages = run_action(
        ActionVolunteerTaskList(), make_tracker(text="我的任务", intent="task_list"), backend
    )
    assert [(c.path, c.body) for c in backend.calls] == [
        (MINE_PATH, {"identity": SENDER}),
        (ME_PATH, {"identity": SENDER}),
    ]
    text = messages[0]["text"]
    assert text.startswith("您有2个任务：\n1. 给3号楼王奶奶送午饭（")
    assert "等您回复" in text
    assert "2. 陪李大爷去医院（您已接下）" in text
    assert "上周的送餐" not in text
    assert "您现在有12个积分。" in text
    assert slot_events(events) == {"people_listed_tasks": [9, 8]}


def test_task_list_of_someone_who_is_not_a_volunteer() -> None:
    backend = FakeRecords({MINE_PATH: NOT_A_VOLUNTEER})
    events, messages = run_action(ActionVolunteerTaskList(), make_tracker(), backend)
    assert texts(messages) == [NOT_VOLUNTEER]
    assert events == []


def test_task_list_without_tasks_still_gives_the_points() -> None:
    backend = FakeRecords({MINE_PATH: (200, []), ME_PATH: (200, me_out(0))})
    events, messages = run_action(ActionVolunteerTaskList(), make_tracker(), backend)
    assert texts(messages) == ["您现在没有任务。您现在有0个积分。"]
    assert slot_events(events) == {"people_listed_tasks": []}


def test_task_list_when_the_backend_is_down() -> None:
    backend = FakeRecords({MINE_PATH: (503, {})})
    _, messages = run_action(ActionVolunteerTaskList(), make_tracker(), backend)
    assert texts(messages) == [BACKEND_DOWN]


# --- answering a task -----------------------------------------------------------------------


def starting(text: str, intent: str, *, listed: list[int] | None = None, choice: str | None = None):
    verb = {"task_accept": "accept", "task_decline": "decline", "task_done": "done"}[intent]
    entities = [{"entity": "choice", "value": choice}] if choice else []
    return make_tracker(
        text=text,
        intent=intent,
        entities=entities,
        slots={"volunteer_task_verb": verb, "people_listed_tasks": listed},
    )


def test_position_in_the_last_list_picks_the_task() -> None:
    backend = FakeRecords({})
    tracker = starting("第二个我接了", "task_accept", listed=[9, 8], choice="2")
    events, messages = run_action(ValidateVolunteerTaskForm(), tracker, backend)
    assert slot_events(events) == {"volunteer_task_id": 8}
    assert backend.calls == []
    assert messages == []


def test_the_only_fitting_task_is_taken() -> None:
    mine = [task_out(9, "给王奶奶送午饭", "offered"), task_out(8, "陪李大爷去医院", "accepted")]
    backend = FakeRecords({MINE_PATH: (200, mine)})
    events, _ = run_action(ValidateVolunteerTaskForm(), starting("做完了", "task_done"), backend)
    assert slot_events(events) == {"volunteer_task_id": 8}


def test_decline_falls_back_to_a_taken_task() -> None:
    backend = FakeRecords({MINE_PATH: (200, [task_out(8, "陪李大爷去医院", "accepted")])})
    events, _ = run_action(
        ValidateVolunteerTaskForm(), starting("这个我去不了", "task_decline"), backend
    )
    assert slot_events(events) == {"volunteer_task_id": 8}


def test_no_fitting_task_is_said_and_the_form_stops() -> None:
    backend = FakeRecords({MINE_PATH: (200, [task_out(8, "陪李大爷去医院", "accepted")])})
    events, messages = run_action(
        ValidateVolunteerTaskForm(), starting("我接", "task_accept"), backend
    )
    assert texts(messages) == [NO_TASK["accept"]]
    assert slot_events(events) == {"requested_slot": None}


def test_not_a_volunteer_answering_a_task() -> None:
    backend = FakeRecords({MINE_PATH: NOT_A_VOLUNTEER})
    events, messages = run_action(
        ValidateVolunteerTaskForm(), starting("我接", "task_accept"), backend
    )
    assert texts(messages) == [NOT_VOLUNTEER]
    assert slot_events(events) == {"requested_slot": None}


def test_several_fitting_tasks_are_kept_for_the_question() -> None:
    mine = [task_out(9, "给王奶奶送午饭"), task_out(6, "陪张阿姨买菜")]
    backend = FakeRecords({MINE_PATH: (200, mine)})
    events, messages = run_action(
        ValidateVolunteerTaskForm(), starting("我接", "task_accept"), backend
    )
    assert slot_events(events) == {
        "volunteer_task_options": {
            "verb": "accept",
            "tasks": [{"id": 9, "title": "给王奶奶送午饭"}, {"id": 6, "title": "陪张阿姨买菜"}],
        }
    }
    assert messages == []


def test_which_task_is_asked_with_numbered_options() -> None:
    tracker = make_tracker(
        slots={
            "volunteer_task_verb": "accept",
            "volunteer_task_options": {
                "verb": "accept",
                "tasks": [{"id": 9, "title": "给王奶奶送午饭"}, {"id": 6, "title": "陪张阿姨买菜"}],
            },
        }
    )
    events, messages = run_action(ActionAskVolunteerTaskId(), tracker)
    assert messages[0]["text"] == (
        "您要接哪个任务？第1个，给王奶奶送午饭；第2个，陪张阿姨买菜。请说第几个。"
    )
    options = expect_of(messages[0])["options"]
    assert options[1] == {
        "key": "2",
        "label": "陪张阿姨买菜",
        "payload": '/task_accept{"choice":"2"}',
    }
    assert slot_events(events) == {"people_listed_tasks": [9, 6]}


def task_answer(text: str, intent: str = "nlu_fallback", choice: str | None = None):
    return make_tracker(
        text=text,
        intent=intent,
        entities=[{"entity": "choice", "value": choice}] if choice else [],
        slots={"volunteer_task_verb": "accept", "people_listed_tasks": [9, 6]},
        active_loop=TASKS,
        requested_slot="volunteer_task_id",
        answer=("volunteer_task_id", text),
    )


def test_answer_by_position() -> None:
    events, _ = run_action(ValidateVolunteerTaskForm(), task_answer("第二个"))
    assert slot_events(events) == {"volunteer_task_id": 6}
    events, _ = run_action(
        ValidateVolunteerTaskForm(), task_answer('/task_accept{"choice":"1"}', "task_accept", "1")
    )
    assert slot_events(events) == {"volunteer_task_id": 9}


def test_answer_out_of_range_or_unclear_is_asked_again() -> None:
    events, messages = run_action(ValidateVolunteerTaskForm(), task_answer("第五个"))
    assert slot_events(events) == {"volunteer_task_id": None}
    assert texts(messages) == ["没有第5个，一共2个。"]
    events, messages = run_action(ValidateVolunteerTaskForm(), task_answer("送饭那个"))
    assert slot_events(events) == {"volunteer_task_id": None}
    assert texts(messages) == [SAY_POSITION]


def test_none_of_them_stops() -> None:
    events, messages = run_action(ValidateVolunteerTaskForm(), task_answer("算了", "deny"))
    assert texts(messages) == [STOPPED]
    assert slot_events(events) == {"volunteer_task_id": None, "requested_slot": None}


def chosen(verb: str, task_id: int = 9):
    return make_tracker(slots={"volunteer_task_verb": verb, "volunteer_task_id": task_id})


RESET = {"volunteer_task_id": None, "volunteer_task_verb": None, "volunteer_task_options": None}


@pytest.mark.parametrize(
    ("verb", "message"),
    [
        ("accept", "谢谢您！“给王奶奶送午饭”这个任务交给您了。"),
        ("decline", "好的，已经记下了，谢谢您！"),
        ("done", "辛苦了！已经记下任务完成，确认以后会给您记积分。"),
    ],
)
def test_task_answer_is_sent_and_the_backend_message_relayed(verb: str, message: str) -> None:
    path = f"/api/v1/volunteers/tasks/9/{verb}"
    status = {"accept": "accepted", "decline": "offered", "done": "done"}[verb]
    backend = FakeRecords({path: (200, answer_out(task_out(9, "给王奶奶送午饭", status), message))})
    events, messages = run_action(ActionVolunteerTaskSubmit(), chosen(verb), backend)
    call = backend.calls[0]
    assert (call.method, call.path, call.body) == ("POST", path, {"identity": SENDER})
    assert call.key == form_idempotency_key(SENDER, TASKS, {"task": 9, "verb": verb})
    assert texts(messages) == [message]
    assert slot_events(events) == RESET


def test_task_taken_by_someone_else_is_relayed() -> None:
    detail = "这个任务已经被别的志愿者接走了，谢谢您！"
    backend = FakeRecords({"/api/v1/volunteers/tasks/9/accept": problem(409, "task-taken", detail)})
    events, messages = run_action(ActionVolunteerTaskSubmit(), chosen("accept"), backend)
    assert texts(messages) == [detail]
    assert slot_events(events) == RESET


def test_task_answer_when_the_backend_is_down() -> None:
    backend = FakeRecords({"/api/v1/volunteers/tasks/9/done": (502, {})})
    _, messages = run_action(ActionVolunteerTaskSubmit(), chosen("done"), backend)
    assert texts(messages) == [BACKEND_DOWN]


def test_task_submit_after_a_stopped_form_says_nothing() -> None:
    events, messages = run_action(
        ActionVolunteerTaskSubmit(), make_tracker(slots={"volunteer_task_verb": "accept"})
    )
    assert messages == []
    assert slot_events(events) == RESET


def test_changed_answer_asks_among_the_tasks_that_fit_it() -> None:
    # Asked which task to take, the volunteer said "做完了": ask about the taken ones.
    mine = [
        task_out(9, "给王奶奶送午饭"),
        task_out(8, "陪李大爷去医院", "accepted"),
        task_out(5, "帮刘奶奶换灯泡", "accepted"),
    ]
    backend = FakeRecords({MINE_PATH: (200, mine)})
    tracker = make_tracker(
        slots={
            "volunteer_task_verb": "done",
            "volunteer_task_options": {"verb": "accept", "tasks": [{"id": 9, "title": "x"}]},
        }
    )
    events, messages = run_action(ActionAskVolunteerTaskId(), tracker, backend)
    assert messages[0]["text"].startswith("您完成的是哪个任务？第1个，陪李大爷去医院；")
    assert slot_events(events) == {"people_listed_tasks": [8, 5]}


def test_nothing_left_to_ask_about_stops_the_form() -> None:
    backend = FakeRecords({MINE_PATH: (200, [])})
    tracker = make_tracker(slots={"volunteer_task_verb": "done"})
    events, messages = run_action(ActionAskVolunteerTaskId(), tracker, backend)
    assert texts(messages) == [NO_TASK["done"]]
    assert slot_events(events) == {"requested_slot": None}


def test_activation_is_recognised_with_the_form_already_marked_active() -> None:
    # Rasa validates at activation with the form already active and the requested slot
    # still that of an earlier form (or none).
    tracker = make_tracker(
        text="第二个我接了",
        intent="task_accept",
        entities=[{"entity": "choice", "value": "2"}],
        slots={"volunteer_task_verb": "accept", "people_listed_tasks": [9, 8]},
        active_loop=TASKS,
        requested_slot="volunteer_skills",
    )
    events, _ = run_action(ValidateVolunteerTaskForm(), tracker)
    assert slot_events(events) == {"volunteer_task_id": 8}
