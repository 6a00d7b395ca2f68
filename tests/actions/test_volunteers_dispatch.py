"""One tap answers: notification buttons name the task or request; residents confirm; unit
leaders answer 收到 / 上报."""

from typing import Any

from actions.common import BACKEND_DOWN
from actions.leaders import NOTHING_WAITING, ActionLeaderAnswer
from actions.volunteers import (
    CONFIRM_PATH,
    ActionTaskConfirm,
    ActionVolunteerTaskSubmit,
    ValidateVolunteerTaskForm,
    as_task_id,
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

TASKS = "volunteer_task_form"
LEADERS = "/api/v1/leaders/requests"


def tapped(intent: str, verb: str, task_id: int = 12, **slots: Any):
    """The tracker after a tap on a button: `/task_accept{"task_id": 12}`."""
    return make_tracker(
        text=f'/{intent}{{"task_id": {task_id}}}',
        intent=intent,
        entities=[{"entity": "task_id", "value": task_id}],
        slots={"volunteer_task_verb": verb, "volunteer_task_id": task_id, **slots},
        active_loop=TASKS,
    )


def test_a_tap_names_the_task_without_asking_the_backend() -> None:
    backend = FakeRecords({})
    tracker = tapped("task_accept", "accept", people_listed_tasks=[3, 4])
    events, messages = run_action(ValidateVolunteerTaskForm(), tracker, backend)
    assert slot_events(events) == {"volunteer_task_id": 12}
    assert backend.calls == []
    assert messages == []


def test_a_tap_answers_the_question_which_task() -> None:
    tracker = make_tracker(
        text='/task_done{"task_id": 7}',
        intent="task_done",
        entities=[{"entity": "task_id", "value": 7}],
        slots={"volunteer_task_verb": "done", "people_listed_tasks": [9, 6]},
        active_loop=TASKS,
        requested_slot="volunteer_task_id",
        answer=("volunteer_task_id", '/task_done{"task_id": 7}'),
    )
    events, _ = run_action(ValidateVolunteerTaskForm(), tracker)
    assert slot_events(events) == {"volunteer_task_id": 7}


def test_task_ids_from_entities_and_slots() -> None:
    assert [as_task_id(v) for v in (12, 12.0, "12", " 7 ", 0, -3, "x", True, None, 1.5)] == [
        12,
        12,
        12,
        7,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


def test_done_carries_the_volunteers_words_and_the_photo() -> None:
    path = "/api/v1/volunteers/tasks/12/done"
    backend = FakeRecords({path: (200, {"task": {}, "message": "辛苦了！"})})
    tracker = make_tracker(
        text="饭送到了 老人挺好",
        intent="task_done",
        slots={"volunteer_task_verb": "done", "volunteer_task_id": 12},
    )
    tracker.latest_message["metadata"] = {"photo": "AgACAgUAAxkBAAIB"}
    run_action(ActionVolunteerTaskSubmit(), tracker, backend)
    assert backend.calls[0].body == {
        "identity": SENDER,
        "note": "饭送到了 老人挺好",
        "photo": "AgACAgUAAxkBAAIB",
    }

    # A button's command, or "第一个", is no note.
    for text in ('/task_done{"task_id": 12}', "第一个做完了"):
        backend = FakeRecords({path: (200, {"task": {}, "message": "辛苦了！"})})
        tracker = make_tracker(
            text=text,
            intent="task_done",
            slots={"volunteer_task_verb": "done", "volunteer_task_id": 12},
        )
        run_action(ActionVolunteerTaskSubmit(), tracker, backend)
        assert backend.calls[0].body == {"identity": SENDER}


def test_accepting_relays_the_address_the_backend_gives_the_winner() -> None:
    message = "谢谢您！“给王秀英送11月24日午饭”这个任务交给您了。地址：1号楼1单元101。"
    backend = FakeRecords({"/api/v1/volunteers/tasks/12/accept": (200, {"message": message})})
    tracker = make_tracker(slots={"volunteer_task_verb": "accept", "volunteer_task_id": 12})
    _, messages = run_action(ActionVolunteerTaskSubmit(), tracker, backend)
    assert texts(messages) == [message]


# --- the resident confirms ----------------------------------------------------------------


def test_confirm_button_names_the_task() -> None:
    backend = FakeRecords(
        {CONFIRM_PATH: (200, {"message": "谢谢您的确认！已经给志愿者记上积分了。"})}
    )
    tracker = make_tracker(
        text='/task_confirm{"task_id": 12}',
        intent="task_confirm",
        entities=[{"entity": "task_id", "value": 12}],
    )
    _, messages = run_action(ActionTaskConfirm(), tracker, backend)
    assert backend.calls[0].body == {"identity": SENDER, "task_id": 12}
    assert texts(messages) == ["谢谢您的确认！已经给志愿者记上积分了。"]


def test_confirm_in_words_confirms_the_latest_and_refusals_are_relayed() -> None:
    detail = "现在没有需要您确认的志愿服务。"
    backend = FakeRecords({CONFIRM_PATH: problem(404, "no-done-task", detail)})
    _, messages = run_action(
        ActionTaskConfirm(), make_tracker(text="饭收到了", intent="task_confirm"), backend
    )
    assert backend.calls[0].body == {"identity": SENDER}
    assert texts(messages) == [detail]
    down = FakeRecords({CONFIRM_PATH: (503, {})})
    _, messages = run_action(ActionTaskConfirm(), make_tracker(intent="task_confirm"), down)
    assert texts(messages) == [BACKEND_DOWN]


# --- unit leaders ---------------------------------------------------------------------------


def leader(text: str, intent: str, request: str | None = None, **slots: Any):
    entities = [{"entity": "request", "value": request}] if request else []
    return make_tracker(text=text, intent=intent, entities=entities, slots=slots)


def answered(message: str, ref: str = "repair:12") -> tuple[int, dict[str, Any]]:
    return 200, {"request": ref, "changed": True, "message": message}


def test_leader_tap_acknowledges_the_named_request() -> None:
    message = "好的，报修单12号记为您已收到，也告诉报修的居民了。"
    backend = FakeRecords({f"{LEADERS}/acknowledge": answered(message)})
    events, messages = run_action(
        ActionLeaderAnswer(),
        leader('/leader_ack{"request": "repair:12"}', "leader_ack", "repair:12"),
        backend,
    )
    assert backend.paths() == [f"{LEADERS}/acknowledge"]
    assert backend.calls[0].body == {"identity": SENDER, "request": "repair:12"}
    assert texts(messages) == [message]
    assert slot_events(events) == {"leader_listed_requests": None}


def test_leader_says_escalate_and_the_only_waiting_request_goes_up() -> None:
    waiting = [
        {
            "request": "alert:3",
            "kind": "alert",
            "summary": "王秀英的紧急求助（摔倒）",
            "status": "open",
        }
    ]
    backend = FakeRecords(
        {
            f"{LEADERS}/open": (200, waiting),
            f"{LEADERS}/escalate": answered("好的，求助单3号已经上报给网格员。", "alert:3"),
        }
    )
    _, messages = run_action(ActionLeaderAnswer(), leader("上报网格员", "leader_escalate"), backend)
    assert backend.paths() == [f"{LEADERS}/open", f"{LEADERS}/escalate"]
    assert backend.calls[1].body == {"identity": SENDER, "request": "alert:3"}
    assert texts(messages) == ["好的，求助单3号已经上报给网格员。"]


def test_several_waiting_requests_are_listed_with_buttons_then_chosen_by_position() -> None:
    waiting = [
        {
            "request": "alert:3",
            "kind": "alert",
            "summary": "王秀英的紧急求助（摔倒）",
            "status": "open",
        },
        {
            "request": "repair:12",
            "kind": "repair",
            "summary": "报修单12号，1号楼1单元，水管",
            "status": "submitted",
        },
    ]
    backend = FakeRecords({f"{LEADERS}/open": (200, waiting)})
    events, messages = run_action(ActionLeaderAnswer(), leader("收到", "leader_ack"), backend)
    assert messages[0]["text"] == (
        "您收到的是哪一件？第1件，王秀英的紧急求助（摔倒）；第2件，报修单12号，1号楼1单元，水管。"
        "请说第几件，或者点下面的按钮。"
    )
    assert expect_of(messages[0])["options"][1]["payload"] == '/leader_ack{"request": "repair:12"}'
    assert slot_events(events) == {"leader_listed_requests": ["alert:3", "repair:12"]}

    backend = FakeRecords({f"{LEADERS}/acknowledge": answered("好的。")})
    tracker = make_tracker(
        text="第二件收到",
        intent="leader_ack",
        entities=[{"entity": "choice", "value": "2"}],
        slots={"leader_listed_requests": ["alert:3", "repair:12"]},
    )
    run_action(ActionLeaderAnswer(), tracker, backend)
    assert backend.calls[0].body == {"identity": SENDER, "request": "repair:12"}


def test_nothing_waiting_and_refusals() -> None:
    backend = FakeRecords({f"{LEADERS}/open": (200, [])})
    _, messages = run_action(ActionLeaderAnswer(), leader("收到", "leader_ack"), backend)
    assert texts(messages) == [NOTHING_WAITING]

    detail = "这件事不是您负责的住户报的，请转给相应的联户长。"
    backend = FakeRecords({f"{LEADERS}/acknowledge": problem(403, "not-your-household", detail)})
    _, messages = run_action(
        ActionLeaderAnswer(), leader("/leader_ack", "leader_ack", "repair:12"), backend
    )
    assert texts(messages) == [detail]

    # A garbled reference is not sent as such: the waiting list is asked for instead.
    backend = FakeRecords({f"{LEADERS}/open": (200, [])})
    run_action(ActionLeaderAnswer(), leader("/leader_ack", "leader_ack", "repair:x; drop"), backend)
    assert backend.paths() == [f"{LEADERS}/open"]
