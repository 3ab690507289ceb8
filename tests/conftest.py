"""Make the project's filter plugins importable as plain modules in unit tests, the lab
helpers, and the
collection shipped in the repository (collections/) as ``ansible_collections.promha.stack``."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
sys.path.insert(0, str(ROOT / "collections"))
# The lab helpers (tests/helpers): loadfile.load_file for scripts that are not on a path.
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
