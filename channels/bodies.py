"""Request bodies read with a size limit, so an oversized webhook call cannot exhaust memory."""

from starlette.requests import Request


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it is (or says it is) longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
