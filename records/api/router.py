"""All `/api/v1` routes."""

from fastapi import APIRouter

from records.api.routes import (
    alerts,
    auth,
    canteen,
    community,
    handoffs,
    identities,
    leaders,
    notifications,
    proposals,
    repairs,
    residents,
    volunteers,
    votes,
)

api_router = APIRouter(prefix="/api/v1")
for module in (
    auth,
    community,
    residents,
    identities,
    repairs,
    canteen,
    proposals,
    votes,
    volunteers,
    alerts,
    handoffs,
    leaders,
    notifications,
):
    api_router.include_router(module.router)
