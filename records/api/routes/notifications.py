"""Routes for notifications (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/notifications", tags=["notifications"])
