"""The trained model, for tests that run Rasa's own evaluation."""

from pathlib import Path

import pytest

from tests.e2e.stack import trained_model


@pytest.fixture(scope="session")
def model() -> Path:
    """The trained model for the current bot and NLU data."""
    return trained_model()
