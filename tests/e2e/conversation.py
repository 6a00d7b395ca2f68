"""Drive a conversation by answering whatever the bot asks, as a resident would."""

from collections.abc import Callable, Sequence

from tests.e2e.stack import Stack

Message = dict[str, object]


def said(messages: Sequence[Message]) -> str:
    """All the text the bot said in one turn."""
    return "".join(str(m.get("text", "")) for m in messages)


def talk(
    stack: Stack,
    sender: str,
    opening: str,
    answers: Sequence[tuple[str, str]],
    *,
    done: Callable[[str], bool],
    max_turns: int = 12,
) -> list[tuple[str, str]]:
    """Say `opening`, then answer each question with the first answer whose keyword it
    contains, until `done(reply)`; returns the transcript. Fails on a question nobody
    answers, so a changed flow is noticed rather than looped through."""
    transcript = []
    text = opening
    for _ in range(max_turns):
        reply = said(stack.chat(sender, text))
        transcript.append((text, reply))
        if done(reply):
            return transcript
        text = next((answer for keyword, answer in answers if keyword in reply), "")
        if not text:
            raise AssertionError(f"no answer for {reply!r}; transcript: {transcript}")
    raise AssertionError(f"not done after {max_turns} turns: {transcript}")
