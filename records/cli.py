"""`python -m records migrate|demo|serve|jobs`: operate the records backend."""

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from records.core.config import ROOT, Settings, get_settings


def alembic_config(settings: Settings) -> "object":
    """The Alembic configuration for this package's migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url().replace("%", "%%"))
    config.attributes["settings"] = settings
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """Upgrade the database schema."""
    from alembic import command

    command.upgrade(alembic_config(settings), revision)  # type: ignore[arg-type]


def downgrade(settings: Settings, revision: str) -> None:
    """Downgrade the database schema."""
    from alembic import command

    command.downgrade(alembic_config(settings), revision)  # type: ignore[arg-type]


def demo(settings: Settings) -> None:
    """Load the demo community once (does nothing if it is there)."""
    from records.core.db import make_engine, make_session_factory
    from records.demo import load_demo

    engine = make_engine(settings)
    with make_session_factory(engine)() as session:
        loaded = load_demo(session=session, settings=settings)
    engine.dispose()
    print("demo data loaded" if loaded else "demo data already present")


def serve(settings: Settings) -> None:
    """Run the API with uvicorn."""
    import uvicorn

    from records.core.logging import install_redaction

    logging.basicConfig(level=logging.INFO)
    install_redaction()
    uvicorn.run(
        "records.main:create_app",
        factory=True,
        host=settings.records_host,
        port=settings.records_port,
        log_level="info",
        proxy_headers=True,
        workers=settings.records_workers,
        # Access lines cost CPU on every request; they are opt-in (RECORDS_ACCESS_LOG=true).
        access_log=settings.records_access_log,
    )


def jobs(settings: Settings) -> None:
    """Run the time-driven rules once (cron-friendly; `serve` also runs them periodically)."""
    from records.core.clock import SystemClock
    from records.core.db import make_engine, make_session_factory
    from records.repository.jobs import run_due_jobs

    engine = make_engine(settings)
    with make_session_factory(engine)() as session:
        print(run_due_jobs(session=session, settings=settings, now=SystemClock().now()))
    engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(prog="python -m records", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="upgrade the database schema to the newest revision")
    down = sub.add_parser("downgrade", help="downgrade the schema to a revision")
    down.add_argument("revision")
    sub.add_parser("demo", help="load demo data once")
    sub.add_parser("serve", help="run the HTTP API")
    sub.add_parser("jobs", help="run escalations and other due rules once")
    args = parser.parse_args(argv)
    settings = get_settings()
    (ROOT / "var").mkdir(exist_ok=True)
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "downgrade":
        downgrade(settings, args.revision)
    elif args.command == "demo":
        demo(settings)
    elif args.command == "serve":
        serve(settings)
    else:
        jobs(settings)
