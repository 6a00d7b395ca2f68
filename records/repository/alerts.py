"""Emergency alerts (一键呼叫): everyone who can help is told at once, and overdue ones escalate.

Also home to "who responds where" (grid worker of a place, else admins), which handoffs and
volunteer escalations share.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.crypto import current_cipher
from records.core.problems import Problem, not_found
from records.models import (
    AlertStatus,
    Building,
    ChannelIdentity,
    EmergencyAlert,
    EmergencyKind,
    Grid,
    HouseholdUnit,
    Notification,
    Resident,
    StaffRole,
    StaffUser,
    TaskKind,
)

# Module references: dispatch → volunteers → alerts import each other.
from records.repository import commands, dispatch
from records.repository import identities as identities_repo
from records.repository import notifications as notifications_repo
from records.repository.paging import page

GRID_WORKER = "网格员"
UNIT_LEADER = "联户长"
CONTACTS = "紧急联系人"
STAFF = "社区工作人员"

KIND_LABELS = {
    EmergencyKind.fall: "摔倒",
    EmergencyKind.illness: "突发疾病",
    EmergencyKind.fire: "火情",
    EmergencyKind.gas: "燃气泄漏",
    EmergencyKind.trapped: "被困",
    EmergencyKind.other: "紧急情况",
}

# What the caller should do while help is on its way.
SAFETY_ADVICE = {
    EmergencyKind.fall: "如果情况危急，请直接拨打120。",
    EmergencyKind.illness: "如果情况危急，请直接拨打120。",
    EmergencyKind.fire: "如有明火，请先离开房间，并拨打119。",
    EmergencyKind.gas: "请不要开关电器、不要点火，打开门窗后离开房间。",
    EmergencyKind.trapped: "请尽量待在原地，保持电话畅通。",
    EmergencyKind.other: "如果情况危急，请直接拨打110或120。",
}


# --- Who responds where -----------------------------------------------------------------


def _active_staff_id(session: Session, staff_id: int | None) -> int | None:
    staff = session.get(StaffUser, staff_id) if staff_id is not None else None
    return staff.id if staff is not None and staff.active else None


def staff_with_roles(session: Session, *, roles: Sequence[StaffRole]) -> list[int]:
    """Ids of active staff holding any of `roles`."""
    return list(
        session.scalars(
            select(StaffUser.id)
            .where(StaffUser.role.in_(roles), StaffUser.active.is_(True))
            .order_by(StaffUser.id)
        )
    )


def grid_worker_of_building(session: Session, *, building_id: int | None) -> int | None:
    """The active grid worker of the building's grid, if there is one."""
    building = session.get(Building, building_id) if building_id is not None else None
    grid = session.get(Grid, building.grid_id) if building and building.grid_id else None
    return _active_staff_id(session, grid.worker_id if grid else None)


def unit_leader_of(session: Session, *, resident: Resident) -> int | None:
    """The active leader of the resident's household unit (联户长), if there is one."""
    household = resident.household
    unit = (
        session.get(HouseholdUnit, household.unit_id) if household and household.unit_id else None
    )
    return _active_staff_id(session, unit.leader_id if unit else None)


def responders_for_building(session: Session, *, building_id: int | None) -> list[int]:
    """The building's grid worker; the admins when the place or its worker is unknown."""
    worker = grid_worker_of_building(session, building_id=building_id)
    return [worker] if worker is not None else staff_with_roles(session, roles=[StaffRole.admin])


def notify_staff_once(
    session: Session, *, staff_ids: Sequence[int], kind: str, payload: dict[str, Any], key: str
) -> int:
    """Tell each staff member once per `key`; returns how many were newly told."""
    told = 0
    for staff_id in staff_ids:
        dedupe_key = f"{key}:staff:{staff_id}"
        if _already_queued(session, dedupe_key):
            continue
        notifications_repo.notify_staff(
            session, staff_id=staff_id, kind=kind, payload=payload, dedupe_key=dedupe_key
        )
        told += 1
    return told


def _already_queued(session: Session, dedupe_key: str) -> bool:
    found = session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
    return found is not None


# --- Raising an alert ---------------------------------------------------------------------


@dataclass(frozen=True)
class RaisedAlert:
    """An alert and who was told about it (as roles, never names or numbers)."""

    alert: EmergencyAlert
    notified: list[str]
    message: str


