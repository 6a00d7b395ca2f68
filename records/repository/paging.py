"""One page of a query, and how many rows the whole query has."""

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


def page(
    session: Session, query: Select[T], *, limit: int, offset: int
) -> tuple[Sequence[T], int]:
    """The rows of an ordered query from `offset`, at most `limit`, and the total count."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    # unique(): joined eager loads of collections repeat parent rows.
    rows = session.scalars(query.limit(limit).offset(offset)).unique().all()
    return rows, total or 0
