"""Settings for every pytest run, including doctests collected from src/."""

from __future__ import annotations

import os

# Keras reads its backend once, at import; tensorflow is not a dependency.
os.environ.setdefault("KERAS_BACKEND", "torch")
# No windows from plots during tests.
os.environ.setdefault("MPLBACKEND", "Agg")
