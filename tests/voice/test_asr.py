"""Streaming recognition with real Vosk (Korean model) on Korean speech from espeak-ng.

Times asserted here are audio times (seconds of audio fed), which the audio fixes; nothing
depends on how fast this machine decodes.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.voice.conftest import SpeechMaker, frames, noise
from voice.asr import AsrEngine, AsrEvent, AsrStream, AsrStreamClosed, SpeechModel, join_words
from voice.audio import AudioFormatError, resample

GREETING = "안녕하세요 감사합니다"


async def run(stream: AsrStream, pcm: bytes, rate: int) -> list[tuple[float, AsrEvent]]:
    """Feed 20 ms frames; each event with the audio time at which it came."""
    events: list[tuple[float, AsrEvent]] = []
    fed = 0
    for frame in frames(pcm, rate):
        fed += len(frame)
        events += [(fed / 2 / rate, event) for event in await stream.feed(frame)]
    return events


def kinds(events: list[tuple[float, AsrEvent]]) -> list[str]:
    return [event.kind for _, event in events]


def speech_end(pcm: bytes, rate: int) -> float:
    """Audio time of the last loud sample: where the speaker stopped."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)) > 1000)
    return float(loud[-1] + 1) / rate


async def test_speech_gives_started_partials_and_one_final(
    asr: AsrEngine, speech: SpeechMaker
) -> None:
    stream = asr.open_stream(sample_rate=16000)
    events = await run(stream, speech(GREETING), 16000)
    names = kinds(events)
    assert names[0] == "speech_started"
    assert "partial" in names
    assert names.count("final") == 1
    assert names[-1] == "final"
    assert all(n in ("speech_started", "partial", "final") for n in names)
    final = events[-1][1]
    assert final.text
    assert final.unknown_words == ()
    partials = [e.text for _, e in events if e.kind == "partial"]
    assert all(p for p in partials)


async def test_partials_can_be_turned_off(asr: AsrEngine, speech: SpeechMaker) -> None:
    stream = asr.open_stream(sample_rate=16000, partials=False)
    events = await run(stream, speech(GREETING), 16000)
    assert kinds(events) == ["speech_started", "final"]
    assert events[-1][1].text


@pytest.mark.parametrize("silence_s", [0.9, 0.5])
async def test_final_comes_after_the_configured_trailing_silence(
    ko_model: SpeechModel, speech: SpeechMaker, silence_s: float
) -> None:
    engine = AsrEngine(ko_model, max_streams=1, endpoint_silence_s=silence_s)
    try:
        pcm = speech(GREETING, after=2.0)
        events = await run(engine.open_stream(sample_rate=16000), pcm, 16000)
    finally:
        engine.close()
    finals = [t for t, e in events if e.kind == "final"]
    assert len(finals) == 1
    waited = finals[0] - speech_end(pcm, 16000)
    # Decoding steps are 0.1 s and level frames 20 ms: the final lands within one step.
    assert silence_s <= waited <= silence_s + 0.25


async def test_a_pause_shorter_than_the_silence_keeps_one_turn(
    asr: AsrEngine, speech: SpeechMaker
) -> None:
    # Kaldi's own endpoint would cut this after 0.5 s; an elderly speaker's pause is not the end.
    pcm = speech("안녕하세요", after=0.6) + speech("감사합니다", before=0.0, after=1.5)
    events = await run(asr.open_stream(sample_rate=16000), pcm, 16000)
    assert kinds(events).count("speech_started") == 1
    assert kinds(events).count("final") == 1


async def test_no_speech_gives_no_input_and_never_a_final(asr: AsrEngine) -> None:
    stream = asr.open_stream(sample_rate=16000)
    events = await run(stream, noise(3.5, 16000), 16000)
    assert kinds(events) == ["no_input"]
    assert events[0][0] == pytest.approx(3.0, abs=0.11)
    # The clock restarts after each no_input and after reset().
    stream.reset()
    assert kinds(await run(stream, noise(2.5, 16000, seed=5), 16000)) == []


async def test_8khz_input_is_resampled_for_the_16khz_model(
    asr: AsrEngine, speech: SpeechMaker
) -> None:
    stream = asr.open_stream(sample_rate=8000, grammar=["네", "아니요"])
    events = await run(stream, speech("네", 8000), 8000)
    assert [e.text for _, e in events if e.kind == "final"] == ["네"]
    # The same audio resampled by us instead of sox: still heard.
    free = asr.open_stream(sample_rate=8000)
    pcm = resample(speech(GREETING), 16000, 8000)
    finals = [e.text for _, e in await run(free, pcm, 8000) if e.kind == "final"]
    assert len(finals) == 1
    assert finals[0]


