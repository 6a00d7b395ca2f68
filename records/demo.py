"""Demo data: the fictional 幸福里社区, loaded once into an empty database (`records demo`).

Every name, phone number and address here is invented. The community is built from a seeded
random generator, so two loads with the same `now` produce the same rows. Tables whose
repositories exist go through them (residents, households); the rest are built from the models.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.audit import set_actor
from records.core.config import Settings
from records.core.security import hash_password
from records.models import (
    Building,
    ChannelKind,
    Community,
    Dish,
    Eligibility,
    Grid,
    Household,
    HouseholdUnit,
    MealSlot,
    Menu,
    Proposal,
    ProposalStatus,
    ProposalSupport,
    Repair,
    RepairCategory,
    RepairEvent,
    RepairStatus,
    Resident,
    StaffRole,
    StaffUser,
    Urgency,
    Volunteer,
    Vote,
    VoteKind,
    VoteOption,
    VoteScope,
)
from records.repository import community as community_repo
from records.repository import residents as residents_repo

SEED = 20260101
DEMO_ACTOR = "demo"
MENU_DAYS = 7

# (number, entrances, households): 40 households, one household unit (联户单元) per building.
BUILDINGS = ((1, 3, 14), (2, 2, 13), (3, 3, 13))
FLOORS = 6
UNIT_NAMES = ("第一联户单元", "第二联户单元", "第三联户单元")

# Household make-up: how many households of each kind (40 in all, about 80 residents).
HOUSEHOLD_KINDS = {
    "elder_alone": 8,
    "elder_couple": 7,
    "family": 10,
    "couple": 9,
    "three_generations": 3,
    "single": 3,
}
MEMBERS = {
    "elder_alone": ("elder",),
    "elder_couple": ("elder", "elder"),
    "family": ("adult", "adult", "child"),
    "couple": ("adult", "adult"),
    "three_generations": ("elder", "adult", "child"),
    "single": ("adult",),
}
BIRTH_YEARS = {"elder": (1936, 1958), "adult": (1968, 1998), "child": (2010, 2020)}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN_NAMES = {
    "elder_f": _names("秀英 桂兰 玉兰 淑珍 凤英 秀兰 桂英 玉珍 金花 素芳 玉梅"),
    "elder_m": _names("建国 国华 德明 福生 文华 志刚 长顺 保国 振华 永福"),
    "adult_f": _names("敏 静 芳 丽 娜 婷 倩 海燕 春梅 红霞 丽娟 雪梅"),
    "adult_m": _names("伟 磊 军 强 涛 浩 杰 鹏 晓东 志强 建军 永刚"),
    "child": _names("子涵 梓轩 一诺 欣怡 浩然 雨桐 思远 佳琪 宇航 可馨"),
}
DIETARY_NOTES = ("少盐", "软食", "糖尿病，少糖", "少盐，软食", "高血压，少盐少油", "牙口不好，软食")
FIRST_PHONE = 13800001001
FIRST_CONTACT_PHONE = 13900001001

# (username, display name, role); the unit leaders get their display names from their residents.
OFFICE_STAFF = (
    ("admin", "社区管理员", StaffRole.admin),
    ("grid1", "网格员刘芳", StaffRole.grid_worker),
    ("canteen1", "食堂管理员周红", StaffRole.canteen),
)
VOLUNTEER_SKILLS = (
    ["meal_delivery", "visit"],
    ["repair", "driving"],
    ["escort", "visit"],
    ["first_aid", "escort"],
    ["meal_delivery", "driving"],
    ["repair", "first_aid", "visit"],
)
VOLUNTEER_AVAILABILITY = (
    {"weekdays": [1, 2, 3, 4, 5], "slots": ["morning", "noon"]},
    {"weekdays": [6, 7], "slots": ["morning", "afternoon"]},
    {"weekdays": [1, 3, 5], "slots": ["afternoon"]},
    {"weekdays": [1, 2, 3, 4, 5, 6, 7], "slots": ["evening"]},
    {"weekdays": [2, 4, 6], "slots": ["noon", "afternoon"]},
    {"weekdays": [1, 2, 3, 4, 5], "slots": ["morning", "afternoon", "evening"]},
)

# (name, tags): home-style canteen food, mild and soft enough for older diners.
DishPool = tuple[tuple[str, list[str]], ...]
BREAKFAST_DISHES: DishPool = (
    ("小米粥", ["软食", "清淡"]),
    ("南瓜粥", ["软食", "清淡"]),
    ("豆浆", ["清淡"]),
    ("猪肉白菜包子", []),
    ("茶叶蛋", []),
    ("花卷", ["素"]),
)
MAIN_DISHES: DishPool = (
    ("西红柿炒鸡蛋", ["软食"]),
    ("红烧肉", []),
    ("清蒸鲈鱼", ["少盐", "软食"]),
    ("醋溜土豆丝", ["素"]),
    ("肉末豆腐", ["软食"]),
    ("青椒肉丝", []),
    ("蒜蓉西兰花", ["素", "少盐"]),
    ("红烧茄子", ["素", "软食"]),
    ("香菇青菜", ["素", "少盐"]),
    ("土豆炖牛肉", ["软食"]),
)
SOUPS: DishPool = (
    ("冬瓜排骨汤", ["少盐"]),
    ("紫菜蛋花汤", ["清淡"]),
    ("白菜豆腐汤", ["素", "清淡"]),
)
STAPLES: DishPool = (("米饭", ["素"]), ("杂粮饭", ["素", "控糖"]))
# (capacity range, prices in cents) per meal.
MENU_TERMS = {
    MealSlot.breakfast: ((30, 40), (800, 900)),
    MealSlot.lunch: ((40, 60), (1200, 1300, 1500)),
    MealSlot.dinner: ((30, 50), (1000, 1200)),
}
# Default booking cut-offs in local time: (days before the meal, local time).
CUTOFFS = {
    MealSlot.breakfast: (1, time(20, 0)),
    MealSlot.lunch: (0, time(9, 30)),
    MealSlot.dinner: (0, time(15, 0)),
}


class DemoError(RuntimeError):
    """The demo data cannot be loaded as configured."""


@dataclass
class Town:
    """What has been built so far, for the later steps to refer to."""

    rng: random.Random
    community: Community
    grid: Grid
    buildings: list[Building]
    units: list[HouseholdUnit]
    # Residents of each unit, in the order they were registered.
    unit_residents: list[list[Resident]] = field(default_factory=list)
    adults: list[Resident] = field(default_factory=list)
    staff: dict[str, StaffUser] = field(default_factory=dict)


def load_demo(*, session: Session, settings: Settings, now: datetime | None = None) -> bool:
    """Load the demo community into an empty database and commit; False if one exists."""
    if session.scalar(select(Community.id).limit(1)) is not None:
        return False
    if not settings.demo_staff_password:
        raise DemoError(
            "DEMO_STAFF_PASSWORD is not set: set it in .env (`make setup` writes one) "
            "before loading the demo data."
        )
    now = now or datetime.now(UTC)
    set_actor(session, DEMO_ACTOR)
    # A seeded generator makes the same town every time; nothing secret comes from it.
    town = _build_structure(session, rng=random.Random(SEED))  # noqa: S311
    _build_households(session, town=town)
    _build_staff(session, town=town, password_hash=hash_password(settings.demo_staff_password))
    _build_volunteers(session, town=town)
    _build_menus(session, rng=town.rng, today=_local_today(now, settings), settings=settings)
    _build_proposals(session, town=town, settings=settings, now=now)
    _build_vote(session, now=now)
    _build_repairs(session, town=town, settings=settings, now=now)
    session.commit()
    return True


def _local_today(now: datetime, settings: Settings) -> date:
    return now.astimezone(ZoneInfo(settings.timezone)).date()


def _build_structure(session: Session, *, rng: random.Random) -> Town:
    community = Community(name="幸福里社区", address="幸福路88号")
    session.add(community)
    session.flush()
    grid = Grid(community_id=community.id, name="幸福里第一网格")
    session.add(grid)
    session.flush()
    buildings = [
        Building(
            community_id=community.id,
            grid_id=grid.id,
            number=number,
            name=f"{number}号楼",
            entrances=entrances,
        )
        for number, entrances, _ in BUILDINGS
    ]
    units = [HouseholdUnit(grid_id=grid.id, name=name) for name in UNIT_NAMES]
    session.add_all([*buildings, *units])
    session.flush()
    return Town(rng=rng, community=community, grid=grid, buildings=buildings, units=units)


def _addresses(rng: random.Random, *, entrances: int, count: int) -> list[tuple[int, str]]:
    """`count` distinct (entrance, room) pairs such as (2, "502"), in address order."""
    every = [
        (entrance, f"{floor}0{door}")
        for entrance in range(1, entrances + 1)
        for floor in range(1, FLOORS + 1)
        for door in (1, 2)
    ]
    return sorted(rng.sample(every, count), key=lambda a: (a[0], int(a[1])))


def _build_households(session: Session, *, town: Town) -> None:
    kinds = [kind for kind, count in HOUSEHOLD_KINDS.items() for _ in range(count)]
    town.rng.shuffle(kinds)
    people = _People(town.rng)
    for building, unit, (_, entrances, count) in zip(
        town.buildings, town.units, BUILDINGS, strict=True
    ):
        members: list[Resident] = []
        for entrance, room in _addresses(town.rng, entrances=entrances, count=count):
            household = community_repo.create_household(
                session, building_id=building.id, entrance=entrance, room=room, unit_id=unit.id
            )
            kind = kinds.pop()
            roles = MEMBERS[kind]
            for position, role in enumerate(roles):
                resident = people.register(
                    session,
                    role=role,
                    # Two elders or two adults heading a household are a married couple.
                    spouse=position == 1 and roles[0] == role,
                    household=household,
                    alone=kind == "elder_alone",
                )
                members.append(resident)
                if role == "adult":
                    town.adults.append(resident)
        town.unit_residents.append(members)


class _People:
    """Invents residents: names, birth dates, phones, contacts and dietary notes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: set[str] = set()
        self.phone = FIRST_PHONE
        self.contact_phone = FIRST_CONTACT_PHONE
        self.surnames: dict[int, str] = {}

    def register(
        self, session: Session, *, role: str, spouse: bool, household: Household, alone: bool
    ) -> Resident:
        """Register one member of `household` through the residents repository."""
        # The first member gives the household its surname; a wife keeps her own.
        family_name = self.surnames.setdefault(household.id, self.rng.choice(SURNAMES))
        surname = family_name
        if spouse:
            surname = self.rng.choice([s for s in SURNAMES if s != family_name])
        elderly = role == "elder"
        return residents_repo.create_resident(
            session,
            name=self._unique_name(surname, self._name_pool(role, spouse=spouse, alone=alone)),
            household_id=household.id,
            birth_date=self._birth_date(role),
            is_elderly=elderly,
            lives_alone=alone,
            phones=[] if role == "child" else [self._next_phone()],
            emergency_contacts=self._contacts(family_name, alone=alone) if elderly else None,
            dietary_notes=self._dietary_note(alone=alone) if elderly else None,
            preferred_channel=self._channel(role),
        )

    def _name_pool(self, role: str, *, spouse: bool, alone: bool) -> str:
        # Given names tell women and men apart. The first member is the husband, whose
        # surname the household and the children carry; his wife is the spouse.
        if role == "child":
            return role
        if alone:
            # More women than men outlive their spouses.
            return self.rng.choice(("elder_f", "elder_f", "elder_m"))
        return f"{role}_f" if spouse else f"{role}_m"

    def _unique_name(self, surname: str, pool: str) -> str:
        while True:
            name = surname + self.rng.choice(GIVEN_NAMES[pool])
            if name not in self.names:
                self.names.add(name)
                return name

    def _birth_date(self, role: str) -> date:
        first, last = BIRTH_YEARS[role]
        return date(self.rng.randint(first, last), self.rng.randint(1, 12), self.rng.randint(1, 28))

    def _next_phone(self) -> str:
        self.phone += 1
        return str(self.phone - 1)

    def _contacts(self, surname: str, *, alone: bool) -> list[dict[str, Any]]:
        relations = (("儿子", "adult_m"), ("女儿", "adult_f")) if alone else (("儿子", "adult_m"),)
        contacts = []
        for relation, pool in relations:
            self.contact_phone += 1
            contacts.append(
                {
                    "name": surname + self.rng.choice(GIVEN_NAMES[pool]),
                    "phone": str(self.contact_phone - 1),
                    "relation": relation,
                }
            )
        return contacts

    def _dietary_note(self, *, alone: bool) -> str | None:
        # Everyone living alone eats at the canteen, so their needs are always on record.
        if alone or self.rng.random() < 0.5:
            return self.rng.choice(DIETARY_NOTES)
        return None

    def _channel(self, role: str) -> ChannelKind | None:
        if role == "elder":
            return ChannelKind.phone
        if role == "adult":
            return self.rng.choice((ChannelKind.telegram, ChannelKind.wechat))
        return None


