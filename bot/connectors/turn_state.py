"""What a conversation's tracker said when Rasa saved it at the end of this turn.

The REST channel tells voice channels how fast to speak (the `speech_rate` slot) with every
reply. Reading the tracker back from the tracker store for that cost a second full read per
turn (with PostgreSQL, a query and all the conversation's events). Rasa saves the tracker at
the end of each turn in the same task that handles the request, so a context variable set by
the channel catches the slot as it is saved.
"""

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rasa.core.processor import MessageProcessor
from rasa.shared.core.trackers import DialogueStateTracker

SPEECH_RATE_SLOT = "speech_rate"


@dataclass
class TurnState:
    """The slots the channel needs, as saved at the end of the turn (saved False: not yet)."""

    sender: str
    saved: bool = False
    speech_rate: Any = None


_current: ContextVar[TurnState | None] = ContextVar("linli_turn_state", default=None)
_stock_save = MessageProcessor.save_tracker


async def _save_tracker(processor: MessageProcessor, tracker: DialogueStateTracker) -> None:
    """Save the tracker as Rasa does, then note its slots for the channel's request."""
    await _stock_save(processor, tracker)
    state = _current.get()
    if state is not None and state.sender == tracker.sender_id:
        state.speech_rate = tracker.get_slot(SPEECH_RATE_SLOT)
        state.saved = True


def begin_turn(sender: str) -> TurnState:
    """Watch this request's turn (call before handing the message to Rasa)."""
    state = TurnState(sender)
    _current.set(state)
    return state


def install_turn_state() -> None:
    """Make Rasa note each saved tracker's slots for the request that saved it (idempotent)."""
    MessageProcessor.save_tracker = _save_tracker  # type: ignore[method-assign]
