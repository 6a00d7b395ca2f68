"""Repairs (报修): intake from any channel, the status lifecycle, ratings and SLA escalation.

Service levels: the first response is due `sla_first_response_hours` after a report and the
closure `sla_closure_hours` after it. Urgent repairs get half of both: a stuck lift or a flooded
stairwell cannot wait a day. A repair that misses a due time climbs one tier at a time,
unit leader → grid worker → council (小事不出网格、大事不出社区); each tier holds it for
`escalation_tier_hours` before the next one is called in.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.problems import Problem, not_found
from records.models import (
    Building,
    ChannelIdentity,
    EscalationTier,
    Grid,
    Household,
    HouseholdUnit,
    Repair,
    RepairCategory,
    RepairEvent,
    RepairStatus,
    Resident,
    StaffRole,
    StaffUser,
    Urgency,
)
from records.repository import commands
from records.repository import community as community_repo
from records.repository import identities as identities_repo
from records.repository import notifications as notify
from records.repository.paging import page

CATEGORY_NAMES: dict[RepairCategory, str] = {
    RepairCategory.water: "水管",
    RepairCategory.electricity: "电路",
    RepairCategory.lift: "电梯",
    RepairCategory.door_access: "门禁",
    RepairCategory.lighting: "照明灯",
    RepairCategory.drain: "下水道",
    RepairCategory.gas_appliance: "燃气灶具",
    RepairCategory.public_facility: "公共设施",
    RepairCategory.other: "其他问题",
}

STATUS_NAMES: dict[RepairStatus, str] = {
    RepairStatus.submitted: "已提交",
    RepairStatus.acknowledged: "已受理",
    RepairStatus.assigned: "已派单",
    RepairStatus.in_progress: "维修中",
    RepairStatus.resolved: "已修好",
    RepairStatus.closed: "已办结",
    RepairStatus.reopened: "重新处理中",
}

# What the reporter hears when their repair reaches a status.
_STATUS_NEWS: dict[RepairStatus, str] = {
    RepairStatus.acknowledged: "社区已经收到了，正在安排人手。",
    RepairStatus.assigned: "已经派给维修人员了，他们会尽快联系您。",
    RepairStatus.in_progress: "维修人员正在处理。",
    RepairStatus.resolved: "已经修好了。请您评价一下：1到5分，满意吗？",
    RepairStatus.closed: "已经办结了。谢谢您的支持！",
    RepairStatus.reopened: "已经重新打开，我们会尽快再来处理，给您添麻烦了。",
}

TIER_NAMES: dict[EscalationTier, str] = {
    EscalationTier.none: "未升级",
    EscalationTier.unit_leader: "联户长",
    EscalationTier.grid_worker: "网格员",
    EscalationTier.council: "社区议事会",
}

_FORWARD = (
    RepairStatus.submitted,
    RepairStatus.acknowledged,
    RepairStatus.assigned,
    RepairStatus.in_progress,
    RepairStatus.resolved,
    RepairStatus.closed,
)
_AFTER_REOPEN = (RepairStatus.acknowledged, RepairStatus.assigned, RepairStatus.in_progress)
DONE = (RepairStatus.resolved, RepairStatus.closed)
_TIERS = (EscalationTier.unit_leader, EscalationTier.grid_worker, EscalationTier.council)
# Ratings of 1 or 2 (of 5) mean the resident is not satisfied: the repair is reopened.
UNSATISFIED_MAX = 2
_URGENT_SLA_FACTOR = 0.5
# Ids are 32-bit integers; PostgreSQL refuses larger numbers instead of finding nothing.
MAX_ID = 2**31 - 1


# --- intake -------------------------------------------------------------------------------


def create_repair(
    session: Session,
    *,
    category: RepairCategory,
    description: str,
    urgency: Urgency = Urgency.normal,
    identity: str | None = None,
    building_id: int | None = None,
    building_number: int | None = None,
    entrance: int | None = None,
    room: str | None = None,
    location_text: str | None = None,
    channel: str | None = None,
    actor: str = "system",
    now: datetime,
    settings: Settings,
) -> Repair:
    """Record a repair from anyone (unknown senders too) with a building address or free text."""
    text = description.strip()
    if not text:
        raise Problem(422, "description-required", "请说一说是什么坏了。")
    building = _building(session, building_id=building_id, building_number=building_number)
    room_text = (room or "").strip() or None
    place = (location_text or "").strip() or None
    _check_location(building, entrance=entrance, room=room_text, place=place)
    reporter_identity, reporter = _reporter(session, identity=identity)
    first_response, closure = _due_times(urgency, now=now, settings=settings)
    repair = Repair(
        category=category,
        description=text,
        urgency=urgency,
        status=RepairStatus.submitted,
        building=building,
        entrance=entrance,
        room=room_text,
        location_text=place,
        reporter_id=reporter.id if reporter else None,
        reporter_identity_id=reporter_identity.id if reporter_identity else None,
        channel=channel or (reporter_identity.kind.value if reporter_identity else None),
        first_response_due_at=first_response,
        closure_due_at=closure,
        created_at=now,
        updated_at=now,
    )
    session.add(repair)
    _record(
        repair, kind="created", to_status=RepairStatus.submitted, note=None, actor=actor, now=now
    )
    session.flush()
    _tell_unit_leader_of_new(session, repair)
    return repair


def _reporter(
    session: Session, *, identity: str | None
) -> tuple[ChannelIdentity | None, Resident | None]:
    """The sender's identity row (kept even for strangers: they hear back) and resident."""
    if identity is None:
        return None, None
    row = identities_repo.get_or_create_identity(session, identity=identity)
    return row, identities_repo.resident_for(session, identity=identity)


