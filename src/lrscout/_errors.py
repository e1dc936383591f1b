"""lrscout's exception and warning classes: the bottom layer, imported by every other module."""

from __future__ import annotations


class InvalidArgumentError(ValueError, TypeError):
    """An argument of a public lrscout function is of the wrong type or value.

    A subclass of both ``ValueError`` and ``TypeError`` (as scikit-learn's
    ``InvalidParameterError``), so ``except ValueError`` and ``except
    TypeError`` written before it existed keep catching it. The message names
    the function, the argument, what it must be, the value received and,
    where known, the fix.

    Example:
        >>> import lrscout
        >>> try:
        ...     lrscout.steps_per_epoch(0, 32)
        ... except ValueError as error:
        ...     print(error)
        steps_per_epoch: n_samples must be an integer >= 1; got 0.
    """


class NoSuggestionError(ValueError):
    """A range-test curve cannot support the suggestion asked of it.

    Raised by the suggestion rules when the curve is too short, never falls
    by more than its noise, or the rule's answer lies outside the tested
    range. The message says what to change in the test.
    """


class CurveWarning(UserWarning):
    """A range-test curve cannot fully support a suggestion.

    Emitted once per finding when a test ends: it ran short of its planned
    steps, the loss never turned up before ``end_lr``, the fall is hardly
    above the step-to-step noise, or the loss rose from the start. The same
    messages stay on the result (``RangeTestResult.warnings``), its JSON
    file and its plot, and the command line prints them. Filter them like
    any warning: ``warnings.simplefilter("ignore", lrscout.CurveWarning)``.
    """


class NoiseScaleWarning(UserWarning):
    """A gradient noise scale measured where it may not stand for the training to come.

    ``lrscout.models.noise_scale`` on a model that is not fitted measures at
    the initial weights, where ``B_simple`` is typically several times below
    its value once training is under way (it grows as the loss falls), so the
    batch size it suggests is too small; ``lrscout noise-scale`` trains a few
    epochs first. Filter it like any warning.
    """


#: The torch lrscout is tested with. pip installs it pinned, and in the same
#: command as anything that depends on it (Lightning, transformers, fastai):
#: an unpinned torch, or one that a later install upgrades, pulls a multi-GB
#: CUDA build.
TORCH_PIN = "torch==2.13.0"

# Packages whose install pulls torch in.
_NEEDS_TORCH = frozenset({"torch", "lightning", "transformers", "accelerate", "fastai"})


def install_line(packages: str) -> str:
    """The ``pip install`` command for ``packages`` (as typed after ``pip install``), torch pinned.

    Example:
        >>> install_line("torch")
        'pip install "torch==2.13.0"'
        >>> install_line("lightning")
        'pip install "torch==2.13.0" lightning'
        >>> install_line("jax optax")
        'pip install jax optax'
    """
    names = packages.split()
    if not _NEEDS_TORCH.intersection(names):
        return f"pip install {packages}"
    return " ".join(["pip install", f'"{TORCH_PIN}"', *(name for name in names if name != "torch")])


def missing_dependency(
    what: str, packages: str, *, needs: str | None = None, or_else: str | None = None
) -> ImportError:
    """The ``ImportError`` for an optional dependency that is not installed: the one message format.

    The message ends with a ``pip install`` line that works from wherever the
    user is (it names packages on the index, not lrscout's extras: lrscout
    itself is installed from a clone), torch pinned (:func:`install_line`).

    Args:
        what: The lrscout part that needs it, e.g. ``"lrscout.pytorch"``.
        packages: What to install, as typed after ``pip install``, e.g. ``"torch"``.
        needs: What is missing, in words, e.g. ``"PyTorch"``; ``packages`` by default.
        or_else: Another way out, appended after the install line.

    Returns:
        The error, to ``raise ... from`` the original ``ImportError``.

    Example:
        >>> print(missing_dependency("lrscout.pytorch", "torch", needs="PyTorch"))
        lrscout.pytorch needs PyTorch, which is not installed. Install it with: pip install "torch==2.13.0"
    """
    message = (
        f"{what} needs {needs or packages}, which is not installed. Install it with: {install_line(packages)}"
    )
    return ImportError(message + (f" (or {or_else})" if or_else else ""))
