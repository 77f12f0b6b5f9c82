"""The public names of `docshelf` all resolve, and `import docshelf` stays light."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

import pytest

import docshelf


def test_every_exported_name_resolves() -> None:
    for name in docshelf.__all__:
        if name == "__version__":
            assert docshelf.__version__ == importlib.metadata.version("docshelf")
            continue
        value = getattr(docshelf, name)
        # The very object its module defines, under the name it is exported as (no stand-in, no alias).
        assert value is getattr(importlib.import_module(docshelf._EXPORTS[name]), name)
        assert getattr(value, "__name__", None) == name, name
    assert sorted(docshelf._EXPORTS) == sorted(set(docshelf.__all__) - {"__version__"})
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        docshelf.nope  # noqa: B018


def test_import_loads_no_model_runtime() -> None:
    code = "import sys, docshelf; print(sorted(m for m in ('onnxruntime', 'httpx', 'pydantic_ai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