def _building(
    session: Session, *, building_id: int | None, building_number: int | None
) -> Building | None:
    if building_id is not None:
        building = session.get(Building, building_id) if 0 < building_id <= MAX_ID else None
        if building is None:
            raise Problem(422, "unknown-building", "没有找到这栋楼，请核对一下楼号。")
        if building_number is not None and building.number != building_number:
            raise Problem(422, "unknown-building", "楼号和楼栋对不上，请核对一下楼号。")
        return building
    if building_number is not None:
        building = community_repo.building_by_number(session, number=building_number)
        if building is None:
            raise Problem(422, "unknown-building", f"小区里没有{building_number}号楼，请核对楼号。")
        return building
    return None


def _check_location(
    building: Building | None, *, entrance: int | None, room: str | None, place: str | None
) -> None:
    if building is None and (entrance is not None or room is not None):
        raise Problem(422, "building-required", "请告诉我们是几号楼。")
    if building is None and place is None:
        raise Problem(
            422,
            "location-required",
            "请告诉我们在哪里坏了：几号楼、几单元、哪个房间，或者说一说具体位置。",
        )
    if building is not None and entrance is not None and not 1 <= entrance <= building.entrances:
        raise Problem(422, "no-such-entrance", f"{building.name}没有{entrance}单元，请核对一下。")


def _due_times(urgency: Urgency, *, now: datetime, settings: Settings) -> tuple[datetime, datetime]:
    """First-response and closure due times; urgent repairs get half the time for both."""
    factor = _URGENT_SLA_FACTOR if urgency is Urgency.urgent else 1.0
    return (
        now + timedelta(hours=settings.sla_first_response_hours * factor),
        now + timedelta(hours=settings.sla_closure_hours * factor),
    )


def _tell_unit_leader_of_new(session: Session, repair: Repair) -> None:
    leaders = _tier_staff(session, repair, EscalationTier.unit_leader)
    for staff_id in leaders:
        notify.notify_staff(
            session,
            staff_id=staff_id,
            kind="repair_new",
            payload={
                **_staff_payload(
                    repair,
                    f"{_urgent_mark(repair)}您联户单元有新报修：报修单{repair.id}号，"
                    f"{public_place(repair)}，{CATEGORY_NAMES[repair.category]}。"
                    "请点“收到”跟进，处理不了请点“上报”交给网格员。",
                ),
                # 收到 / 上报 answer through records.repository.leaders.
                "buttons": commands.leader_buttons(commands.request_ref("repair", repair.id)),
            },
            dedupe_key=f"repair:{repair.id}:new:staff:{staff_id}",
        )


# --- reading ------------------------------------------------------------------------------


