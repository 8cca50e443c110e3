from __future__ import annotations

import sys
from pathlib import Path

# The deal builders sit beside the tests; make them importable without a package.
sys.path.insert(0, str(Path(__file__).parent))
