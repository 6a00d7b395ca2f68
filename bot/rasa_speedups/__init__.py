"""Rasa 3.6 made faster where a profile showed it wasting time, answers unchanged.

Each module replaces one Rasa function with one that returns the same result for the same
input (tests/bot compares them with Rasa's own in Rasa's Python); `install` puts them all in
place. Our REST channel calls it when Rasa creates it, before Rasa loads its model.
"""

from rasa_speedups.action_validation import install_cached_action_validation
from rasa_speedups.decided_predictions import install_decided_predictions
from rasa_speedups.event_types import install_event_type_table
from rasa_speedups.model_loading import install_loading_to_answer
from rasa_speedups.slot_copies import install_direct_slot_copies
from rasa_speedups.tf_predict import install_direct_predictions


def install() -> None:
    """Put every speed-up in place (idempotent)."""
    install_cached_action_validation()
    install_event_type_table()
    install_direct_slot_copies()
    install_loading_to_answer()
    install_direct_predictions()
    install_decided_predictions()
