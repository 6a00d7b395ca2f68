"""An emergency press raises one alert, whichever path (dialogue or voice gateway) gets there."""

from rasa_sdk import Tracker

from actions.core import alert_key
from voice.web.alerts import alert_key as gateway_alert_key


def tracker_with(metadata: dict[str, str]) -> Tracker:
    latest = {"text": "/emergency", "intent": {"name": "emergency"}, "metadata": metadata}
    events = [{"event": "user", "timestamp": 1.0, "text": "/emergency"}]
    return Tracker("web:tablet-1", {}, latest, events, False, None, None, "action_listen")


def test_a_press_gives_the_gateways_key() -> None:
    assert alert_key(tracker_with({"alert_press": "p-1"})) == gateway_alert_key(
        "web:tablet-1", "p-1"
    )


def test_without_a_press_each_turn_has_its_own_key() -> None:
    assert alert_key(tracker_with({})) != gateway_alert_key("web:tablet-1", "p-1")
