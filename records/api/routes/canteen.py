"""Routes for canteen (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/canteen", tags=["canteen"])