def _build_staff(session: Session, *, town: Town, password_hash: str) -> None:
    for username, display_name, role in OFFICE_STAFF:
        town.staff[username] = StaffUser(
            username=username, display_name=display_name, password_hash=password_hash, role=role
        )
    # Each unit leader (联户长) is an adult living in the unit they look after.
    for number, members in enumerate(town.unit_residents, 1):
        leader = next(r for r in members if r in town.adults)
        town.staff[f"leader{number}"] = StaffUser(
            username=f"leader{number}",
            display_name=f"联户长{leader.name}",
            password_hash=password_hash,
            role=StaffRole.unit_leader,
            resident_id=leader.id,
        )
    session.add_all(town.staff.values())
    session.flush()
    town.grid.worker_id = town.staff["grid1"].id
    for number, unit in enumerate(town.units, 1):
        unit.leader_id = town.staff[f"leader{number}"].id
    session.flush()


def _build_volunteers(session: Session, *, town: Town) -> None:
    leaders = {s.resident_id for s in town.staff.values()}
    candidates = [r for r in town.adults if r.id not in leaders]
    chosen = sorted(town.rng.sample(candidates, len(VOLUNTEER_SKILLS)), key=lambda r: r.id)
    for resident, skills, availability in zip(
        chosen, VOLUNTEER_SKILLS, VOLUNTEER_AVAILABILITY, strict=True
    ):
        household = resident.household
        session.add(
            Volunteer(
                resident_id=resident.id,
                skills=skills,
                home_building_id=household.building_id if household else None,
                availability=availability,
            )
        )
    session.flush()


