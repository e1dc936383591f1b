"""The global random generators a test may draw from, saved and put back.

A user's data pipeline draws from them (an augmentation calling
``np.random``, a shuffled ``DataLoader`` seeding itself from torch, an
estimator with ``random_state=None``): after a range test they must be
where they were, as the model is.
"""

from __future__ import annotations

import random
import sys
from types import TracebackType
from typing import Any

import numpy as np


class GlobalRNG:
    """Python's ``random``, NumPy's global state and torch's (CPU, and CUDA once initialised), saved now.

    torch's is saved only when torch is already imported: a test that
    imports it has not drawn from it before. Used as a context manager,
    the states are put back on the way out, also after an exception or
    ``KeyboardInterrupt``.

    Example:
        >>> before = np.random.get_state()[1].copy()
        >>> with GlobalRNG():
        ...     _ = np.random.normal(size=3)
        >>> bool(np.array_equal(np.random.get_state()[1], before))
        True
    """

    def __init__(self) -> None:
        self._python = random.getstate()
        # The legacy global state itself, which user code may draw from.
        self._numpy = np.random.get_state()  # noqa: NPY002
        self._torch: Any = None
        self._cuda: Any = None
        torch: Any = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "get_rng_state"):
            self._torch = torch.get_rng_state()
            if torch.cuda.is_initialized():
                self._cuda = torch.cuda.get_rng_state_all()

    @property
    def nbytes(self) -> int:
        """Bytes of the saved torch generator states (tensors); Python's and NumPy's are not counted."""
        return (0 if self._torch is None else int(self._torch.nbytes)) + sum(
            int(state.nbytes) for state in self._cuda or []
        )

    def restore(self) -> None:
        """Put every saved state back (idempotent)."""
        random.setstate(self._python)
        np.random.set_state(self._numpy)  # noqa: NPY002
        if self._torch is not None:
            torch: Any = sys.modules["torch"]
            torch.set_rng_state(self._torch)
            if self._cuda is not None:
                torch.cuda.set_rng_state_all(self._cuda)

    def __enter__(self) -> GlobalRNG:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.restore()
