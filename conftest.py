"""Settings for every pytest run, including doctests collected from src/."""

from __future__ import annotations

import os

# Keras reads its backend once, at import; tensorflow is not a dependency.
os.environ.setdefault("KERAS_BACKEND", "torch")
# No windows from plots during tests.
os.environ.setdefault("MPLBACKEND", "Agg")


def _hide_a_torchvision_that_cannot_load() -> None:
    """Make a torchvision that fails to import look absent, as it is to the tests.

    transformers imports torchvision whenever it is installed (for its image
    utilities, even to build GPT-2), so a torchvision built for another torch
    (``RuntimeError: operator torchvision::nms does not exist``, as fastai's
    dependencies install it beside a CPU torch) takes transformers and peft
    with it. No test uses torchvision itself.
    """
    import importlib.util
    import sys

    if importlib.util.find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401
    except Exception:  # whatever its failed extension raises
        sys.modules["torchvision"] = None  # type: ignore[assignment]


_hide_a_torchvision_that_cannot_load()
