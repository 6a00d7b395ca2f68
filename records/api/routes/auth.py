"""Staff sign-in for the API; the session cookie is shared with the staff console."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.api.deps import PrincipalDep, SessionDep
from records.core.audit import set_actor
from records.core.problems import Problem
from records.core.security import verify_password
from records.models import StaffRole, StaffUser

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    """Staff credentials."""

    username: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=200)


class WhoAmI(BaseModel):
    """The signed-in principal."""

    name: str
    staff_id: int | None
    role: StaffRole | None


def authenticate_staff(session: Session, username: str, password: str) -> StaffUser | None:
    """The active staff user with these credentials, or None."""
    staff = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if staff is None or not staff.active or not verify_password(password, staff.password_hash):
        return None
    set_actor(session, f"staff:{staff.id}")
    staff.last_login_at = datetime.now(UTC)
    session.commit()
    return staff


@router.post("/login")
def login(body: LoginIn, request: Request, session: SessionDep) -> WhoAmI:
    """Sign a staff user in; sets the session cookie."""
    staff = authenticate_staff(session, body.username, body.password)
    if staff is None:
        raise Problem(401, "bad-credentials", "用户名或密码不对。")
    request.session.clear()
    request.session["staff_id"] = staff.id
    return WhoAmI(name=f"staff:{staff.id}", staff_id=staff.id, role=staff.role)


@router.post("/logout", status_code=204)
def logout(request: Request) -> None:
    """Sign out (clears the session cookie)."""
    request.session.clear()


@router.get("/me")
def me(principal: PrincipalDep) -> WhoAmI:
    """Who the caller is."""
    return WhoAmI(name=principal.name, staff_id=principal.staff_id, role=principal.role)
