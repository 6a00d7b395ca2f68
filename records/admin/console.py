"""The staff console at /admin (being written)."""

from fastapi import FastAPI


def mount_console(app: FastAPI) -> None:
    """Mount the console on `app`."""
