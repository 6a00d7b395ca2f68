"""What every console view shares: role gates, Chinese display, and row lookups done once."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import anyio
from sqladmin import BaseView, ModelView
from sqladmin.authorization import Action
from sqladmin.fields import TimezoneAwareDateTimeField
from sqladmin.forms import ModelConverter, converts
from sqladmin.pagination import Pagination
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from wtforms import Form, SelectField
from wtforms.validators import InputRequired, Optional

from records.admin.auth import current_staff
from records.admin.labels import label
from records.core.clock import Clock
from records.core.config import Settings
from records.models import StaffRole


@dataclass(frozen=True)
class ConsoleContext:
    """The app's settings, clock and sessions, as the console's views need them."""

    settings: Settings
    clock: Clock
    session_factory: sessionmaker[Session]

    @property
    def timezone(self) -> ZoneInfo:
        """The community's local time zone."""
        return ZoneInfo(self.settings.timezone)


def console_context(request: Request) -> ConsoleContext:
    """The context of the console app serving `request`."""
    context: ConsoleContext = request.app.state.console
    return context


class Access(Enum):
    """What a role may do with a view: look, or also change."""

    read = "read"
    write = "write"


# Per request: table name -> key -> value, e.g. "residents" -> resident id -> name.
Lookups = dict[str, dict[Any, Any]]

_READ_ACTIONS = frozenset({Action.LIST, Action.DETAILS})


class RoleGate:
    """Shows a view, in the menu and by URL, only to the roles listed in `access`."""

    # Admins always have write access; other roles only what is listed here.
    access: ClassVar[Mapping[StaffRole, Access]] = {}

    def access_for(self, request: Request) -> Access | None:
        """What the signed-in staff member may do here (None: nothing)."""
        staff = current_staff(request)
        if staff is None:
            return None
        if staff.role == StaffRole.admin:
            return Access.write
        return self.access.get(staff.role)

    def is_accessible(self, request: Request) -> bool:
        """Open to the roles in `access`."""
        return self.access_for(request) is not None

    def is_visible(self, request: Request) -> bool:
        """In the menu of the roles in `access`."""
        return self.access_for(request) is not None


class ConsolePage(RoleGate, BaseView):
    """A custom console page."""


class ConsoleConverter(ModelConverter):
    """Form fields with Chinese choices for enum columns and times in local time."""

    timezone: ClassVar[ZoneInfo] = ZoneInfo("Asia/Shanghai")  # set per app from settings

    @converts("DateTime")  # type: ignore[untyped-decorator]  # sqladmin leaves it unchecked
    def conv_datetime(self, model: type, prop: Any, kwargs: dict[str, Any]) -> Any:
        """Times are entered and shown as the community's wall-clock time."""
        if not kwargs.get("description"):
            kwargs["description"] = f"当地时间（{self.timezone.key}）"
        return TimezoneAwareDateTimeField(display_timezone=self.timezone, **kwargs)

    @converts("Enum")  # type: ignore[untyped-decorator]  # sqladmin leaves it unchecked
    def conv_enum(self, model: type, prop: Any, kwargs: dict[str, Any]) -> Any:
        """A select whose options read in Chinese."""
        field = super().conv_enum(model, prop, kwargs)
        enum = getattr(prop.columns[0].type, "enum_class", None)
        field.kwargs["choices"] = [
            (value, label(value, enum)) for value, _ in field.kwargs["choices"]
        ]
        return field


@dataclass(frozen=True)
class ForeignKeyChoice:
    """A select for a foreign key column that has no relationship to scaffold one from."""

    label: str
    choices: Callable[[Session], list[tuple[int, str]]]
    required: bool = False

    def field(self, session: Session) -> SelectField:
        """The form field, with the choices as they are now."""
        options: list[tuple[int | str, str]] = list(self.choices(session))
        if not self.required:
            options.insert(0, ("", "（无）"))
        validators = [InputRequired()] if self.required else [Optional()]
        return SelectField(self.label, choices=options, coerce=_id_or_none, validators=validators)


def _id_or_none(value: object) -> int | None:
    if value is None or value == "" or value == "None":
        return None
    return int(str(value))


class ConsoleModelView(RoleGate, ModelView):
    """A table in the console; read-only roles may list and open rows, nothing more."""

    can_export = False  # personal data leaves the console only through proper channels
    form_converter = ConsoleConverter
    page_size = 25
    # Set per app when the console is mounted.
    console: ClassVar[ConsoleContext]
    # Foreign key columns (also listed in form_columns) edited with a select.
    foreign_key_choices: ClassVar[Mapping[str, ForeignKeyChoice]] = {}

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        """The scaffolded form plus selects for `foreign_key_choices`."""
        form = await super().scaffold_form(rules)
        if not self.foreign_key_choices:
            return form

        def selects() -> dict[str, SelectField]:
            with self.console.session_factory() as session:
                return {
                    name: choice.field(session) for name, choice in self.foreign_key_choices.items()
                }

        return type(form.__name__, (form,), await anyio.to_thread.run_sync(selects))

    def has_permission(self, request: Request, action: str, obj: Any | None = None) -> bool:
        """Writes need write access; reading needs any access."""
        access = self.access_for(request)
        if access is None:
            return False
        return access is Access.write or action in _READ_ACTIONS

    async def list(self, request: Request) -> Pagination:
        """A page of rows, with what the formatters look up fetched in one go."""
        page = await super().list(request)
        await self._remember_lookups(request, page.rows)
        return page

    async def get_object_for_details(self, request: Request) -> Any:
        """One row, with what the formatters look up."""
        row = await super().get_object_for_details(request)
        if row is not None:
            await self._remember_lookups(request, [row])
        return row

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Override to fetch what the formatters show beside the rows (names, counts)."""
        return {}

    async def _remember_lookups(self, request: Request, rows: Sequence[Any]) -> None:
        def load() -> Lookups:
            with self.console.session_factory() as session:
                return self.lookups(session, rows, self.console)

        request.state.console_lookups = await anyio.to_thread.run_sync(load)


def looked_up(request: Request, table: str, key: Any) -> Any:
    """A value `ConsoleModelView.lookups` fetched for this request, or None."""
    tables: Lookups = getattr(request.state, "console_lookups", {})
    return tables.get(table, {}).get(key)
