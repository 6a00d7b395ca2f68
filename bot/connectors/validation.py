"""Action server replies validated against a schema checked once, not on every turn.

Rasa 3.6 validates each action server reply with `jsonschema.validate`, which first checks the
schema itself against its meta-schema and builds a new validator: 35-45% of Rasa's CPU per
turn in a profile of the chat benchmark, more than NLU and the policies together. The schema
(`RemoteAction.action_response_format_spec`) never changes, so one validator, built and
checked once per process, validates the same replies with the same errors.
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


def _validate_action_result(_action: RemoteAction, result: dict[str, Any]) -> bool:
    """What RemoteAction._validate_action_result does, with the prepared validator."""
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
    """Make Rasa validate action server replies with the prepared validator (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