def get_repair(session: Session, *, repair_id: int) -> Repair:
    """A repair with its events, or a 404 problem."""
    repair = session.get(Repair, repair_id) if 0 < repair_id <= MAX_ID else None
    if repair is None:
        raise not_found("报修单")
    return repair


def _repair_for_update(session: Session, *, repair_id: int) -> Repair:
    """A repair locked until commit, so two concurrent changes cannot both pass the checks."""
    query = select(Repair).where(Repair.id == repair_id).with_for_update()
    repair = (
        session.scalar(query.execution_options(populate_existing=True))
        if 0 < repair_id <= MAX_ID
        else None
    )
    if repair is None:
        raise not_found("报修单")
    return repair


def list_repairs(
    session: Session,
    *,
    limit: int,
    offset: int,
    status: RepairStatus | None = None,
    category: RepairCategory | None = None,
    assignee_id: int | None = None,
    building_id: int | None = None,
    reporter_id: int | None = None,
    reporter_identity: str | None = None,
    escalation_tier: EscalationTier | None = None,
) -> tuple[Sequence[Repair], int]:
    """A page of repairs, newest first, and the total."""
    query = select(Repair)
    filters: list[tuple[Any, object]] = [
        (Repair.status, status),
        (Repair.category, category),
        (Repair.assignee_id, assignee_id),
        (Repair.building_id, building_id),
        (Repair.reporter_id, reporter_id),
        (Repair.escalation_tier, escalation_tier),
    ]
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    if reporter_identity is not None:
        row = identities_repo.find_identity(session, identity=reporter_identity)
        # A sender never seen has reported nothing (comparing with None would mean IS NULL).
        query = query.where(Repair.reporter_identity_id == row.id if row else false())
    return page(session, query.order_by(Repair.id.desc()), limit=limit, offset=offset)


def repairs_for_identity(session: Session, *, identity: str, limit: int) -> Sequence[Repair]:
    """The caller's recent repairs: from this identity, or by the resident behind it."""
    row = identities_repo.find_identity(session, identity=identity)
    resident = identities_repo.resident_for(session, identity=identity)
    mine = []
    if row is not None:
        mine.append(Repair.reporter_identity_id == row.id)
    if resident is not None:
        mine.append(Repair.reporter_id == resident.id)
    if not mine:
        return []
    query = select(Repair).where(or_(*mine)).order_by(Repair.id.desc()).limit(limit)
    return session.scalars(query).all()


def public_place(repair: Repair) -> str:
    """Where the repair is, without the room (rooms are personal data): "3号楼2单元"."""
    if repair.building is None:
        return "位置见报修单"
    if repair.entrance is None:
        return repair.building.name
    return f"{repair.building.name}{repair.entrance}单元"


def full_place(repair: Repair) -> str:
    """Where the repair is, as people say it, room included (for staff and the reporter)."""
    parts = []
    if repair.building is not None:
        parts.append(public_place(repair) + (repair.room or ""))
    if repair.location_text:
        parts.append(repair.location_text)
    return "，".join(parts)


# --- lifecycle ----------------------------------------------------------------------------


def can_move(from_status: RepairStatus, to_status: RepairStatus) -> bool:
    """Forward moves only (steps may be skipped); a reopened repair starts over at handling.

    Only an unsatisfied rating reopens a repair, so staff cannot move one to `reopened`.
    """
    if from_status is RepairStatus.reopened:
        return to_status in _AFTER_REOPEN
    if to_status is RepairStatus.reopened:
        return False
    return _FORWARD.index(to_status) > _FORWARD.index(from_status)


def change_status(
    session: Session,
    *,
    repair_id: int,
    to_status: RepairStatus,
    note: str | None,
    actor: str,
    now: datetime,
) -> Repair:
    """Move a repair along its lifecycle; the reporter hears of it on their channel."""
    repair = _repair_for_update(session, repair_id=repair_id)
    if not can_move(repair.status, to_status):
        raise _illegal_move(repair, to_status)
    _move(session, repair, to_status=to_status, kind="status", note=note, actor=actor, now=now)
    return repair