def _build_menus(session: Session, *, rng: random.Random, today: date, settings: Settings) -> None:
    def dishes(pool: DishPool) -> list[Dish]:
        return [Dish(name=name, tags=tags) for name, tags in pool]

    breakfast, mains, soups, staples = (
        dishes(BREAKFAST_DISHES),
        dishes(MAIN_DISHES),
        dishes(SOUPS),
        dishes(STAPLES),
    )
    session.add_all([*breakfast, *mains, *soups, *staples])
    session.flush()
    zone = ZoneInfo(settings.timezone)
    for offset in range(MENU_DAYS):
        day = today + timedelta(days=offset)
        for slot in MealSlot:
            if slot is MealSlot.breakfast:
                served = rng.sample(breakfast, 3)
            else:
                served = [rng.choice(staples), *rng.sample(mains, 3), rng.choice(soups)]
            capacities, prices = MENU_TERMS[slot]
            session.add(
                Menu(
                    day=day,
                    slot=slot,
                    capacity=rng.randint(*capacities),
                    cutoff_at=_cutoff(day, slot, zone),
                    price_cents=rng.choice(prices),
                    dishes=served,
                )
            )
    session.flush()


def _cutoff(day: date, slot: MealSlot, zone: ZoneInfo) -> datetime:
    """When booking for this meal closes, as an aware UTC datetime."""
    days_before, local_time = CUTOFFS[slot]
    local = datetime.combine(day - timedelta(days=days_before), local_time, tzinfo=zone)
    return local.astimezone(UTC)