def raise_alert(
    session: Session,
    *,
    kind: EmergencyKind,
    identity: str | None = None,
    resident_id: int | None = None,
    location_text: str | None = None,
    description: str | None = None,
    channel: str | None = None,
    now: datetime,
    settings: Settings,
) -> RaisedAlert:
    """Record an emergency and queue every notification in the same transaction.

    Never refuses: unknown, unverified or even malformed senders still get help.
    """
    sender = _sender(session, identity)
    resident = _resident(session, resident_id=resident_id, sender=sender)
    alert = EmergencyAlert(
        kind=kind,
        resident_id=resident.id if resident else None,
        identity_id=sender.id if sender else None,
        channel=channel or (sender.kind.value if sender else None),
        location_text=location_text,
        description=description,
        ack_due_at=now + timedelta(minutes=settings.emergency_ack_minutes),
    )
    session.add(alert)
    session.flush()
    notified = _alert_everyone(session, alert=alert, resident=resident, settings=settings)
    if resident is not None:
        _send_a_neighbour(session, alert=alert, resident=resident, now=now, settings=settings)
    return RaisedAlert(alert=alert, notified=notified, message=_caller_message(kind, notified))


def _send_a_neighbour(
    session: Session,
    *,
    alert: EmergencyAlert,
    resident: Resident,
    now: datetime,
    settings: Settings,
) -> None:
    """Offer an emergency check-on to the nearest volunteers, for a resident with a home.

    Fire and gas are left out by default (`emergency_check_kinds`): that is for 119, not for
    a neighbour to walk into.
    """
    if resident.household is None or alert.kind.value not in settings.emergency_check_kind_set():
        return
    dispatch.create_dispatched_task(
        session,
        kind=TaskKind.emergency_check,
        title=f"紧急查看：{resident.name}（{resident.household.building.name}）{KIND_LABELS[alert.kind]}",
        details="请马上过去看看，到了跟社区工作人员说一声。情况危急请拨打120。",
        resident_id=resident.id,
        alert_id=alert.id,
        due_at=now + timedelta(minutes=settings.emergency_check_due_minutes),
        source_key=f"alert:{alert.id}",
        now=now,
        settings=settings,
        # The grid worker has just been alerted: no second message if no volunteer fits.
        tell_if_nobody=False,
    )


def _sender(session: Session, identity: str | None) -> ChannelIdentity | None:
    if not identity:
        return None
    try:
        return identities_repo.get_or_create_identity(session, identity=identity)
    except Problem:
        return None  # an unreadable sender must not stop an emergency call


def _resident(
    session: Session, *, resident_id: int | None, sender: ChannelIdentity | None
) -> Resident | None:
    if resident_id is not None and (resident := session.get(Resident, resident_id)) is not None:
        return resident
    if sender is not None:
        return identities_repo.resident_for(session, identity=sender.identity)
    return None


def _alert_everyone(
    session: Session, *, alert: EmergencyAlert, resident: Resident | None, settings: Settings
) -> list[str]:
    payload = {
        **_staff_payload(alert, resident=resident, settings=settings),
        "buttons": commands.leader_buttons(commands.request_ref("alert", alert.id)),
    }
    notified = []
    for role, staff_ids in _responders(session, resident=resident):
        notify_staff_once(
            session,
            staff_ids=staff_ids,
            kind="emergency_alert",
            payload=payload,
            key=f"alert:{alert.id}",
        )
        if staff_ids:
            notified.append(role)
    if resident is not None and _tell_contacts(session, alert=alert, resident=resident):
        notified.append(CONTACTS)
    return notified


def _responders(session: Session, *, resident: Resident | None) -> list[tuple[str, list[int]]]:
    """(role, staff ids) to alert: the place's grid worker and unit leader."""
    building_id = resident.household.building_id if resident and resident.household else None
    worker = grid_worker_of_building(session, building_id=building_id)
    # Nobody is known to look after this place: every grid worker and admin hears it.
    groups = [
        (GRID_WORKER, [worker])
        if worker is not None
        else (STAFF, staff_with_roles(session, roles=[StaffRole.grid_worker, StaffRole.admin]))
    ]
    leader = unit_leader_of(session, resident=resident) if resident else None
    if leader is not None:
        groups.append((UNIT_LEADER, [leader]))
    return groups


def _staff_payload(
    alert: EmergencyAlert, *, resident: Resident | None, settings: Settings
) -> dict[str, Any]:
    # Payloads are stored in plain text: name and building only, never rooms or phone numbers.
    who = resident.name if resident else "一位未登记的居民"
    where = f"（{resident.household.building.name}）" if resident and resident.household else ""
    minutes = minutes_text(settings.emergency_ack_minutes)
    return {
        "text": (
            f"紧急求助（{KIND_LABELS[alert.kind]}）：{who}{where}需要帮助。"
            f"请立即联系，并在{minutes}分钟内确认。详情见求助单#{alert.id}。"
        ),
        "alert_id": alert.id,
        "kind": alert.kind.value,
        "resident_id": alert.resident_id,
        "ack_due_at": alert.ack_due_at.isoformat(),
    }