def _illegal_move(repair: Repair, to_status: RepairStatus) -> Problem:
    now_name = STATUS_NAMES[repair.status]
    detail = (
        f"报修单{repair.id}号已经是“{now_name}”了。"
        if to_status is repair.status
        else f"报修单{repair.id}号现在是“{now_name}”，不能改成“{STATUS_NAMES[to_status]}”。"
    )
    return Problem(409, "illegal-transition", detail, extra={"current_status": repair.status.value})


def assign(
    session: Session,
    *,
    repair_id: int,
    assignee_id: int,
    note: str | None,
    actor: str,
    now: datetime,
) -> Repair:
    """Give a repair to a staff member; reassigning work under way keeps its status."""
    repair = _repair_for_update(session, repair_id=repair_id)
    staff = session.get(StaffUser, assignee_id) if 0 < assignee_id <= MAX_ID else None
    if staff is None or not staff.active:
        raise Problem(422, "unknown-assignee", "没有找到这位工作人员，或者这个账号已停用。")
    if repair.status in DONE:
        raise Problem(
            409,
            "repair-finished",
            f"报修单{repair.id}号已经{STATUS_NAMES[repair.status]}，不用再派单了。",
        )
    repair.assignee_id = staff.id
    if repair.status in (RepairStatus.assigned, RepairStatus.in_progress):
        # Reassigning work under way changes the person, not the progress.
        event = _same_status_event(session, repair, kind="assign", note=note, actor=actor, now=now)
    else:
        event = _move(
            session,
            repair,
            to_status=RepairStatus.assigned,
            kind="assign",
            note=note,
            actor=actor,
            now=now,
        )
    _tell_assignee(session, repair, staff_id=staff.id, event=event)
    return repair


def _tell_assignee(session: Session, repair: Repair, *, staff_id: int, event: RepairEvent) -> None:
    text = (
        f"{_urgent_mark(repair)}报修单{repair.id}号派给您了：{public_place(repair)}，"
        f"{CATEGORY_NAMES[repair.category]}。"
    )
    notify.notify_staff(
        session,
        staff_id=staff_id,
        kind="repair_assigned",
        payload=_staff_payload(repair, text + (f"说明：{event.note}" if event.note else "")),
        dedupe_key=f"repair:{repair.id}:assign:{event.id}",
    )


def _move(
    session: Session,
    repair: Repair,
    *,
    to_status: RepairStatus,
    kind: str,
    note: str | None,
    actor: str,
    now: datetime,
) -> RepairEvent:
    event = _record(repair, kind=kind, to_status=to_status, note=note, actor=actor, now=now)
    repair.status = to_status
    repair.updated_at = now
    _stamp(repair, to_status=to_status, now=now)
    session.flush()
    _tell_reporter(session, repair, event)
    return event


def _stamp(repair: Repair, *, to_status: RepairStatus, now: datetime) -> None:
    # Any move off "submitted" is the first response, even when steps are skipped.
    if repair.acknowledged_at is None and to_status is not RepairStatus.submitted:
        repair.acknowledged_at = now
    if to_status is RepairStatus.resolved:
        repair.resolved_at = now
    elif to_status is RepairStatus.closed:
        repair.closed_at = now
    elif to_status is RepairStatus.reopened:
        repair.resolved_at = None
        repair.closed_at = None


def _same_status_event(
    session: Session, repair: Repair, *, kind: str, note: str | None, actor: str, now: datetime
) -> RepairEvent:
    """Record something that happened to a repair without changing its status."""
    repair.updated_at = now
    event = _record(repair, kind=kind, to_status=repair.status, note=note, actor=actor, now=now)
    session.flush()
    return event


def _record(
    repair: Repair,
    *,
    kind: str,
    to_status: RepairStatus | None,
    note: str | None,
    actor: str,
    now: datetime,
) -> RepairEvent:
    """Append an event; `from_status` is the status before the change (None when created)."""
    from_status = None if kind == "created" else repair.status.value
    event = RepairEvent(
        kind=kind,
        from_status=from_status,
        to_status=to_status.value if to_status is not None else None,
        note=note,
        actor=actor,
        created_at=now,
    )
    repair.events.append(event)
    return event


