"""Unit leaders (联户长) answer their households' requests with one tap: 收到 or 上报.

A request is named "repair:12" or "alert:3" (records.repository.commands). Unit leaders may
answer requests from the households of the units they lead, grid workers those from the
buildings of their grid, admins any. 收到 (acknowledge) is the first response: a submitted
repair becomes acknowledged and its reporter is told; an open alert is acknowledged. 上报
(escalate) hands the request one tier up: a unit leader's goes to the grid worker, a grid
worker's to the council (the admins). Answering twice changes nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.problems import Problem
from records.models import (
    AlertStatus,
    EmergencyAlert,
    EscalationTier,
    Household,
    HouseholdUnit,
    Repair,
    RepairStatus,
    Resident,
    StaffRole,
    StaffUser,
)
from records.repository import alerts as alerts_repo
from records.repository import commands
from records.repository import identities as identities_repo
from records.repository import repairs as repairs_repo

KINDS = ("repair", "alert")
ROLE_WORDS = {
    StaffRole.unit_leader: "联户长",
    StaffRole.grid_worker: "网格员",
    StaffRole.admin: "社区工作人员",
    StaffRole.canteen: "食堂工作人员",
}
# Who a request goes to when this role escalates it.
NEXT_TIER = {
    StaffRole.unit_leader: EscalationTier.grid_worker,
    StaffRole.grid_worker: EscalationTier.council,
}
# How many open requests a leader's list looks through (newest first).
SCAN_LIMIT = 200

NOT_STAFF = Problem(
    403, "not-staff", "这个操作只有联户长和社区工作人员可以做。如果您是联户长，请先验证身份。"
)
NOT_YOURS = Problem(403, "not-your-household", "这件事不是您负责的住户报的，请转给相应的联户长。")


@dataclass(frozen=True)
class Answer:
    """What a leader's tap did: the request, whether anything changed, and what to tell them."""

    request: str
    changed: bool
    message: str


@dataclass(frozen=True)
class OpenRequest:
    """A request a leader can still act on, described without rooms or phone numbers."""

    request: str
    kind: str
    summary: str
    status: str


def staff_for_identity(session: Session, *, identity: str) -> StaffUser:
    """The active staff member behind a verified channel identity (via their resident).

    Caller ID can be forged, so acting as staff needs an identity verified with a code.
    """
    resident = identities_repo.verified_resident(session, identity=identity)
    staff = session.scalar(
        select(StaffUser).where(StaffUser.resident_id == resident.id, StaffUser.active.is_(True))
    )
    if staff is None:
        raise NOT_STAFF
    return staff


def parse_request(ref: str) -> tuple[str, int]:
    """("repair", 12) from "repair:12"; a 422 problem for anything else."""
    kind, _, number = ref.strip().partition(":")
    if kind not in KINDS or not number.isdigit() or not 0 < int(number) < 2**31:
        raise Problem(422, "bad-request-ref", "没听明白是哪一件事，请点消息下面的按钮。")
    return kind, int(number)


# --- Who may answer ------------------------------------------------------------------------


def _led_units(session: Session, staff: StaffUser) -> set[int]:
    return set(session.scalars(select(HouseholdUnit.id).where(HouseholdUnit.leader_id == staff.id)))


def _may_answer_repair(session: Session, staff: StaffUser, repair: Repair) -> bool:
    if staff.role is StaffRole.admin:
        return True
    tier = {
        StaffRole.unit_leader: EscalationTier.unit_leader,
        StaffRole.grid_worker: EscalationTier.grid_worker,
    }.get(staff.role)
    if tier is None:
        return False
    holders = repairs_repo.staff_at_tier(session, repair=repair, tier=tier)
    return staff.id in holders


def _alert_household(session: Session, alert: EmergencyAlert) -> Household | None:
    resident = session.get(Resident, alert.resident_id) if alert.resident_id else None
    return resident.household if resident is not None else None


def _may_answer_alert(session: Session, staff: StaffUser, alert: EmergencyAlert) -> bool:
    if staff.role is StaffRole.admin:
        return True
    household = _alert_household(session, alert)
    if staff.role is StaffRole.unit_leader:
        return household is not None and household.unit_id in _led_units(session, staff)
    if staff.role is StaffRole.grid_worker:
        building_id = household.building_id if household else None
        worker = alerts_repo.grid_worker_of_building(session, building_id=building_id)
        # An alert from an unknown place went to every grid worker: any of them may answer.
        return worker == staff.id or household is None
    return False


def _repair(session: Session, staff: StaffUser, number: int) -> Repair:
    repair = repairs_repo.get_repair(session, repair_id=number)
    if not _may_answer_repair(session, staff, repair):
        raise NOT_YOURS
    return repair


def _alert(session: Session, staff: StaffUser, number: int) -> EmergencyAlert:
    alert = alerts_repo.get_alert(session, alert_id=number)
    if not _may_answer_alert(session, staff, alert):
        raise NOT_YOURS
    return alert


# --- 收到 ------------------------------------------------------------------------------------


