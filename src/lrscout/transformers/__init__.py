"""LR range test for a Hugging Face ``transformers.Trainer``: :func:`find_lr`.

Needs transformers and accelerate (``pip install "torch==2.13.0" transformers accelerate``)
and PyTorch; ``import lrscout`` alone does not import them.
"""

from .._errors import missing_dependency

try:
    import transformers as _transformers  # noqa: F401
except ImportError as _error:
    raise missing_dependency(
        "lrscout.transformers", "transformers accelerate", needs="Hugging Face transformers"
    ) from _error

from ._find_lr import find_lr as find_lr

__all__ = ["find_lr"]
