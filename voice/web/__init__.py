"""The voice gateway: a FastAPI app serving the voice page and its WebSocket."""
