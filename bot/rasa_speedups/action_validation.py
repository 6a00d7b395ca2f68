"""Action server replies validated against a schema checked once, each event against its own kind.

Rasa 3.6 validates each action server reply with `jsonschema.validate`, which first checks the
schema itself against its meta-schema and builds a new validator: 35-45% of Rasa's CPU per
turn in a profile of the chat benchmark, more than NLU and the policies together. The schema
(`RemoteAction.action_response_format_spec`) never changes, so one validator, built and
checked once per process, validates the same replies with the same errors.

Each event must then match exactly one of 23 event schemas (`oneOf`), each of which pins the
event's name to a constant: an event can only ever match the schema of its own name, so
checking that one alone decides the same. A reply that this quick check does not accept goes
through the full validator, which gives Rasa's own error.
"""

from functools import cache
from typing import Any

from jsonschema import exceptions, validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@cache
def _validator() -> Any:
    """The reply validator (the draft `jsonschema.validate` would pick), schema checked."""
    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@cache
def _quick_validators() -> tuple[Any, dict[str, Any]] | None:
    """The reply minus its events' schema, a validator per event name (None: no shortcut)."""
    schema = RemoteAction.action_response_format_spec()
    event_schema = schema["properties"]["events"]["items"]
    kinds = event_schema["oneOf"]
    names = [kind.get("properties", {}).get("event", {}).get("const") for kind in kinds]
    if None in names or len(set(names)) != len(names):
        return None  # the event schemas no longer exclude each other by name
    cls = validators.validator_for(schema)
    common = {key: value for key, value in event_schema.items() if key != "oneOf"}
    events = {key: value for key, value in schema["properties"]["events"].items() if key != "items"}
    reply = {**schema, "properties": {**schema["properties"], "events": events}}
    by_name = {
        name: cls({**common, "allOf": [kind]}) for name, kind in zip(names, kinds, strict=True)
    }
    return cls(reply), by_name


def _quickly_valid(result: Any) -> bool:
    """True only for a reply the full schema accepts."""
    quick = _quick_validators()
    if quick is None:
        return False
    reply, by_name = quick
    if not reply.is_valid(result):
        return False
    for event in result.get("events") or []:
        name = event.get("event") if isinstance(event, dict) else None
        validator = by_name.get(name) if isinstance(name, str) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def _validate_action_result(_action: RemoteAction, result: dict[str, Any]) -> bool:
    """What RemoteAction._validate_action_result does, with prepared validators."""
    if _quickly_valid(result):
        return True
    error = exceptions.best_match(_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, make sure your response from "
        f"the Action endpoint is valid. For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install_cached_action_validation() -> None:
    """Make Rasa validate action server replies with the prepared validators (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