@pytest.mark.parametrize(("said", "expected"), [("네", "네"), ("아니요", "아니요")])
async def test_grammar_mode_recognises_the_expected_phrases(
    asr: AsrEngine, speech: SpeechMaker, said: str, expected: str
) -> None:
    stream = asr.open_stream(sample_rate=16000, grammar=["네", "아니요", "안녕하세요"])
    events = await run(stream, speech(said), 16000)
    assert [e.text for _, e in events if e.kind == "final"] == [expected]


async def test_grammar_reports_words_the_model_does_not_know(
    asr: AsrEngine, speech: SpeechMaker
) -> None:
    stream = asr.open_stream(sample_rate=16000)
    unknown = stream.set_grammar(["네", "아니요", "qwxz 네", "是的"])
    # Phrases with an unknown word are left out, and the word reported.
    assert unknown == ("qwxz", "是的")
    events = await run(stream, speech("네"), 16000)
    finals = [e for _, e in events if e.kind == "final"]
    assert [(f.text, f.unknown_words) for f in finals] == [("네", unknown)]
    assert stream.grammar is not None
    assert stream.grammar.phrases == ("네", "아니요")


def test_runs_without_spaces_are_split_into_known_words(ko_model: SpeechModel) -> None:
    # Chinese is written without spaces; the same code splits a Korean run the model lacks.
    grammar = ko_model.compile_grammar(["안녕하세요감사합니다", "네是的네"])
    assert grammar.phrases == ("안녕하세요 감사합니다",)
    assert grammar.unknown == ("是的",)


async def test_a_grammar_of_only_unknown_words_leaves_free_speech(
    asr: AsrEngine, speech: SpeechMaker
) -> None:
    stream = asr.open_stream(sample_rate=16000, grammar=["네"])
    assert stream.set_grammar(["qwxz", "是的"]) == ("qwxz", "是的")
    assert stream.grammar is None
    finals = [e for _, e in await run(stream, speech(GREETING), 16000) if e.kind == "final"]
    assert len(finals) == 1
    assert finals[0].text
    assert finals[0].unknown_words == ()
    assert stream.set_grammar(None) == ()


async def test_finish_returns_the_pending_words_and_reset_drops_them(
    asr: AsrEngine, speech: SpeechMaker
) -> None:
    stream = asr.open_stream(sample_rate=16000, grammar=["네", "아니요"])
    await run(stream, speech("아니요", after=0.2), 16000)
    final = await stream.finish()
    assert (final.kind, final.text) == ("final", "아니요")
    await run(stream, speech("네", after=0.2), 16000)
    stream.reset()
    assert (await stream.finish()).text == ""


async def test_decoding_never_exceeds_the_stream_bound(
    ko_model: SpeechModel, speech: SpeechMaker
) -> None:
    engine = AsrEngine(ko_model, max_streams=2)
    pcm = speech("네", after=1.2)
    try:
        streams = [engine.open_stream(sample_rate=16000, grammar=["네"]) for _ in range(5)]
        results = await asyncio.gather(*(run(s, pcm, 16000) for s in streams))
    finally:
        engine.close()
    assert 1 <= engine.peak_concurrency <= 2
    for events in results:
        assert [e.text for _, e in events if e.kind == "final"] == ["네"]


async def test_bad_audio_is_refused_clearly(asr: AsrEngine) -> None:
    with pytest.raises(AudioFormatError):
        asr.open_stream(sample_rate=4000)
    stream = asr.open_stream(sample_rate=16000)
    with pytest.raises(AudioFormatError, match="even"):
        await stream.feed(b"\x00\x01\x02")
    assert await stream.feed(b"") == []
    stream.close()
    with pytest.raises(AsrStreamClosed):
        await stream.feed(b"\x00\x00")


def test_chinese_output_loses_its_spaces_and_unk() -> None:
    assert join_words("我 要 报修 [unk] 三 栋") == "我要报修三栋"
    assert join_words("A 栋 wifi 坏 了") == "A栋wifi坏了"
    assert join_words("call  me   back") == "call me back"
    assert join_words("안녕 하세요") == "안녕 하세요"  # Korean keeps its word spaces
    assert join_words("[unk]") == ""