def _tell_reporter(session: Session, repair: Repair, event: RepairEvent) -> None:
    """Tell the reporter of the change `event` made, on the channel they reported from."""
    status = repair.status
    text = f"您报修的{CATEGORY_NAMES[repair.category]}（报修单{repair.id}号）{_STATUS_NEWS[status]}"
    if event.note:
        text += f"说明：{event.note}"
    payload = {
        "text": text,
        "repair_id": repair.id,
        "status": status.value,
        "from_status": event.from_status,
        "note": event.note,
    }
    key = f"repair:{repair.id}:status:{status.value}:{event.id}"
    if repair.reporter_identity_id is not None:
        identity = session.get(ChannelIdentity, repair.reporter_identity_id)
        if identity is not None:
            notify.notify_identity(
                session, identity=identity, kind="repair_status", payload=payload, dedupe_key=key
            )
            return
    resident = session.get(Resident, repair.reporter_id) if repair.reporter_id else None
    if resident is not None:
        notify.notify_resident(
            session, resident=resident, kind="repair_status", payload=payload, dedupe_key=key
        )


# --- evaluation (满意度) ----------------------------------------------------------------------


def rate(
    session: Session,
    *,
    repair_id: int,
    identity: str,
    rating: int,
    comment: str | None,
    now: datetime,
    settings: Settings,
) -> Repair:
    """The reporter rates a finished repair once per resolution; 1-2 reopens it, 3-5 closes it."""
    if not 1 <= rating <= 5:
        raise Problem(422, "bad-rating", "请用1到5分来评价：5分最满意，1分最不满意。")
    repair = _repair_for_update(session, repair_id=repair_id)
    if not _is_reporter(session, repair, identity=identity):
        raise Problem(403, "not-reporter", "只有报修的本人才能评价这张报修单。")
    if repair.status not in DONE:
        raise Problem(409, "not-finished", "这张报修单还没修好，修好以后再请您评价。")
    if _rated_since_finished(repair):
        raise Problem(409, "already-rated", "这次维修您已经评价过了，谢谢您！")
    repair.rating = rating
    repair.rating_comment = comment
    actor = f"resident:{repair.reporter_id}" if repair.reporter_id else "reporter"
    if rating <= UNSATISFIED_MAX:
        _reopen(session, repair, comment=comment, actor=actor, now=now, settings=settings)
    elif repair.status is RepairStatus.resolved:
        _move(
            session,
            repair,
            to_status=RepairStatus.closed,
            kind="rate",
            note=comment,
            actor=actor,
            now=now,
        )
    else:
        _same_status_event(session, repair, kind="rate", note=comment, actor=actor, now=now)
    return repair


def _is_reporter(session: Session, repair: Repair, *, identity: str) -> bool:
    row = identities_repo.find_identity(session, identity=identity)
    if row is not None and row.id == repair.reporter_identity_id:
        return True
    resident = identities_repo.resident_for(session, identity=identity)
    return resident is not None and resident.id == repair.reporter_id


def _rated_since_finished(repair: Repair) -> bool:
    """Whether a rating follows the latest move into resolved/closed (a reopen allows another)."""
    for event in reversed(repair.events):
        if event.kind == "rate":
            return True
        if event.to_status in DONE and event.from_status != event.to_status:
            return False
    return False


def _reopen(
    session: Session,
    repair: Repair,
    *,
    comment: str | None,
    actor: str,
    now: datetime,
    settings: Settings,
) -> None:
    # The repair starts a new round: a fresh closure time, and escalation starts from scratch.
    _, repair.closure_due_at = _due_times(repair.urgency, now=now, settings=settings)
    repair.escalation_tier = EscalationTier.none
    repair.escalated_at = None
    event = _move(
        session,
        repair,
        to_status=RepairStatus.reopened,
        kind="rate",
        note=comment,
        actor=actor,
        now=now,
    )
    if repair.assignee_id is not None:
        notify.notify_staff(
            session,
            staff_id=repair.assignee_id,
            kind="repair_reopened",
            payload=_staff_payload(
                repair,
                f"报修单{repair.id}号（{public_place(repair)}，{CATEGORY_NAMES[repair.category]}）"
                "居民不满意，已重新打开，请再去看看。",
            ),
            dedupe_key=f"repair:{repair.id}:reopened:{event.id}",
        )


# --- escalation (time-driven) -------------------------------------------------------------


