"""PCM helpers: s16le mono bytes <-> numpy, streaming resampling (soxr), levels, WAV files."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

Samples = npt.NDArray[np.int16]

# Sample rates channels use: 8 kHz telephone, 16 kHz web and ASR, 22.05/24/48 kHz synthesis.
MIN_RATE: Final = 8000
MAX_RATE: Final = 48000


class AudioFormatError(ValueError):
    """PCM that is not s16le mono at a supported rate."""


def check_rate(sample_rate: int) -> int:
    """The rate itself when it is one we handle, else AudioFormatError."""
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise AudioFormatError(f"sample rate {sample_rate} Hz outside {MIN_RATE}-{MAX_RATE} Hz")
    return sample_rate


def to_samples(pcm: bytes) -> Samples:
    """s16le bytes as an int16 array (a copy-free view)."""
    if len(pcm) % 2:
        raise AudioFormatError(f"s16le PCM must have an even byte count, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)


def to_pcm(samples: npt.NDArray[np.generic]) -> bytes:
    """An int16 (or float in [-1, 1]) array as s16le bytes."""
    if samples.dtype.kind == "f":
        scaled = np.asarray(samples, dtype=np.float64) * 32767.0
        return np.clip(np.rint(scaled), -32768, 32767).astype("<i2").tobytes()
    return np.asarray(samples, dtype="<i2").tobytes()


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample a whole s16le buffer (soxr, high quality)."""
    if src_rate == dst_rate:
        return pcm
    out = soxr.resample(to_samples(pcm), src_rate, dst_rate, quality="HQ")
    return to_pcm(np.asarray(out))


class StreamResampler:
    """Resamples a stream chunk by chunk without clicks at chunk borders (soxr.ResampleStream)."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        """A resampler from src_rate to dst_rate; a pass-through when they are equal."""
        self.src_rate = check_rate(src_rate)
        self.dst_rate = dst_rate
        self._stream = (
            None
            if src_rate == dst_rate
            else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality="HQ")
        )

    def process(self, samples: Samples, *, last: bool = False) -> Samples:
        """Resample the next chunk; `last=True` flushes what the filter still holds."""
        if self._stream is None:
            return samples
        out = self._stream.resample_chunk(samples, last=last)
        return np.asarray(out, dtype=np.int16)


def dbfs(samples: Samples) -> float:
    """RMS level in dB relative to full scale; -100 for digital silence."""
    if samples.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return -100.0 if rms < 1e-3 else 20.0 * float(np.log10(rms / 32768.0))


def duration_s(pcm: bytes, sample_rate: int) -> float:
    """Seconds of s16le mono audio."""
    return len(pcm) / 2 / sample_rate


def read_wav(source: Path | bytes) -> tuple[bytes, int]:
    """A mono 16-bit WAV file (path or bytes) as (pcm, sample_rate)."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
    with handle, wave.open(handle, "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise AudioFormatError("WAV must be mono 16-bit PCM")
        return wav.readframes(wav.getnframes()), wav.getframerate()


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """s16le mono PCM wrapped in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()