def _build_proposals(session: Session, *, town: Town, settings: Settings, now: datetime) -> None:
    building_3 = town.unit_residents[2]
    author = next(r for r in building_3 if r.is_elderly)
    today = now.date()
    supporters = [
        r for r in building_3 if r.id != author.id and (residents_repo.age_on(r, today) or 0) >= 18
    ][:4]
    lift = Proposal(
        title="3号楼加装电梯",
        content=(
            "3号楼是老楼，没有电梯，楼里住着不少腿脚不便的老人，上下楼很困难。"
            "建议申请老旧小区改造资金，为3号楼各单元加装电梯，费用按楼层分摊。"
        ),
        author_id=author.id,
        status=ProposalStatus.published,
        support_threshold=settings.proposal_support_threshold,
        support_count=len(supporters),
        review_note="符合社区提案要求，已公开征集居民支持。",
        published_at=now - timedelta(days=3),
        channel=ChannelKind.phone.value,
        created_at=now - timedelta(days=5),
    )
    # A fresh proposal waiting for staff review, so the review queue is not empty.
    railings = Proposal(
        title="楼道加装扶手",
        content="1号楼楼道没有扶手，老人上下楼容易摔倒，建议每个单元的楼道都装上扶手。",
        author_id=next(r for r in town.unit_residents[0] if r.is_elderly).id,
        status=ProposalStatus.submitted,
        support_threshold=settings.proposal_support_threshold,
        channel=ChannelKind.telegram.value,
        created_at=now - timedelta(hours=20),
    )
    session.add_all([lift, railings])
    session.flush()
    session.add_all(
        ProposalSupport(
            proposal_id=lift.id, resident_id=r.id, created_at=now - timedelta(days=2, hours=i)
        )
        for i, r in enumerate(supporters)
    )
    session.flush()


