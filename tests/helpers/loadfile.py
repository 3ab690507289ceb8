"""Load a file of the repository (a script, a module or a strategy plugin) as a Python module,
for the unit tests of code that is not on any import path (``release-archives.py``)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_file(relative, name=None):
    """The module in ``ROOT / relative``, executed afresh under ``name`` (default: the file's stem)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(name or path.stem.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
