"""The records backend application factory."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from records.api.router import api_router
from records.api.routes import health
from records.core.audit import install_audit
from records.core.clock import Clock, SystemClock
from records.core.config import Settings, get_settings
from records.core.db import make_engine, make_read_engine, make_session_factory
from records.core.problems import install_problem_handlers

log = logging.getLogger("records")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    background_jobs: bool = True,
) -> FastAPI:
    """Build the app: API, Open311, staff console, and the periodic escalation job."""
    settings = settings or get_settings()
    engine = make_engine(settings)
    read_engine = make_read_engine(settings, engine)
    session_factory = make_session_factory(engine)
    read_session_factory = make_session_factory(read_engine)
    install_audit(session_factory)

    app = FastAPI(
        title="Linli records API",
        version="1.0",
        description="邻里 records backend: the single source of truth behind every channel.",
        lifespan=_lifespan if background_jobs else None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.read_engine = read_engine
    app.state.read_session_factory = read_session_factory
    app.state.clock = clock or SystemClock()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="linli_session",
        same_site="strict",
        https_only=settings.linli_env == "production",
        max_age=12 * 3600,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(api_router)
    _mount_extras(app)
    return app


def _mount_extras(app: FastAPI) -> None:
    """Open311 and the console live in their own modules; import them lazily."""
    from records.admin.console import mount_console
    from records.api.open311 import router as open311_router

    app.include_router(open311_router)
    mount_console(app)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_periodic(app, _run_jobs))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        app.state.engine.dispose()
        app.state.read_engine.dispose()


async def _periodic(app: FastAPI, job: Callable[[FastAPI], None]) -> None:
    interval = app.state.settings.escalation_interval_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(job, app)
        except Exception:  # a failed run must not stop later runs
            log.exception("periodic job failed")


def _run_jobs(app: FastAPI) -> None:
    from records.repository.jobs import run_due_jobs

    with app.state.session_factory() as session:
        run_due_jobs(session=session, settings=app.state.settings, now=app.state.clock.now())
