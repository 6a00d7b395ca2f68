"""Buttons in notifications: one tap sends a command the dialogue understands without asking.

A notification payload may carry `buttons`: [{"title": "接单", "payload": "/task_accept{...}"}].
Channel workers render them as inline keyboards (Telegram) or numbered replies, and a tap sends
the payload to Rasa as the user's message; Rasa reads `/intent{"entity": value}` directly, so
the answer reaches the right task or request without a question.
"""

import json

# Intents and entities the payloads use (bot/domain/people.yml).
TASK_ACCEPT = "task_accept"
TASK_DECLINE = "task_decline"
TASK_DONE = "task_done"
TASK_CONFIRM = "task_confirm"
LEADER_ACK = "leader_ack"
LEADER_ESCALATE = "leader_escalate"


def command(intent: str, **entities: str | int) -> str:
    """A Rasa message payload: `/task_accept{"task_id": 12}`."""
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}"


def button(title: str, intent: str, **entities: str | int) -> dict[str, str]:
    """One button."""
    return {"title": title, "payload": command(intent, **entities)}


def offer_buttons(task_id: int) -> list[dict[str, str]]:
    """接单 / 不接 under a task offer."""
    return [
        button("接单", TASK_ACCEPT, task_id=task_id),
        button("不接", TASK_DECLINE, task_id=task_id),
    ]


def done_buttons(task_id: int) -> list[dict[str, str]]:
    """做完了 under a reminder to the assignee."""
    return [button("做完了", TASK_DONE, task_id=task_id)]


def confirm_buttons(task_id: int) -> list[dict[str, str]]:
    """确认完成 under "the volunteer has finished" to the resident."""
    return [button("确认完成", TASK_CONFIRM, task_id=task_id)]


def request_ref(kind: str, request_id: int) -> str:
    """How a resident's request is named in payloads: "repair:12", "alert:3"."""
    return f"{kind}:{request_id}"


def leader_buttons(ref: str) -> list[dict[str, str]]:
    """收到 / 上报 under a request a unit leader (or grid worker) is told of."""
    return [
        button("收到", LEADER_ACK, request=ref),
        button("上报", LEADER_ESCALATE, request=ref),
    ]
