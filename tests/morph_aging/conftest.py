"""Make the AcGAN example's modules importable in its tests."""

import os
import sys

_EXAMPLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "morph_aging"))
if _EXAMPLE not in sys.path:
    sys.path.insert(0, _EXAMPLE)
