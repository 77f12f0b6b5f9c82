"""Fixtures for the extract tests."""

from __future__ import annotations

import pytest

from .helpers import SITES


@pytest.fixture(params=sorted(str(p.relative_to(SITES)) for p in SITES.rglob("*.html")))
def any_page(request: pytest.FixtureRequest) -> str:
    """Each fixture page in turn, as a path relative to the sites folder."""
    return str(request.param)
