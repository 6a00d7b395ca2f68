"""Telegram bridge (python-telegram-bot 22): forwards each update to Rasa, renders the replies.

The bridge keeps no dialogue state: a message goes to Rasa's REST channel as
`telegram:<user id>`, and Rasa's buttons come back as inline keyboards whose callback data is
the button payload. `/start <code>` links the account to a resident with a code staff issued.
Voice notes are transcribed and answered with text plus a voice note.
"""

import datetime as dt
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatAction, MessageLimit
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from channels.audio import AudioError
from channels.config import ChannelSettings
from channels.rasa_client import BotReply, RasaClient
from channels.records_api import RecordsApi, RecordsRefused, RecordsUnavailable
from channels.turns import (
    EMPTY_CHOICE_TEXT,
    TOO_LONG_TEXT,
    ask_bot,
    never_silent,
    speech_rate,
    spoken_text,
)
from channels.voice_notes import VoiceNotes, VoiceUnavailable

logger = logging.getLogger(__name__)

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
Context = ContextTypes.DEFAULT_TYPE

INPUT_CHANNEL = "telegram"
# Telegram's limit on callback data; longer payloads fall back to the button's title.
MAX_CALLBACK_BYTES = 64
# The updates the bot asks Telegram for (webhook registration and polling).
ALLOWED_UPDATES = ["message", "callback_query"]
CODE = re.compile(r"^\d{4,12}$")

LINKED_TEXT = "绑定成功！{name}，您好。以后在这里就能直接办事了。"
BAD_CODE_TEXT = "验证码应该是工作人员给您的几位数字，请这样发送：/start 123456"
LINK_DOWN_TEXT = "抱歉，现在暂时无法绑定，请稍后再试。"
UNSUPPORTED_TEXT = "目前我只能看懂文字和语音消息，请打字或者发语音告诉我。"
ERROR_TEXT = "抱歉，刚才出了点问题，请再说一遍。"
NOT_HEARD_TEXT = "抱歉，这段语音我没听清，请再说一遍，或者打字告诉我。"
VOICE_TOO_LONG_TEXT = "语音太长了，请说短一点（{limit}秒以内）。"
VOICE_OFF_TEXT = "暂时听不了语音，请打字告诉我。"
HEARD_TEXT = "🎤 我听到的是：{text}"
CHOSEN_TEXT = "{text}\n\n👉 {title}"
PHOTO_NEEDS_WORDS_TEXT = "收到照片了。请在照片下面写一句话（比如“做完了”），再发一次。"


def use_timedelta_periods() -> None:
    """Opt in to the library's timedelta durations (else it warns on every duration it reads)."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")


def seconds(value: float | dt.timedelta | None) -> float:
    """A duration the library gives as seconds or as a timedelta, in seconds."""
    if value is None:
        return 0.0
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def sender_of(user_id: int) -> str:
    """The Rasa sender id (and records identity) of a Telegram user."""
    return f"telegram:{user_id}"


def keyboard(buttons: Sequence[dict[str, str]]) -> InlineKeyboardMarkup | None:
    """Rasa buttons as an inline keyboard, one button a row; the payload is the callback data."""
    rows = []
    for button in buttons:
        title = button.get("title") or button.get("payload") or ""
        data = button.get("payload") or title
        if len(data.encode()) > MAX_CALLBACK_BYTES:
            # Too long for Telegram: the title is sent instead, as if typed.
            logger.warning("button payload over %d bytes; its title is sent", MAX_CALLBACK_BYTES)
            data = title.encode()[:MAX_CALLBACK_BYTES].decode(errors="ignore")
        if title and data:
            rows.append([InlineKeyboardButton(title, callback_data=data)])
    return InlineKeyboardMarkup(rows) if rows else None


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Text cut into pieces Telegram accepts, at line ends where possible."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*pieces, text] if text else pieces


async def send_replies(bot: Any, chat_id: int, replies: Sequence[BotReply]) -> list[Message]:
    """Send the bot's replies, each with its buttons as an inline keyboard."""
    sent: list[Message] = []
    for reply in replies:
        markup = keyboard(reply.buttons)
        text = reply.text or (EMPTY_CHOICE_TEXT if markup else "")
        pieces = split_text(text)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            sent.append(
                await bot.send_message(chat_id, piece, reply_markup=markup if last else None)
            )
    return sent