def _tell_contacts(session: Session, *, alert: EmergencyAlert, resident: Resident) -> bool:
    phones = [str(c["phone"]) for c in resident.emergency_contacts or [] if c.get("phone")]
    payload = {
        "text": (
            f"紧急通知：您的家人{resident.name}刚刚发出求助（{KIND_LABELS[alert.kind]}），"
            "社区工作人员已经收到通知。请尽快和他/她联系。"
        ),
        "alert_id": alert.id,
        "kind": alert.kind.value,
    }
    for phone in phones:
        # The dedupe key is stored in plain text, so it names the number by its blind index.
        contact_key = current_cipher().blind_index(f"phone:{phone}")[:32]
        notifications_repo.enqueue(
            session,
            channel="phone",
            recipient=f"phone:{phone}",
            kind="emergency_alert",
            payload=payload,
            dedupe_key=f"alert:{alert.id}:contact:{contact_key}",
        )
    return bool(phones)


def _caller_message(kind: EmergencyKind, notified: list[str]) -> str:
    labels = ["您的紧急联系人" if role == CONTACTS else role for role in notified]
    if not labels:
        told = "已经记下您的求助"
    elif len(labels) == 1:
        told = f"已经通知{labels[0]}"
    else:
        told = f"已经通知{'、'.join(labels[:-1])}和{labels[-1]}"
    return f"{told}，马上有人联系您。{SAFETY_ADVICE[kind]}"


def minutes_text(value: float) -> str:
    """Minutes as people say them: "5", or "2.5" when not whole."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- Handling an alert --------------------------------------------------------------------


def get_alert(session: Session, *, alert_id: int) -> EmergencyAlert:
    """One alert, or a 404 problem."""
    alert = session.get(EmergencyAlert, alert_id)
    if alert is None:
        raise not_found("求助记录")
    return alert


def list_alerts(
    session: Session, *, limit: int, offset: int, status: AlertStatus | None = None
) -> tuple[Sequence[EmergencyAlert], int]:
    """A page of alerts, newest first, and the total."""
    query = select(EmergencyAlert)
    if status is not None:
        query = query.where(EmergencyAlert.status == status)
    return page(session, query.order_by(EmergencyAlert.id.desc()), limit=limit, offset=offset)


def acknowledge(
    session: Session, *, alert_id: int, staff_id: int | None, now: datetime
) -> EmergencyAlert:
    """Staff have seen the alert and are acting; the caller is told. Repeating is harmless."""
    alert = get_alert(session, alert_id=alert_id)
    if alert.status != AlertStatus.open:
        return alert
    alert.status = AlertStatus.acknowledged
    alert.acknowledged_at = now
    alert.acknowledged_by_id = staff_id
    _tell_caller(
        session,
        alert=alert,
        what="ack",
        text="社区工作人员已经收到您的求助，正在处理，请保持电话畅通。",
    )
    session.flush()
    return alert


def resolve(
    session: Session, *, alert_id: int, staff_id: int | None, note: str | None, now: datetime
) -> EmergencyAlert:
    """Close the alert with what was done; resolving also counts as acknowledging."""
    alert = get_alert(session, alert_id=alert_id)
    if alert.status == AlertStatus.resolved:
        return alert
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by_id = staff_id
    alert.status = AlertStatus.resolved
    alert.resolved_at = now
    alert.note = note
    dispatch.cancel_for_source(
        session, source_key=f"alert:{alert.id}", reason="求助已经处理好了，", now=now
    )
    session.flush()
    return alert


def _tell_caller(session: Session, *, alert: EmergencyAlert, what: str, text: str) -> None:
    sender = session.get(ChannelIdentity, alert.identity_id) if alert.identity_id else None
    if sender is None:
        return
    notifications_repo.notify_identity(
        session,
        identity=sender,
        kind=f"emergency_{what}",
        payload={"text": text, "alert_id": alert.id},
        dedupe_key=f"alert:{alert.id}:{what}",
    )


def overdue_unacknowledged(session: Session, *, settings: Settings, now: datetime) -> int:
    """Tell every admin, once per alert, about alerts nobody acknowledged in time."""
    overdue = session.scalars(
        select(EmergencyAlert)
        .where(EmergencyAlert.status == AlertStatus.open, EmergencyAlert.ack_due_at <= now)
        .order_by(EmergencyAlert.id)
    ).all()
    admins = staff_with_roles(session, roles=[StaffRole.admin])
    touched = 0
    for alert in overdue:
        resident = session.get(Resident, alert.resident_id) if alert.resident_id else None
        payload = _staff_payload(alert, resident=resident, settings=settings)
        minutes = minutes_text(settings.emergency_ack_minutes)
        payload["text"] = f"超时未确认！{minutes}分钟内没有人确认这条求助。" + payload["text"]
        key = f"alert:{alert.id}:overdue"
        if notify_staff_once(
            session, staff_ids=admins, kind="emergency_overdue", payload=payload, key=key
        ):
            touched += 1
    session.flush()
    return touched
