"""Engine and session factory: SQLite (WAL) by default, PostgreSQL through DATABASE_URL."""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from records.core.config import Settings
from records.core.crypto import FieldCipher, install_cipher


def make_engine(settings: Settings, **engine_kwargs: Any) -> Engine:
    """The engine writes go through; installs the field cipher the column types use.

    On SQLite it has a single connection: concurrent writers queue for it inside the
    process and wake the moment it is free, instead of polling SQLite's busy handler.
    """
    install_cipher(FieldCipher(settings.field_encryption_key, settings.blind_index_key))
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite"):
        engine_kwargs.setdefault("pool_size", 1)
        engine_kwargs.setdefault("max_overflow", 0)
        engine_kwargs.setdefault("pool_timeout", 30)
        return _sqlite_engine(url, begin="BEGIN IMMEDIATE", **engine_kwargs)
    engine_kwargs.setdefault("pool_size", 10)
    engine_kwargs.setdefault("max_overflow", 20)
    return create_engine(url, pool_pre_ping=True, **engine_kwargs)


def make_read_engine(settings: Settings, write_engine: Engine) -> Engine:
    """The engine read-only requests use: on SQLite, deferred transactions that never wait
    for writers (WAL readers see the last commit); elsewhere the write engine itself."""
    url = settings.sqlalchemy_url()
    if not url.startswith("sqlite"):
        return write_engine
    return _sqlite_engine(url, begin="BEGIN", pool_size=8, max_overflow=8)


def _sqlite_engine(url: str, *, begin: str, **engine_kwargs: Any) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=QueuePool,
        **engine_kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so that the BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that reads and then
        # writes fails with SQLITE_BUSY when another writer commits in between (the
        # one-ballot and capacity rules rely on this).
        connection.exec_driver_sql(begin)

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses read them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
