"""Make the repository's `uegan_tf` importable when a tool runs from a clone.

`python tools/<tool>.py` puts `tools/` (not the repository root) on
`sys.path`; this adds the root so that the tools use the code they ship
with, installed or not.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