def escalate_overdue(session: Session, *, settings: Settings, now: datetime) -> int:
    """Move every overdue repair up one tier; returns how many were escalated.

    Overdue: still submitted after the first-response due time, or not resolved/closed after
    the closure due time. The first escalation happens at the breach; each further one only
    after the current tier held the repair for `escalation_tier_hours`. Re-running at the same
    moment finds nothing to do, and notifications carry dedupe keys, so runs never double up.
    """
    hold = timedelta(hours=settings.escalation_tier_hours)
    overdue = session.scalars(
        select(Repair)
        .where(
            Repair.status.not_in(DONE),
            Repair.escalation_tier != EscalationTier.council,
            or_(
                Repair.closure_due_at <= now,
                and_(
                    Repair.status == RepairStatus.submitted,
                    Repair.first_response_due_at <= now,
                ),
            ),
            or_(Repair.escalation_tier == EscalationTier.none, Repair.escalated_at <= now - hold),
        )
        .order_by(Repair.id)
        # Two job runners (several app processes) must not escalate the same repair twice.
        .with_for_update(skip_locked=True)
    ).all()
    for repair in overdue:
        _escalate(session, repair, now=now)
    return len(overdue)


def _escalate(session: Session, repair: Repair, *, now: datetime) -> None:
    tier, staff_ids = _next_tier(session, repair)
    missed = (
        "首次响应"
        if repair.status is RepairStatus.submitted and repair.first_response_due_at <= now
        else "办结"
    )
    event = _record(
        repair,
        kind="escalate",
        to_status=None,
        note=f"超过{missed}时限，{_from_tier(repair.escalation_tier)}升级到{TIER_NAMES[tier]}。",
        actor="system",
        now=now,
    )
    repair.escalation_tier = tier
    repair.escalated_at = now
    session.flush()
    # A reopened repair escalates afresh, so the round is part of the dedupe key.
    round_ = sum(1 for e in repair.events if e.to_status == RepairStatus.reopened.value)
    text = (
        f"{_urgent_mark(repair)}报修单{repair.id}号（{public_place(repair)}，"
        f"{CATEGORY_NAMES[repair.category]}）{missed}已超时，现升级由您（{TIER_NAMES[tier]}）"
        "跟进，请尽快处理。"
    )
    for staff_id in staff_ids:
        notify.notify_staff(
            session,
            staff_id=staff_id,
            kind="repair_escalated",
            payload={**_staff_payload(repair, text), "tier": tier.value, "event_id": event.id},
            dedupe_key=f"repair:{repair.id}:escalate:{round_}:{tier.value}:{staff_id}",
        )


def escalate_to(
    session: Session, *, repair_id: int, tier: EscalationTier, note: str, actor: str, now: datetime
) -> bool:
    """Hand a repair up to `tier` at once (a unit leader's 上报); False if it is there already.

    A tier with nobody to hold it passes the repair on to the council (the admins). The
    periodic escalation then carries on from the new tier.
    """
    repair = _repair_for_update(session, repair_id=repair_id)
    if repair.status in DONE:
        raise Problem(
            409, "repair-finished", f"报修单{repair.id}号已经{STATUS_NAMES[repair.status]}了。"
        )
    current = repair.escalation_tier
    if current is not EscalationTier.none and _TIERS.index(current) >= _TIERS.index(tier):
        return False
    staff_ids = _tier_staff(session, repair, tier)
    if not staff_ids:
        tier = EscalationTier.council
        staff_ids = _tier_staff(session, repair, tier)
    event = _record(repair, kind="escalate", to_status=None, note=note, actor=actor, now=now)
    repair.escalation_tier = tier
    repair.escalated_at = now
    repair.updated_at = now
    session.flush()
    round_ = sum(1 for e in repair.events if e.to_status == RepairStatus.reopened.value)
    text = (
        f"{_urgent_mark(repair)}报修单{repair.id}号（{public_place(repair)}，"
        f"{CATEGORY_NAMES[repair.category]}）{note}现由您（{TIER_NAMES[tier]}）跟进，请尽快处理。"
    )
    for staff_id in staff_ids:
        notify.notify_staff(
            session,
            staff_id=staff_id,
            kind="repair_escalated",
            payload={**_staff_payload(repair, text), "tier": tier.value, "event_id": event.id},
            dedupe_key=f"repair:{repair.id}:escalate:{round_}:{tier.value}:{staff_id}",
        )
    return True


