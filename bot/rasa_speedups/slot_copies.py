"""Slots copied directly, not through Python's generic copy protocol.

Every tracker Rasa 3.6 builds (each turn, each prior state a policy looks at) copies every slot
of the domain with `copy.copy`, whose generic path (`__reduce_ex__`, then rebuilding the object)
took about 6% of Rasa's CPU per turn in a profile of the chat benchmark. Slots keep their state
in their instance dictionary, so a new instance with a copy of that dictionary is exactly what
`copy.copy` builds.
"""

from rasa.shared.core.slots import Slot


def _copy_slot(slot: Slot) -> Slot:
    """A shallow copy, as copy.copy makes it."""
    twin = object.__new__(type(slot))
    twin.__dict__.update(slot.__dict__)
    return twin


def install_direct_slot_copies() -> None:
    """Make copy.copy of a slot take the direct path (idempotent)."""
    Slot.__copy__ = _copy_slot  # type: ignore[attr-defined]
