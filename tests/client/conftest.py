"""The OVMS stand-in (``tests/ovms_fixture_server.py``) serving the published model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ovms_fixture_server import FixtureServer


@pytest.fixture(scope="module")
def fixture_server(published_model) -> Iterator[FixtureServer]:
    with FixtureServer(Path(published_model.path).parent.parent) as server:
        yield server


@pytest.fixture(scope="module")
def classifier_server(published_classifier) -> Iterator[FixtureServer]:
    with FixtureServer(Path(published_classifier.path).parent.parent) as server:
        yield server
