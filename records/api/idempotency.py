"""Idempotency-Key handling: a retried create returns the first result, never a duplicate."""

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.api.deps import PrincipalDep, SessionDep
from records.core.crypto import current_cipher
from records.core.problems import Problem
from records.models import IdempotencyRecord

KEY_MISMATCH = Problem(
    422, "idempotency-key-reused", "这个请求编号已用于另一份不同的内容，请换一个编号后重试。"
)


class Idempotency:
    """Runs a create at most once per (caller, Idempotency-Key), in the create's transaction."""

    def __init__(self, session: Session, principal: str, key: str | None) -> None:
        self.session = session
        self.principal = principal
        self.key = key

    def run(
        self,
        request_body: BaseModel | dict[str, Any] | None,
        create: Callable[[], BaseModel],
        *,
        status_code: int = 201,
    ) -> JSONResponse:
        """Replay the stored result for a known key, or create, store and commit."""
        fingerprint = _fingerprint(request_body)
        if self.key is not None and (stored := self._stored(fingerprint)) is not None:
            return stored
        body = create().model_dump(mode="json")
        if self.key is not None:
            self.session.add(
                IdempotencyRecord(
                    principal=self.principal,
                    key=self.key,
                    fingerprint=fingerprint,
                    status_code=status_code,
                    body=body,
                )
            )
        try:
            self.session.commit()
        except IntegrityError:
            # A concurrent retry with the same key committed first: return its result.
            self.session.rollback()
            stored = self._stored(fingerprint) if self.key is not None else None
            if stored is None:
                raise
            return stored
        return JSONResponse(body, status_code=status_code)

    def _stored(self, fingerprint: str) -> JSONResponse | None:
        record = self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.principal == self.principal,
                IdempotencyRecord.key == self.key,
            )
        )
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise KEY_MISMATCH
        return JSONResponse(
            record.body, status_code=record.status_code, headers={"Idempotent-Replayed": "true"}
        )


def _fingerprint(body: BaseModel | dict[str, Any] | None) -> str:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    # Keyed, because bodies may hold phone identities that a plain hash would let one guess.
    return current_cipher().blind_index(canonical)


def get_idempotency(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="retry-safe key for creates")
    ] = None,
) -> Idempotency:
    """The idempotency helper for this request."""
    return Idempotency(session, principal.name, idempotency_key)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
