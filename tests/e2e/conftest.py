"""One running stack (records, actions, Rasa with the trained model) for all e2e tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, running_stack, trained_model


@pytest.fixture(scope="session")
def model() -> Path:
    """The trained model for the current bot and NLU data."""
    return trained_model()


@pytest.fixture(scope="session")
def stack(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real services, started once per test session."""
    with running_stack(tmp_path_factory.mktemp("stack"), model) as running:
        yield running