def _build_vote(session: Session, *, now: datetime) -> None:
    vote = Vote(
        title="中心广场改造方案",
        description=(
            "社区计划用共建资金改造中心广场：铺防滑地面，增加座椅、遮阳棚和适合老人的健身器材。"
            "您同意这个方案吗？"
        ),
        kind=VoteKind.yes_no,
        scope=VoteScope.community,
        eligibility=Eligibility.resident,
        opens_at=now,
        closes_at=now + timedelta(days=7),
        options=[
            VoteOption(code=code, label=label, position=position)
            for position, (code, label) in enumerate(
                (("yes", "同意"), ("no", "反对"), ("abstain", "弃权")), 1
            )
        ],
    )
    session.add(vote)
    session.flush()


@dataclass(frozen=True)
class _RepairPlan:
    """One demo repair and how far it has come."""

    category: RepairCategory
    description: str
    urgency: Urgency
    unit: int
    # Which of the unit's elderly residents reported it (they report the most).
    reporter: int
    location_text: str | None
    channel: ChannelKind
    age: timedelta
    # Status steps after "created", each (status, minutes after creation, note).
    steps: tuple[tuple[RepairStatus, int, str], ...]
    rating: tuple[int, str] | None = None


REPAIRS = (
    _RepairPlan(
        category=RepairCategory.lighting,
        description="楼道灯不亮了，晚上上下楼看不清。",
        urgency=Urgency.normal,
        unit=1,
        reporter=0,
        location_text="楼道三楼",
        channel=ChannelKind.phone,
        age=timedelta(hours=3),
        steps=(),
    ),
    _RepairPlan(
        category=RepairCategory.lift,
        description="电梯运行时有异响，老人不敢坐。",
        urgency=Urgency.urgent,
        unit=0,
        reporter=3,
        location_text=None,
        channel=ChannelKind.telegram,
        age=timedelta(hours=6),
        steps=(
            (RepairStatus.acknowledged, 15, "已收到，马上联系电梯维保公司。"),
            (RepairStatus.assigned, 40, "已派网格员跟进。"),
            (RepairStatus.in_progress, 120, "维保师傅已到现场检修。"),
        ),
    ),
    _RepairPlan(
        category=RepairCategory.water,
        description="厨房水龙头漏水，关不紧。",
        urgency=Urgency.normal,
        unit=2,
        reporter=1,
        location_text=None,
        channel=ChannelKind.phone,
        age=timedelta(days=4),
        steps=(
            (RepairStatus.acknowledged, 60, "已收到，明天上午上门。"),
            (RepairStatus.assigned, 90, "已安排维修师傅。"),
            (RepairStatus.in_progress, 18 * 60, "师傅已上门。"),
            (RepairStatus.resolved, 19 * 60, "已更换水龙头阀芯。"),
            (RepairStatus.closed, 26 * 60, "居民确认修好了。"),
        ),
        rating=(5, "师傅来得很快，谢谢！"),
    ),
)


