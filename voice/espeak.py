"""A minimal binding to libespeak-ng's C API (speak_lib.h) for streaming synthesis.

The engine behind `TTS_ENGINE=espeak-ng`, the streaming alternative to the default pyttsx3
engine: pyttsx3's espeak driver renders a whole clause to a WAV file before any of it can be
played, while this calls the same library in synchronous mode with short buffers, so audio
comes out while a sentence is still being synthesised. espeak-ng can be initialised once
per process, so this module owns that and serialises every call on one thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from typing import Final

AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
POS_CHARACTER: Final = 1
CHARS_UTF8: Final = 1
ENDPAUSE: Final = 0x1000
# Return errors instead of calling exit() inside the library.
INITIALIZE_DONT_EXIT: Final = 0x8000
PARAM_RATE: Final = 1
PARAM_VOLUME: Final = 2
PARAM_PITCH: Final = 3
EE_OK: Final = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events): 0 goes on, 1 aborts.
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

ChunkSink = Callable[[bytes], bool]


class EspeakError(RuntimeError):
    """libespeak-ng is missing, failed to start, or refused a voice or text."""


class Espeak:
    """The process-wide espeak-ng instance; every method must run on one thread at a time."""

    _instance: Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self, buffer_ms: int) -> None:
        """Load and initialise libespeak-ng; use `Espeak.get()`."""
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise EspeakError(
                "libespeak-ng not found: install espeak-ng (apt-get install espeak-ng)"
            ) from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, buffer_ms, None, INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError("espeak-ng failed to initialise (is espeak-ng-data installed?)")
        self._lib = lib
        self.sample_rate = int(rate)
        self._sink: ChunkSink | None = None
        # Kept referenced: ctypes frees the trampoline when the Python object goes away.
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None
        self._wpm: int | None = None
        # Held around set_voice/set_rate/synth: the library is one global state machine.
        self.lock = threading.Lock()

    @classmethod
    def get(cls, buffer_ms: int = 60) -> Espeak:
        """The one instance (espeak-ng cannot be initialised twice in a process)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls(buffer_ms)
            return cls._instance

    def _on_audio(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None
    ) -> int:
        if count <= 0 or not wav or self._sink is None:
            return 0
        data = ctypes.string_at(wav, count * 2)
        return 0 if self._sink(data) else 1

    def set_voice(self, voice: str) -> None:
        """Select an espeak-ng voice by name, e.g. "cmn" (Mandarin)."""
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
                raise EspeakError(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices`)")
            self._voice = voice
            self._wpm = None  # a new voice resets the rate

    def set_rate(self, wpm: int) -> None:
        """Speaking rate in words per minute (80-450)."""
        if wpm != self._wpm:
            self._lib.espeak_SetParameter(PARAM_RATE, wpm, 0)
            self._wpm = wpm

    def synth(self, text: str, sink: ChunkSink) -> None:
        """Synthesise text, handing s16le mono chunks at `sample_rate` to sink as they come.

        Blocks until done; sink returning False stops the synthesis early.
        """
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        self._sink = sink
        try:
            status = self._lib.espeak_Synth(
                buffer, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None
            )
        finally:
            self._sink = None
        if status != EE_OK:
            raise EspeakError(f"espeak-ng refused the text (status {status})")
