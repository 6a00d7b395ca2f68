"""Voice notes of the messaging apps through the voice pipeline: audio → text, and text → audio."""

import asyncio
import logging

from channels.audio import ASR_RATE, decode_to_pcm, encode_ogg_opus
from voice.asr import AsrEngine
from voice.config import SpeechSettings
from voice.models import ModelNotFound
from voice.tts import TtsEngine, tts_from_settings

logger = logging.getLogger(__name__)

# Audio is fed to the recogniser in pieces of this many bytes (5 s at 16 kHz): the whole note
# is there already, so pieces only bound the work of one call.
FEED_BYTES = ASR_RATE * 2 * 5
# Synthesised at the recogniser's rate: Opus encodes 16 kHz natively.
TTS_RATE = 16000


class VoiceUnavailable(RuntimeError):
    """No speech recognition model could be loaded; voice notes cannot be transcribed."""


class VoiceNotes:
    """Transcribes voice notes with Vosk and speaks replies as OGG/Opus voice notes.

    The recognition model loads on the first voice note (it takes seconds and memory), so a
    channel that never receives one never pays for it.
    """

    def __init__(
        self,
        settings: SpeechSettings,
        *,
        asr: AsrEngine | None = None,
        tts: TtsEngine | None = None,
    ) -> None:
        self._settings = settings
        self._asr = asr
        self._tts = tts
        self._loading = asyncio.Lock()

    async def _engine(self) -> AsrEngine:
        async with self._loading:
            if self._asr is None:
                try:
                    self._asr = await asyncio.to_thread(AsrEngine.from_settings, self._settings)
                except ModelNotFound as error:
                    logger.error("voice notes cannot be transcribed: %s", error)
                    raise VoiceUnavailable(str(error)) from error
            return self._asr

    async def load(self) -> None:
        """Load the recognition model now rather than on the first voice note."""
        await self._engine()

    async def transcribe(self, audio: bytes, *, max_seconds: float) -> str:
        """The words in a voice note (any FFmpeg-readable format); "" when nothing was heard."""
        pcm = await asyncio.to_thread(
            decode_to_pcm, audio, sample_rate=ASR_RATE, max_seconds=max_seconds
        )
        engine = await self._engine()
        stream = engine.open_stream(sample_rate=ASR_RATE)
        heard: list[str] = []
        try:
            for start in range(0, len(pcm), FEED_BYTES):
                for event in await stream.feed(pcm[start : start + FEED_BYTES]):
                    if event.kind == "final" and event.text:
                        heard.append(event.text)
            last = await stream.finish()
            if last.kind == "final" and last.text:
                heard.append(last.text)
        finally:
            stream.close()
        return " ".join(heard).strip()

    async def speak(self, text: str, *, rate: str = "normal") -> tuple[bytes, int]:
        """`text` spoken as an OGG/Opus voice note, and its length in whole seconds."""
        if self._tts is None:
            self._tts = tts_from_settings(self._settings)
        pcm = bytearray()
        async for chunk in self._tts.synthesize(text, sample_rate=TTS_RATE, rate=rate):
            pcm += chunk
        ogg = await asyncio.to_thread(encode_ogg_opus, bytes(pcm), sample_rate=TTS_RATE)
        seconds = max(1, round(len(pcm) / (2 * TTS_RATE)))
        return ogg, seconds
