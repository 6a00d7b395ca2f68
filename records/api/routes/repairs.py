"""Routes for repairs (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/repairs", tags=["repairs"])
