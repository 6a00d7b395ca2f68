"""Engine and session factory: SQLite (WAL) by default, PostgreSQL through DATABASE_URL."""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from records.core.config import Settings
from records.core.crypto import FieldCipher, install_cipher


def make_engine(settings: Settings, **engine_kwargs: Any) -> Engine:
    """Create the engine for `settings` and install the field cipher its column types use."""
    install_cipher(FieldCipher(settings.field_encryption_key, settings.blind_index_key))
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **engine_kwargs)
    engine_kwargs.setdefault("pool_size", 10)
    engine_kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **engine_kwargs)


def _sqlite_engine(url: str, **engine_kwargs: Any) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **engine_kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails with SQLITE_BUSY when
        # another writer commits in between; taking the write lock up front makes
        # concurrent writers queue instead (one-ballot and capacity rules rely on it).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses read them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