def _build_repairs(session: Session, *, town: Town, settings: Settings, now: datetime) -> None:
    staff_actor = f"staff:{town.staff['grid1'].id}"
    for plan in REPAIRS:
        reporter = [r for r in town.unit_residents[plan.unit] if r.is_elderly][plan.reporter]
        household = reporter.household
        assert household is not None  # every demo resident has a household
        created = now - plan.age
        # Urgent repairs get half the time, as the repairs service sets them.
        factor = 0.5 if plan.urgency is Urgency.urgent else 1.0
        repair = Repair(
            category=plan.category,
            description=plan.description,
            urgency=plan.urgency,
            status=plan.steps[-1][0] if plan.steps else RepairStatus.submitted,
            building_id=household.building_id,
            entrance=household.entrance,
            room=household.room,
            location_text=plan.location_text,
            reporter_id=reporter.id,
            channel=plan.channel.value,
            first_response_due_at=created
            + timedelta(hours=settings.sla_first_response_hours * factor),
            closure_due_at=created + timedelta(hours=settings.sla_closure_hours * factor),
            created_at=created,
            updated_at=created,
        )
        session.add(repair)
        session.flush()
        session.add(
            RepairEvent(
                repair_id=repair.id,
                kind="created",
                to_status=RepairStatus.submitted.value,
                actor="service",
                created_at=created,
            )
        )
        _apply_steps(
            session, repair=repair, plan=plan, actor=staff_actor, grid_worker=town.staff["grid1"]
        )
    session.flush()


def _apply_steps(
    session: Session,
    *,
    repair: Repair,
    plan: _RepairPlan,
    actor: str,
    grid_worker: StaffUser,
) -> None:
    previous = RepairStatus.submitted
    for status, minutes, note in plan.steps:
        moment = repair.created_at + timedelta(minutes=minutes)
        kind = "assign" if status is RepairStatus.assigned else "status"
        session.add(
            RepairEvent(
                repair_id=repair.id,
                kind=kind,
                from_status=previous.value,
                to_status=status.value,
                note=note,
                actor=actor,
                created_at=moment,
            )
        )
        _stamp(repair, status=status, moment=moment, grid_worker=grid_worker)
        previous = status
    if plan.rating is not None:
        repair.rating, repair.rating_comment = plan.rating


def _stamp(
    repair: Repair, *, status: RepairStatus, moment: datetime, grid_worker: StaffUser
) -> None:
    """Set the time stamps a move to `status` leaves on the repair."""
    repair.updated_at = moment
    if status is RepairStatus.acknowledged:
        repair.acknowledged_at = moment
    elif status is RepairStatus.assigned:
        repair.assignee_id = grid_worker.id
    elif status is RepairStatus.resolved:
        repair.resolved_at = moment
    elif status is RepairStatus.closed:
        repair.closed_at = moment
