"""Routes for votes (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/votes", tags=["votes"])
