"""The public names of `docshelf` all resolve, and `import docshelf` stays light."""

from __future__ import annotations

import subprocess
import sys

import docshelf


def test_every_exported_name_resolves() -> None:
    for name in docshelf.__all__:
        assert getattr(docshelf, name) is not None


def test_import_loads_no_model_runtime() -> None:
    code = "import sys, docshelf; print(sorted(m for m in ('onnxruntime', 'httpx', 'pydantic_ai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
