"""Staff sign-in for the console, sharing the API's session cookie and its `staff_id`."""

from dataclasses import dataclass

import anyio
from sqladmin.authentication import AuthenticationBackend
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from records.api.routes.auth import authenticate_staff
from records.core.audit import console_actor
from records.models import StaffRole, StaffUser

_STATE_KEY = "console_staff"


@dataclass(frozen=True)
class ConsoleStaff:
    """The staff member behind a console request."""

    id: int
    role: StaffRole
    display_name: str

    @property
    def actor(self) -> str:
        """How the audit trail and repair history name this person."""
        return f"staff:{self.id}"


def current_staff(request: Request) -> ConsoleStaff | None:
    """Who is signed in for this request (None before authentication ran or failed)."""
    staff = getattr(request.state, _STATE_KEY, None)
    return staff if isinstance(staff, ConsoleStaff) else None


class StaffAuthBackend(AuthenticationBackend):
    """Staff users sign in with username and password; inactive users are refused."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        # No super().__init__(): the app already runs SessionMiddleware with the shared
        # "linli_session" cookie; a second one would keep a separate, conflicting session.
        self.middlewares = []
        self._session_factory = session_factory

    async def login(self, request: Request) -> bool:
        """Check the login form; on success remember the staff id in the session."""
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        if not username or not password or len(password) > 200:
            return False
        staff_id = await anyio.to_thread.run_sync(self._verify, username, password)
        if staff_id is None:
            return False
        request.session.clear()
        request.session["staff_id"] = staff_id
        return True

    async def logout(self, request: Request) -> Response:
        """Forget the signed-in staff member (for the API too: the session is shared)."""
        request.session.clear()
        return RedirectResponse(request.url_for("admin:login"), status_code=302)

    async def authenticate(self, request: Request) -> bool:
        """Let through active staff only; name them as the actor of console changes."""
        staff_id = request.session.get("staff_id")
        if not isinstance(staff_id, int):
            return False
        staff = await anyio.to_thread.run_sync(self._load, staff_id)
        if staff is None:
            return False
        setattr(request.state, _STATE_KEY, staff)
        console_actor.set(staff.actor)
        return True

    async def get_user_id(self, request: Request) -> int | None:
        """The signed-in staff id."""
        staff = current_staff(request)
        return staff.id if staff else None

    def _verify(self, username: str, password: str) -> int | None:
        with self._session_factory() as session:
            staff = authenticate_staff(session, username, password)
            return staff.id if staff else None

    def _load(self, staff_id: int) -> ConsoleStaff | None:
        with self._session_factory() as session:
            staff = session.get(StaffUser, staff_id)
            if staff is None or not staff.active:
                return None
            return ConsoleStaff(id=staff.id, role=staff.role, display_name=staff.display_name)
