"""Routes for alerts (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/alerts", tags=["alerts"])
