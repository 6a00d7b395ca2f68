"""`python -m voice web`: serve the voice gateway with uvicorn."""

import argparse
import logging
from collections.abc import Sequence

import uvicorn

from voice.web.app import create_app
from voice.web.config import get_web_settings

# Uvicorn refuses WebSocket messages above this outright (closing the connection); frames
# below it but above VOICE_MAX_FRAME_BYTES get a Chinese error and the session goes on.
WS_MAX_BYTES = 16 * 1024 * 1024


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway until interrupted."""
    settings = get_web_settings()
    parser = argparse.ArgumentParser(prog="python -m voice web", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        ws_max_size=WS_MAX_BYTES,
        log_level="info",
        access_log=False,
    )
    return 0
