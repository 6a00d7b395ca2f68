"""Routes for proposals (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/proposals", tags=["proposals"])