def acknowledge(session: Session, *, staff: StaffUser, request: str, now: datetime) -> Answer:
    """收到: the first response to a repair or an alert; repeating it changes nothing."""
    kind, number = parse_request(request)
    who = f"{ROLE_WORDS[staff.role]}{_plain_name(staff)}"
    if kind == "repair":
        repair = _repair(session, staff, number)
        if repair.status is not RepairStatus.submitted:
            status = repairs_repo.STATUS_NAMES[repair.status]
            return Answer(request, False, f"报修单{repair.id}号已经是“{status}”了，不用再确认。")
        repairs_repo.change_status(
            session,
            repair_id=repair.id,
            to_status=RepairStatus.acknowledged,
            note=f"{who}已收到，会跟进。",
            actor=f"staff:{staff.id}",
            now=now,
        )
        return Answer(request, True, f"好的，报修单{repair.id}号记为您已收到，也告诉报修的居民了。")
    alert = _alert(session, staff, number)
    if alert.status is not AlertStatus.open:
        return Answer(request, False, f"求助单{alert.id}号已经有人确认了。")
    alerts_repo.acknowledge(session, alert_id=alert.id, staff_id=staff.id, now=now)
    return Answer(request, True, f"好的，求助单{alert.id}号记为您已收到，请尽快联系求助的居民。")


# --- 上报 ------------------------------------------------------------------------------------


def escalate(
    session: Session, *, staff: StaffUser, request: str, note: str | None, now: datetime
) -> Answer:
    """上报: hand the request one tier up (unit leader → grid worker → council), once."""
    kind, number = parse_request(request)
    tier = NEXT_TIER.get(staff.role)
    if tier is None:
        raise Problem(409, "top-tier", "您已经是社区工作人员了，请直接处理。")
    who = f"{ROLE_WORDS[staff.role]}{_plain_name(staff)}"
    said = f"（{note.strip()}）" if note and note.strip() else ""
    if kind == "repair":
        repair = _repair(session, staff, number)
        changed = repairs_repo.escalate_to(
            session,
            repair_id=repair.id,
            tier=tier,
            note=f"{who}上报{said}，",
            actor=f"staff:{staff.id}",
            now=now,
        )
        place = repairs_repo.TIER_NAMES[repair.escalation_tier]
        if not changed:
            return Answer(request, False, f"报修单{repair.id}号已经在{place}那里了。")
        return Answer(request, True, f"好的，报修单{repair.id}号已经上报给{place}。")
    alert = _alert(session, staff, number)
    if alert.status is AlertStatus.resolved:
        return Answer(request, False, f"求助单{alert.id}号已经处理完了。")
    told = _escalate_alert(session, staff=staff, alert=alert, tier=tier, text=f"{who}上报{said}：")
    target = repairs_repo.TIER_NAMES[tier]
    if not told:
        return Answer(request, False, f"求助单{alert.id}号已经上报过{target}了。")
    return Answer(request, True, f"好的，求助单{alert.id}号已经上报给{target}。")


def _escalate_alert(
    session: Session, *, staff: StaffUser, alert: EmergencyAlert, tier: EscalationTier, text: str
) -> int:
    household = _alert_household(session, alert)
    if tier is EscalationTier.grid_worker:
        staff_ids = alerts_repo.responders_for_building(
            session, building_id=household.building_id if household else None
        )
    else:
        staff_ids = alerts_repo.staff_with_roles(session, roles=[StaffRole.admin])
    resident = session.get(Resident, alert.resident_id) if alert.resident_id else None
    who = resident.name if resident is not None else "一位未登记的居民"
    label = alerts_repo.KIND_LABELS[alert.kind]
    payload = {
        "text": f"{text}{who}的紧急求助（{label}）需要您处理，详情见求助单#{alert.id}。",
        "alert_id": alert.id,
        "kind": alert.kind.value,
        "buttons": [commands.button("收到", commands.LEADER_ACK, request=f"alert:{alert.id}")],
    }
    return alerts_repo.notify_staff_once(
        session,
        staff_ids=[s for s in staff_ids if s != staff.id],
        kind="emergency_escalated",
        payload=payload,
        key=f"alert:{alert.id}:escalated:{tier.value}",
    )


# --- What is waiting ---------------------------------------------------------------------


def open_requests(session: Session, *, staff: StaffUser, limit: int) -> list[OpenRequest]:
    """Requests the staff member may still answer, newest first: open alerts, then repairs."""
    found: list[OpenRequest] = []
    alerts: Sequence[EmergencyAlert] = session.scalars(
        select(EmergencyAlert)
        .where(EmergencyAlert.status == AlertStatus.open)
        .order_by(EmergencyAlert.id.desc())
        .limit(SCAN_LIMIT)
    ).all()
    for alert in alerts:
        if _may_answer_alert(session, staff, alert):
            resident = session.get(Resident, alert.resident_id) if alert.resident_id else None
            who = resident.name if resident is not None else "未登记的居民"
            found.append(
                OpenRequest(
                    request=commands.request_ref("alert", alert.id),
                    kind="alert",
                    summary=f"{who}的紧急求助（{alerts_repo.KIND_LABELS[alert.kind]}）",
                    status=alert.status.value,
                )
            )
    repairs: Sequence[Repair] = session.scalars(
        select(Repair)
        .where(Repair.status.not_in(repairs_repo.DONE))
        .order_by(Repair.id.desc())
        .limit(SCAN_LIMIT)
    ).all()
    for repair in repairs:
        if _may_answer_repair(session, staff, repair):
            found.append(
                OpenRequest(
                    request=commands.request_ref("repair", repair.id),
                    kind="repair",
                    summary=(
                        f"报修单{repair.id}号，{repairs_repo.public_place(repair)}，"
                        f"{repairs_repo.CATEGORY_NAMES[repair.category]}"
                    ),
                    status=repair.status.value,
                )
            )
    return found[:limit]


def _plain_name(staff: StaffUser) -> str:
    # Demo leaders are called "联户长王…": the role is said once.
    return staff.display_name.removeprefix(ROLE_WORDS.get(staff.role, ""))
