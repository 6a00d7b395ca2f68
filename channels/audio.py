"""Voice-note audio with PyAV (FFmpeg): decode OGG/Opus or AMR to PCM, encode PCM to OGG/Opus."""

import io
from fractions import Fraction

import av
import av.audio.stream
import av.error
import numpy as np

ASR_RATE = 16000
# Sample rates libopus encodes natively; others are resampled to 48 kHz first.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# AMR-NB is narrow-band speech: 8 kHz mono.
AMR_RATE = 8000


class AudioError(ValueError):
    """The bytes are not audio FFmpeg can decode, or the audio is longer than allowed."""


def decode_to_pcm(data: bytes, *, sample_rate: int = ASR_RATE, max_seconds: float = 300.0) -> bytes:
    """Decode any FFmpeg-readable audio file (OGG/Opus, AMR, WAV…) to s16le mono PCM."""
    if not data:
        raise AudioError("empty audio")
    limit = int(max_seconds * sample_rate) * 2
    out = bytearray()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
            for frame in container.decode(container.streams.audio[0]):
                for chunk in resampler.resample(frame):
                    out += _frame_bytes(chunk)
                if len(out) > limit:
                    raise AudioError(f"audio longer than {max_seconds:.0f} s")
            for chunk in resampler.resample(None):
                out += _frame_bytes(chunk)
    except av.error.FFmpegError as error:
        raise AudioError(f"undecodable audio: {error}") from error
    return bytes(out[:limit])


def _frame_bytes(frame: av.AudioFrame) -> bytes:
    # A plane may be padded beyond its samples: keep only the samples (2 bytes each, mono).
    return bytes(frame.planes[0])[: frame.samples * 2]


def encode_ogg_opus(pcm: bytes, *, sample_rate: int, bit_rate: int = 24000) -> bytes:
    """Encode s16le mono PCM as an OGG/Opus voice note (what Telegram plays as a voice message)."""
    rate = sample_rate if sample_rate in OPUS_RATES else 48000
    return _encode(pcm, sample_rate=sample_rate, container="ogg", codec="libopus", rate=rate,
                   bit_rate=bit_rate)


def encode_amr(pcm: bytes, *, sample_rate: int) -> bytes:
    """Encode s16le mono PCM as AMR-NB (the format WeChat voice messages use)."""
    return _encode(pcm, sample_rate=sample_rate, container="amr", codec="libopencore_amrnb",
                   rate=AMR_RATE, bit_rate=12200)


def _encode(
    pcm: bytes, *, sample_rate: int, container: str, codec: str, rate: int, bit_rate: int
) -> bytes:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format=container) as output:
            stream = output.add_stream(codec, rate=rate)
            if not isinstance(stream, av.audio.stream.AudioStream):
                raise AudioError(f"{codec} is not an audio codec")
            stream.layout = "mono"
            stream.bit_rate = bit_rate
            resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
            frame = av.AudioFrame.from_ndarray(
                samples.reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = sample_rate
            frame.time_base = Fraction(1, sample_rate)
            frame.pts = 0
            for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
                for packet in stream.encode(chunk):
                    output.mux(packet)
            for packet in stream.encode(None):
                output.mux(packet)
    except av.error.FFmpegError as error:
        raise AudioError(f"could not encode audio: {error}") from error
    return buffer.getvalue()
