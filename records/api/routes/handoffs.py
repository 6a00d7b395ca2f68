"""Routes for handoffs (being written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/handoffs", tags=["handoffs"])
