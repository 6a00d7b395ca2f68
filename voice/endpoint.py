"""Speech timing from audio energy: when speech starts, and how long the trailing silence is.

Vosk 0.3.45 has no endpointer API (SetEndpointerDelays/SetEndpointerMode came later) and its
built-in Kaldi rules end an utterance after 0.5 s of silence, too early for elderly speakers.
Its partial results also lag the audio by up to a second, too late for barge-in. So the
recogniser says *what* was said and this detector says *when*: 20 ms frames are voiced when
their level is well above an adaptive noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from voice.audio import Samples, dbfs

FRAME_S: Final = 0.02


@dataclass
class VadConfig:
    """Thresholds of the energy detector."""

    # A frame is voiced this far above the noise floor ...
    margin_db: float = 12.0
    # ... and above this absolute level (quiet rooms, digital silence).
    min_level_db: float = -50.0
    # Looser thresholds for "could be speech": such audio is decoded, clear silence is not.
    maybe_margin_db: float = 6.0
    maybe_min_level_db: float = -56.0
    # Voiced time within `onset_window_s` before speech counts as started (coughs, clicks).
    onset_voiced_s: float = 0.12
    onset_window_s: float = 0.3
    # How fast the floor follows rising noise, dB per frame: quickly in non-voiced frames,
    # slowly in voiced ones so that a steady new noise (a fan) stops counting as speech.
    floor_rise_db: float = 0.5
    floor_rise_voiced_db: float = 0.02


class EnergyVad:
    """Frame-level voice activity from energy above an adaptive noise floor."""

    def __init__(self, sample_rate: int, config: VadConfig | None = None) -> None:
        """A detector for s16le mono audio at sample_rate."""
        self.config = config or VadConfig()
        self.frame = int(sample_rate * FRAME_S)
        self.floor_db = -70.0
        self._tail = np.zeros(0, dtype=np.int16)
        self._recent: list[bool] = []
        self.frames_seen = 0
        self.last_voiced_frame = -1
        self.loudest_db = -100.0  # of the frames in the latest process() call

    @property
    def time_s(self) -> float:
        """Seconds of audio seen so far."""
        return self.frames_seen * FRAME_S

    @property
    def last_voiced_s(self) -> float | None:
        """End time of the latest voiced frame, or None before any."""
        if self.last_voiced_frame < 0:
            return None
        return (self.last_voiced_frame + 1) * FRAME_S

    def onset(self) -> bool:
        """True when enough of the recent frames were voiced to call it speech."""
        cfg = self.config
        window = max(1, round(cfg.onset_window_s / FRAME_S))
        needed = max(1, round(cfg.onset_voiced_s / FRAME_S))
        return sum(self._recent[-window:]) >= needed

    def process(self, samples: Samples) -> None:
        """Consume audio; whole frames update the floor and the voiced history."""
        data = np.concatenate([self._tail, samples]) if self._tail.size else samples
        whole = (data.size // self.frame) * self.frame
        cfg = self.config
        self.loudest_db = -100.0
        for start in range(0, whole, self.frame):
            level = dbfs(data[start : start + self.frame])
            if level > max(self.floor_db + cfg.maybe_margin_db, cfg.maybe_min_level_db):
                self.loudest_db = max(self.loudest_db, level)
            voiced = level > max(self.floor_db + cfg.margin_db, cfg.min_level_db)
            if level < self.floor_db:
                self.floor_db = max(level, -90.0)
            else:
                rise = cfg.floor_rise_voiced_db if voiced else cfg.floor_rise_db
                self.floor_db = min(self.floor_db + rise, level)
            self._recent.append(voiced)
            if voiced:
                self.last_voiced_frame = self.frames_seen
            self.frames_seen += 1
        del self._recent[:-64]
        self._tail = data[whole:].copy()

    def maybe_speech(self) -> bool:
        """True when the latest audio held a frame loud enough to be (quiet) speech."""
        return self.loudest_db > -100.0

    def clear_speech(self) -> None:
        """Forget voiced history (new turn); the noise floor is kept."""
        self._recent.clear()
        self.last_voiced_frame = -1
