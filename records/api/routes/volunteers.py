"""Routes for volunteers (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/volunteers", tags=["volunteers"])
