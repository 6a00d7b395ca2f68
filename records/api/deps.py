"""Request dependencies: database session, clock, settings, and who is calling."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from records.core.audit import set_actor
from records.core.clock import Clock
from records.core.config import Settings
from records.core.problems import Problem
from records.core.security import tokens_equal
from records.models import StaffRole, StaffUser

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


def get_session(request: Request) -> Iterator[Session]:
    """A session per request, rolled back if the request fails; reads never queue for writers."""
    state = request.app.state
    read_only = request.method in READ_ONLY_METHODS
    factory = state.read_session_factory if read_only else state.session_factory
    with factory() as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    """The app's clock (a manual one in tests)."""
    clock: Clock = request.app.state.clock
    return clock


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClockDep = Annotated[Clock, Depends(get_clock)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service holding the token, or a signed-in staff user."""

    name: str
    staff_id: int | None = None
    role: StaffRole | None = None

    @property
    def is_service(self) -> bool:
        """True for the service token."""
        return self.staff_id is None


UNAUTHENTICATED = Problem(401, "unauthenticated", "请先登录或提供有效的服务令牌。")


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """Authenticate by `Authorization: Bearer <SERVICE_TOKEN>` or the staff session cookie."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        if not tokens_equal(token, settings.service_token):
            raise UNAUTHENTICATED
        principal = Principal(name="service")
    else:
        principal = _staff_principal(request, session)
    set_actor(session, principal.name)
    request.state.principal = principal
    return principal


def _staff_principal(request: Request, session: Session) -> Principal:
    staff_id = request.session.get("staff_id") if "session" in request.scope else None
    staff = session.get(StaffUser, staff_id) if isinstance(staff_id, int) else None
    if staff is None or not staff.active:
        raise UNAUTHENTICATED
    return Principal(name=f"staff:{staff.id}", staff_id=staff.id, role=staff.role)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: StaffRole) -> Callable[[Principal], Principal]:
    """A dependency letting through the service token, admins, and staff with `roles`."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.is_service or principal.role in (StaffRole.admin, *roles):
            return principal
        raise Problem(403, "forbidden", "您没有权限进行此操作。")

    return check


def require_service_or_admin(principal: PrincipalDep) -> Principal:
    """Only the service token or an admin."""
    if principal.is_service or principal.role == StaffRole.admin:
        return principal
    raise Problem(403, "forbidden", "您没有权限进行此操作。")


@dataclass(frozen=True)
class PageParams:
    """Limit and offset of a list request."""

    limit: int
    offset: int


def get_page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="items per page")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PageParams:
    """Page parameters, capped by the configured maximum."""
    settings: Settings = request.app.state.settings
    size = min(limit or settings.page_size_default, settings.page_size_max)
    return PageParams(limit=size, offset=offset)


PageDep = Annotated[PageParams, Depends(get_page_params)]
