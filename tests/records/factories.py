"""A small community to test against, built through the repository layer."""

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from records.models import (
    Building,
    Community,
    Grid,
    Household,
    HouseholdUnit,
    Resident,
    StaffRole,
    StaffUser,
)
from records.repository import community as community_repo
from records.repository import residents as residents_repo


@dataclass
class World:
    """Handles to what `build_world` made."""

    community: Community
    grid: Grid
    buildings: list[Building]
    units: list[HouseholdUnit]
    households: list[Household]
    residents: list[Resident]
    staff: dict[StaffRole, StaffUser] = field(default_factory=dict)

    @property
    def elder(self) -> Resident:
        """An elderly resident living alone (born 1941), phone +8613800000001."""
        return self.residents[0]


def build_world(session: Session, *, password_hash: str) -> World:
    """Two buildings, two units, four households, five residents, one staff user per role."""
    community = Community(name="幸福里社区", address="幸福路1号")
    session.add(community)
    session.flush()
    grid = Grid(community_id=community.id, name="第一网格")
    session.add(grid)
    session.flush()
    buildings = [
        Building(community_id=community.id, grid_id=grid.id, number=n, name=f"{n}号楼", entrances=3)
        for n in (1, 3)
    ]
    session.add_all(buildings)
    session.flush()
    units = [HouseholdUnit(grid_id=grid.id, name=name) for name in ("一联户", "二联户")]
    session.add_all(units)
    session.flush()
    addresses = [(0, 1, "101", 0), (0, 2, "202", 0), (1, 2, "501", 1), (1, 1, "302", 1)]
    households = [
        community_repo.create_household(
            session, building_id=buildings[b].id, entrance=e, room=r, unit_id=units[u].id
        )
        for b, e, r, u in addresses
    ]
    people = [
        ("王秀英", 0, date(1941, 3, 5), True, True, ["13800000001"]),
        ("李建国", 1, date(1958, 7, 1), True, False, ["13800000002"]),
        ("张伟", 2, date(1985, 1, 20), False, False, ["13800000003"]),
        ("赵敏", 2, date(1988, 9, 9), False, False, []),
        ("陈桂兰", 3, date(1950, 12, 1), True, True, ["13800000005"]),
    ]
    residents = [
        residents_repo.create_resident(
            session,
            name=name,
            household_id=households[h].id,
            birth_date=born,
            is_elderly=elderly,
            lives_alone=alone,
            phones=phones,
            emergency_contacts=[{"name": "王小明", "phone": "13900000001", "relation": "儿子"}]
            if alone
            else None,
            dietary_notes="少盐" if elderly else None,
        )
        for name, h, born, elderly, alone, phones in people
    ]
    staff = {
        role: StaffUser(
            username=f"{role.value}1",
            display_name=f"测试{role.value}",
            password_hash=password_hash,
            role=role,
        )
        for role in StaffRole
    }
    session.add_all(staff.values())
    session.flush()
    grid.worker_id = staff[StaffRole.grid_worker].id
    for unit in units:
        unit.leader_id = staff[StaffRole.unit_leader].id
    session.commit()
    return World(community, grid, buildings, units, households, residents, staff)
