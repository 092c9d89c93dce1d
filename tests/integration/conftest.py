"""Fixtures shared by integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import ganache


@pytest.fixture
def ganache_setup(tmp_path: Path) -> Iterator[tuple[ganache.Ganache, Path]]:
    """A funded ganache (`tests/integration/ganache.py`) and the data directory whose
    node keys it funds."""
    yield from ganache.ganache_setup(tmp_path)
