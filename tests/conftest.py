"""Shared fixtures: every test runs with its own DOCSHELF_HOME, never the user's files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # test helper modules (servers.py, counting.py) import by name


def pytest_report_header(config: pytest.Config) -> list[str]:
    import apsw
    import onnxruntime
    import sqlite_vec

    return [f"sqlite {apsw.sqlite_lib_version()}, sqlite-vec {sqlite_vec.__version__}, onnxruntime {onnxruntime.__version__}"]


@pytest.fixture(autouse=True)
def docshelf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "docshelf-home"
    monkeypatch.setenv("DOCSHELF_HOME", str(home))
    monkeypatch.delenv("DOCSHELF_DB", raising=False)
    monkeypatch.delenv("DOCSHELF_EMBEDDER", raising=False)
    return home


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shelf.db"
