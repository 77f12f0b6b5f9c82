"""A real shelf built once per session from the Sphinx fixture site, and apps over copies of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from docshelf.server.app import create_app
from docshelf.server.state import ServerConfig
from test_shelf_tools import SPHINX, build_widgets_shelf

__all__ = ["SPHINX"]


@pytest.fixture(scope="session")
def widgets_shelf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Return (shelf path, site base URL) of the Sphinx fixture site crawled as source "widgets". Do not write to it."""
    path = tmp_path_factory.mktemp("widgets") / "shelf.db"
    base = build_widgets_shelf(path)
    return path, base


@pytest.fixture
def shelf_copy(widgets_shelf: tuple[Path, str], tmp_path: Path) -> Path:
    """Return a private copy of the widgets shelf that a test may change."""
    copy = tmp_path / "shelf.db"
    shutil.copy(widgets_shelf[0], copy)
    return copy


@pytest.fixture
def make_client(shelf_copy: Path) -> Iterator[Callable[..., TestClient]]:
    """Return a factory: make_client(token=..., read_only=...) -> a TestClient over the app on a shelf copy."""
    clients: list[TestClient] = []

    def make(**settings: object) -> TestClient:
        app: FastAPI = create_app(ServerConfig(db=str(shelf_copy), **settings))  # type: ignore[arg-type]
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
