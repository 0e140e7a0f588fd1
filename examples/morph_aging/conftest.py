"""pytest collects this folder for its ``>>>`` examples (``--doctest-modules``,
see ``testpaths`` in pyproject.toml).

The modules import each other by their bare names, as the scripts do, so the
folder goes on ``sys.path``. A module that needs an optional package (the
``example`` extra's pillow, or the ``face`` and ``export`` extras) that is
not installed is left out of the collection instead of failing it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

#: Packages beyond torch and numpy that importing a module, or running its
#: examples, needs.
NEEDS = {
    "ablation": ("PIL",),
    "age": ("PIL", "tqdm"),
    "evaluate": ("PIL",),
    "face_align": ("PIL",),
    "face_datasets": ("PIL",),
    "pictures": ("PIL",),
}


def pytest_ignore_collect(collection_path: Path, config) -> Optional[bool]:
    if collection_path.suffix != ".py" or str(collection_path.parent) != HERE:
        return None
    if collection_path.name == "conftest.py":  # no examples here; collected, it would clash with the tests' conftest
        return True
    missing = [name for name in NEEDS.get(collection_path.stem, ()) if importlib.util.find_spec(name) is None]
    return True if missing else None