def staff_at_tier(session: Session, *, repair: Repair, tier: EscalationTier) -> list[int]:
    """Active staff holding `tier` for this repair's place (unit leader, grid worker, admins)."""
    return _tier_staff(session, repair, tier)


def _from_tier(current: EscalationTier) -> str:
    return "" if current is EscalationTier.none else f"从{TIER_NAMES[current]}"


def _next_tier(session: Session, repair: Repair) -> tuple[EscalationTier, list[int]]:
    """The next tier with someone to take the repair; tiers without a person are skipped."""
    current = repair.escalation_tier
    start = 0 if current is EscalationTier.none else _TIERS.index(current) + 1
    for tier in _TIERS[start:-1]:
        staff_ids = _tier_staff(session, repair, tier)
        if staff_ids:
            return tier, staff_ids
    return EscalationTier.council, _tier_staff(session, repair, EscalationTier.council)


def _tier_staff(session: Session, repair: Repair, tier: EscalationTier) -> list[int]:
    """Active staff holding `tier` for this repair's place."""
    if tier is EscalationTier.council:
        admins = select(StaffUser.id).where(
            StaffUser.role == StaffRole.admin, StaffUser.active.is_(True)
        )
        return list(session.scalars(admins.order_by(StaffUser.id)).all())
    staff_id = (
        _unit_leader_id(session, repair)
        if tier is EscalationTier.unit_leader
        else _grid_worker_id(session, repair)
    )
    staff = session.get(StaffUser, staff_id) if staff_id is not None else None
    return [staff.id] if staff is not None and staff.active else []


def _unit_leader_id(session: Session, repair: Repair) -> int | None:
    household = _household_of(session, repair)
    if household is None or household.unit_id is None:
        return None
    unit = session.get(HouseholdUnit, household.unit_id)
    return unit.leader_id if unit else None


def _grid_worker_id(session: Session, repair: Repair) -> int | None:
    building = repair.building
    if building is None:
        household = _household_of(session, repair)
        building = household.building if household else None
    if building is None or building.grid_id is None:
        return None
    grid = session.get(Grid, building.grid_id)
    return grid.worker_id if grid else None


def _household_of(session: Session, repair: Repair) -> Household | None:
    """The household at the repair's address; for a free-text place, the reporter's home."""
    if repair.building_id is not None:
        if repair.entrance is None or repair.room is None:
            return None
        return community_repo.find_household(
            session, building_id=repair.building_id, entrance=repair.entrance, room=repair.room
        )
    reporter = session.get(Resident, repair.reporter_id) if repair.reporter_id else None
    return reporter.household if reporter else None


def _urgent_mark(repair: Repair) -> str:
    return "【紧急】" if repair.urgency is Urgency.urgent else ""


def _staff_payload(repair: Repair, text: str) -> dict[str, Any]:
    # No room or free-text place here: payloads are stored unencrypted; staff open the repair.
    return {
        "text": text,
        "repair_id": repair.id,
        "category": repair.category.value,
        "urgency": repair.urgency.value,
        "status": repair.status.value,
        "closure_due_at": repair.closure_due_at.isoformat(),
    }


# --- searching for Open311 ----------------------------------------------------------------


def search_repairs(
    session: Session,
    *,
    ids: Sequence[int] = (),
    categories: Sequence[RepairCategory] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    finished: bool | None = None,
    limit: int,
) -> Sequence[Repair]:
    """Repairs by id, or by category, report time and whether finished; newest first."""
    query = select(Repair)
    if ids:
        query = query.where(Repair.id.in_(ids))
    else:
        if categories:
            query = query.where(Repair.category.in_(categories))
        if since is not None:
            query = query.where(Repair.created_at >= since)
        if until is not None:
            query = query.where(Repair.created_at <= until)
        if finished is not None:
            done = Repair.status.in_(DONE)
            query = query.where(done if finished else ~done)
    return session.scalars(query.order_by(Repair.id.desc()).limit(limit)).all()
