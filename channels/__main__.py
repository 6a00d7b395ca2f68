"""`python -m channels serve | telegram-polling | notify [--once]`."""

import argparse
import asyncio
import logging
import signal
import sys

import uvicorn
from telegram import Bot

from channels.app import create_app, shared_clients, wechat_api
from channels.config import ChannelSettings, get_channel_settings
from channels.notify import NotifyWorker, build_senders
from channels.records_api import RecordsApi
from channels.telegram import TelegramBridge, build_application, use_timedelta_periods
from channels.telegram_webhook import run_polling

logger = logging.getLogger("channels")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def polling_main(settings: ChannelSettings) -> int:
    """Telegram with getUpdates until a signal arrives."""
    if not settings.telegram_enabled():
        logger.error("TELEGRAM_TOKEN is not set")
        return 2
    stop = asyncio.Event()
    _stop_on_signals(stop)
    shared = shared_clients(settings)
    bridge = TelegramBridge(settings, rasa=shared.rasa, records=shared.records, voice=shared.voice)
    try:
        await run_polling(build_application(settings, bridge, polling=True), stop)
    finally:
        await shared.aclose()
    return 0


async def notify_main(settings: ChannelSettings, *, once: bool) -> int:
    """The outbox worker until a signal arrives (or one round with `once`)."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    if not token:
        logger.error("SERVICE_TOKEN is not set: the worker cannot reach the outbox")
        return 2
    use_timedelta_periods()
    records = RecordsApi(settings.records_url, token)
    bot = None
    if settings.telegram_enabled() and settings.telegram_token is not None:
        bot = Bot(
            settings.telegram_token.get_secret_value(),
            base_url=settings.telegram_base_url,
            base_file_url=settings.telegram_base_file_url,
        )
        await bot.initialize()
    api = wechat_api(settings)
    worker = NotifyWorker(settings, records, build_senders(settings, bot=bot, wechat=api))
    try:
        if once:
            await worker.run_once()
        else:
            stop = asyncio.Event()
            _stop_on_signals(stop)
            await worker.run(stop)
    finally:
        if bot is not None:
            await bot.shutdown()
        if api is not None:
            api.close()
        await records.aclose()
    logger.info("notify worker: %s", worker.stats)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="python -m channels", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="webhooks app (Telegram webhook, WeChat) on CHANNELS_PORT")
    commands.add_parser("telegram-polling", help="Telegram with getUpdates (no public URL)")
    notify = commands.add_parser("notify", help="deliver the records outbox")
    notify.add_argument("--once", action="store_true", help="one round, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_channel_settings()
    if args.command == "serve":
        use_timedelta_periods()
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    access_log=False)
        return 0
    if args.command == "telegram-polling":
        return asyncio.run(polling_main(settings))
    return asyncio.run(notify_main(settings, once=args.once))


if __name__ == "__main__":
    sys.exit(main())
