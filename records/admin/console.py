"""The staff console at /admin: sqladmin on the app's own database, sessions and audit."""

from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI
from sqladmin import Admin, BaseView, ModelView
from sqladmin._menu import CategoryMenu, ViewMenu
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import URL, FormData
from starlette.middleware import Middleware
from starlette.requests import Request

from records.admin.auth import StaffAuthBackend, current_staff
from records.admin.base import ConsoleContext, ConsoleConverter
from records.admin.canteen_day import CanteenDayPage
from records.admin.csrf import SameOriginMiddleware
from records.admin.i18n import install_chinese, with_english_save_button
from records.admin.labels import label, type_formatters
from records.admin.triage import TriagePage
from records.admin.views import MODEL_VIEWS

TITLE = "邻里 社区工作台"
TEMPLATES = Path(__file__).parent / "templates"
PAGES: list[type[BaseView]] = [TriagePage, CanteenDayPage]


class RoleAwareCategory(CategoryMenu):
    """A menu group shown only when one of its entries is open to the signed-in role."""

    def is_visible(self, request: Request) -> bool:
        """Visible when some child is."""
        return any(c.is_visible(request) and c.is_accessible(request) for c in self.children)


class ConsoleAdmin(Admin):
    """sqladmin with menu groups that hide when empty and Chinese save buttons."""

    def _build_menu(self, view: ModelView | BaseView) -> None:
        if not view.category:
            super()._build_menu(view)
            return
        menu = RoleAwareCategory(name=view.category, icon=view.category_icon)
        menu.add_child(ViewMenu(view=view, name=view.name, icon=view.icon))
        self._menu.add(menu)

    @staticmethod
    def get_save_redirect_url(
        request: Request, form: FormData, model_view: ModelView, obj: Any
    ) -> str | URL:
        """Where to go after saving, knowing the buttons are labelled in Chinese."""
        return Admin.get_save_redirect_url(
            request=request, form=with_english_save_button(form), model_view=model_view, obj=obj
        )


def is_chinese(text: object) -> bool:
    """Whether an error detail was written for staff (sqladmin's own are English)."""
    return isinstance(text, str) and any("\u4e00" <= ch <= "\u9fff" for ch in text)


def console_sessions(app_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """A factory making the app's own kind of session (so the audit events fire).

    A copy, because sqladmin reconfigures the factory it is given (autoflush off), which
    must not change the sessions the API uses.
    """
    session_class = type("ConsoleSession", (app_sessions.class_,), {"commit": _flush_then_commit})
    return sessionmaker(class_=session_class, **app_sessions.kw)


def _flush_then_commit(session: Session) -> None:
    # records.core.audit queues entries in after_flush and writes them in before_commit,
    # which runs before commit()'s own flush: changes only flushed by commit() (all of
    # sqladmin's saves) would miss the audit trail without this flush.
    session.flush()
    Session.commit(session)


def mount_console(app: FastAPI) -> None:
    """Mount the console on `app`."""
    sessions = console_sessions(app.state.session_factory)
    context = ConsoleContext(
        settings=app.state.settings, clock=app.state.clock, session_factory=sessions
    )
    admin = ConsoleAdmin(
        app,
        engine=app.state.engine,
        session_maker=console_sessions(app.state.session_factory),
        title=TITLE,
        templates_dir=str(TEMPLATES),
        authentication_backend=StaffAuthBackend(sessions),
        middlewares=[Middleware(SameOriginMiddleware)],
    )
    admin.admin.state.console = context
    install_chinese(admin.templates.env)
    admin.templates.env.globals["zh_label"] = label
    admin.templates.env.globals["current_staff"] = current_staff
    admin.templates.env.globals["is_chinese"] = is_chinese
    for view in MODEL_VIEWS:
        admin.add_view(_for_this_app(view, context))
    for page in PAGES:
        admin.add_view(_for_this_app(page, context))


V = TypeVar("V", bound=BaseView)


def _for_this_app(view: type[V], context: ConsoleContext) -> type[V]:
    # sqladmin keeps an app's sessions and templates on the view classes; a subclass per
    # app keeps two apps in one process (tests) from sharing them.
    converter = type("Converter", (ConsoleConverter,), {"timezone": context.timezone})
    attributes: dict[str, Any] = {
        "console": context,
        "column_type_formatters": type_formatters(context.timezone),
        "form_converter": converter,
    }
    return type(view.__name__, (view,), attributes)