class TelegramBridge:
    """The handlers of the bot and what they share (Rasa, records, voice notes)."""

    def __init__(
        self,
        settings: ChannelSettings,
        *,
        rasa: RasaClient,
        records: RecordsApi | None,
        voice: VoiceNotes | None,
    ) -> None:
        self.settings = settings
        self.rasa = rasa
        self.records = records
        self.voice = voice

    def install(self, app: TelegramApp) -> None:
        """Register the handlers: commands, text, voice, buttons, then everything else."""
        # New private messages only: an edit of a message already answered is not a new turn.
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler("start", self.on_start, filters=private))
        app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(private & (filters.VOICE | filters.AUDIO), self.on_voice))
        app.add_handler(MessageHandler(private & filters.PHOTO, self.on_photo))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(TypeHandler(Update, self.on_other))
        app.add_error_handler(self.on_error)

    async def _turn(
        self,
        context: Context,
        chat_id: int,
        user_id: int,
        text: str,
        modality: str,
        **metadata: str,
    ) -> list[BotReply]:
        await self._action(context, chat_id, ChatAction.TYPING)
        replies = await ask_bot(
            self.rasa,
            sender_of(user_id),
            text,
            input_channel=INPUT_CHANNEL,
            metadata={"modality": modality, **metadata},
        )
        replies = never_silent(replies, INPUT_CHANNEL)
        await send_replies(context.bot, chat_id, replies)
        return replies

    async def _action(self, context: Context, chat_id: int, action: str) -> None:
        try:
            await context.bot.send_chat_action(chat_id, action)
        except TelegramError as error:  # only a courtesy: never fail the turn for it
            logger.info("chat action not shown: %s", error)

    async def on_start(self, update: Update, context: Context) -> None:
        """`/start`: the bot speaks first; `/start <code>` first links the account."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        args = context.args or []
        if args:
            code = args[0].strip()
            if not CODE.match(code) or len(args) > 1:
                await message.reply_text(BAD_CODE_TEXT)
                return
            if not await self._link(message, user.id, code):
                return
            # Start a fresh session so the bot looks up who this is now.
            await ask_bot(self.rasa, sender_of(user.id), "/session_start",
                          input_channel=INPUT_CHANNEL)
        await self._turn(context, message.chat_id, user.id, "/greet", "command")

    async def _link(self, message: Message, user_id: int, code: str) -> bool:
        if self.records is None:
            logger.error("/start with a code, but SERVICE_TOKEN is not set: cannot link")
            await message.reply_text(LINK_DOWN_TEXT)
            return False
        try:
            found = await self.records.verify_identity(sender_of(user_id), code)
        except RecordsRefused as refused:
            logger.info("telegram link refused (%s)", refused.status)
            await message.reply_text(refused.detail)
            return False
        except RecordsUnavailable as error:
            logger.warning("telegram link failed: %s", error)
            await message.reply_text(LINK_DOWN_TEXT)
            return False
        name = str((found.get("resident") or {}).get("name") or "")
        await message.reply_text(LINKED_TEXT.format(name=name or "您"))
        return True

    async def on_text(self, update: Update, context: Context) -> None:
        """A typed message: forwarded to the bot as it is."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        limit = self.settings.max_text_chars
        if len(message.text) > limit:
            logger.warning("telegram message of %d characters refused", len(message.text))
            await message.reply_text(TOO_LONG_TEXT.format(limit=limit))
            return
        await self._turn(context, message.chat_id, user.id, message.text, "text")

    async def on_voice(self, update: Update, context: Context) -> None:
        """A voice note: transcribed, sent to the bot, answered with text and a voice note."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        note = message.voice or message.audio
        if note is None:
            return
        if self.voice is None:
            await message.reply_text(VOICE_OFF_TEXT)
            return
        limit_s = self.settings.telegram_max_voice_s
        too_big = (note.file_size or 0) > self.settings.telegram_max_voice_bytes
        duration = seconds(note.duration)
        if duration > limit_s or too_big:
            logger.warning("telegram voice note refused: %.0f s, %s bytes",
                           duration, note.file_size)
            await message.reply_text(VOICE_TOO_LONG_TEXT.format(limit=limit_s))
            return
        await self._action(context, message.chat_id, ChatAction.RECORD_VOICE)
        file = await context.bot.get_file(note.file_id)
        audio = bytes(await file.download_as_bytearray())
        try:
            heard = await self.voice.transcribe(audio, max_seconds=limit_s)
        except VoiceUnavailable:
            await message.reply_text(VOICE_OFF_TEXT)
            return
        except AudioError as error:
            logger.warning("telegram voice note not decodable: %s", error)
            heard = ""
        if not heard:
            await message.reply_text(NOT_HEARD_TEXT)
            return
        await message.reply_text(HEARD_TEXT.format(text=heard))
        replies = await self._turn(context, message.chat_id, user.id, heard, "voice")
        speech = spoken_text(replies)
        if not speech:
            return
        try:
            ogg, length = await self.voice.speak(speech, rate=speech_rate(replies))
        except Exception:  # the text is already there: a missing voice reply is not fatal
            logger.exception("voice reply could not be synthesised")
            return
        await context.bot.send_voice(message.chat_id, voice=ogg, duration=length)

    async def on_photo(self, update: Update, context: Context) -> None:
        """A photo (e.g. a finished task): its caption goes to the bot with the photo's file id."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not message.photo:
            return
        caption = (message.caption or "").strip()
        if not caption:
            await message.reply_text(PHOTO_NEEDS_WORDS_TEXT)
            return
        if len(caption) > self.settings.max_text_chars:
            await message.reply_text(TOO_LONG_TEXT.format(limit=self.settings.max_text_chars))
            return
        photo = f"telegram:{message.photo[-1].file_id}"  # the largest size Telegram made
        await self._turn(context, message.chat_id, user.id, caption, "photo", photo=photo)

    async def on_button(self, update: Update, context: Context) -> None:
        """A tapped inline button: its payload goes to the bot; the keyboard is taken away."""
        query = update.callback_query
        if query is None:
            return
        await query.answer()
        payload = query.data or ""
        if not payload:
            logger.warning("telegram callback without data ignored")
            return
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        original = query.message if isinstance(query.message, Message) else None
        if original is not None:
            await self._mark_chosen(original, payload)
        await self._turn(context, chat_id, query.from_user.id, payload, "button")

    async def _mark_chosen(self, message: Message, payload: str) -> None:
        """Show the choice under the question and remove the buttons, so it is tapped once."""
        title = payload
        markup = message.reply_markup
        for row in markup.inline_keyboard if markup else ():
            for button in row:
                if button.callback_data == payload:
                    title = button.text
        try:
            if message.text:
                await message.edit_text(CHOSEN_TEXT.format(text=message.text, title=title))
            else:
                await message.edit_reply_markup(reply_markup=None)
        except TelegramError as error:  # e.g. too old to edit: the choice still counts
            logger.info("could not mark the chosen button: %s", error)

    async def on_other(self, update: Update, context: Context) -> None:
        """Anything else: a hint for unsupported messages, a log line for other update kinds."""
        message = update.message
        if message is not None and message.chat.type == "private":
            logger.warning("telegram update %s: unsupported message content ignored",
                           update.update_id)
            await message.reply_text(UNSUPPORTED_TEXT)
            return
        kinds = [k for k, v in update.to_dict().items() if k != "update_id" and v]
        logger.warning("telegram update %s ignored: unsupported kind %s",
                       update.update_id, ",".join(kinds) or "unknown")

    async def on_error(self, update: object, context: Context) -> None:
        """Log a failed update and tell the user, so a message never vanishes in silence."""
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("telegram update %s failed", update_id, exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            try:
                await context.bot.send_message(update.effective_chat.id, ERROR_TEXT)
            except TelegramError:
                logger.warning("could not tell chat about the failure of update %s", update_id)


def build_application(
    settings: ChannelSettings, bridge: TelegramBridge, *, polling: bool
) -> TelegramApp:
    """The bot application; without an updater in webhook mode (our app receives updates)."""
    if settings.telegram_token is None:
        raise ValueError("TELEGRAM_TOKEN is not set")
    use_timedelta_periods()
    builder = (
        Application.builder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        # Updates of different people run side by side; a slow turn holds up nobody else.
        .concurrent_updates(16)
    )
    if not polling:
        builder = builder.updater(None)
    app: TelegramApp = builder.build()
    bridge.install(app)
    return app
