"""Argument checks shared by every public entry point.

One message format everywhere: ``"<where>: <name> must be <constraint>; got <value>."``
followed, where known, by the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, NoReturn, SupportsInt, cast

import numpy as np

from ._errors import InvalidArgumentError


def fail(where: str, name: str, constraint: str, value: Any, fix: str = "") -> NoReturn:
    """Raise :class:`InvalidArgumentError` in the one message format."""
    message = f"{where}: {name} must be {constraint}; got {value!r}."
    if fix:
        message += f" {fix}"
    raise InvalidArgumentError(message)


def check_int(
    value: Any,
    name: str,
    *,
    where: str,
    minimum: int | None = None,
    maximum: int | None = None,
    fix: str = "",
) -> int:
    """Return ``value`` as an ``int`` after checking its type and range.

    Integral floats such as ``np.ceil(n / b)`` are accepted; ``bool`` is not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(where, name, "an integer", value, fix)
    if not isinstance(value, numbers.Integral) and not float(value).is_integer():
        fail(where, name, "a whole number", value, fix)
    result = int(cast(SupportsInt, value))
    if minimum is not None and result < minimum:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        fail(where, name, f"an integer {bound}", value, fix)
    if maximum is not None and result > maximum:
        bound = f"<= {maximum}" if minimum is None else f"in [{minimum}, {maximum}]"
        fail(where, name, f"an integer {bound}", value, fix)
    return result


def check_float(
    value: Any,
    name: str,
    *,
    where: str,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
    open_maximum: bool = False,
    fix: str = "",
) -> float:
    """Return ``value`` as a finite ``float`` after checking its type and range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(where, name, "a real number", value, fix)
    try:
        result = float(value)
    except OverflowError:  # an integer past the float range
        whole = int(cast(SupportsInt, value))
        digits = len(str(abs(whole))) if whole.bit_length() < 14_000 else "thousands of"
        fail(where, name, "finite (within a float's range)", f"an integer of {digits} digits", fix)
    if not math.isfinite(result):
        fail(where, name, "finite", value, fix)
    if positive and result <= 0.0:
        fail(where, name, "positive", value, fix)
    if minimum is not None and (result < minimum or (open_minimum and result == minimum)):
        op = ">" if open_minimum else ">="
        fail(where, name, f"{op} {minimum}", value, fix)
    if maximum is not None and (result > maximum or (open_maximum and result == maximum)):
        op = "<" if open_maximum else "<="
        fail(where, name, f"{op} {maximum}", value, fix)
    return result


def check_option(value: Any, name: str, options: Iterable[str], *, where: str, fix: str = "") -> str:
    """Return ``value`` if it is one of the string ``options``."""
    allowed = tuple(options)
    listed = ", ".join(repr(o) for o in allowed)
    if not isinstance(value, str):
        fail(where, name, f"a string, one of {listed}", value, fix)
    if value not in allowed:
        fail(where, name, f"one of {listed}", value, fix)
    return str(value)


def check_bool(value: Any, name: str, *, where: str) -> bool:
    """Return ``value`` if it is a ``bool`` (NumPy booleans included)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(where, name, "True or False", value, "")
    return bool(value)


def check_batch_size(value: Any, *, where: str, name: str = "batch_size") -> int | None:
    """``None`` (the whole set) or a positive integer."""
    if value is None:
        return None
    return check_int(value, name, where=where, minimum=1, fix="Use None for full-batch gradient descent.")


def check_callable(value: Any, name: str, *, where: str) -> None:
    if not callable(value):
        fail(where, name, "callable", value, "")


def number_text(x: float) -> str:
    """A number for people: 3 significant digits, but no exponent for counts in the thousands."""
    return f"{x:.0f}" if math.isfinite(x) and 1e3 <= abs(x) < 1e7 else f"{x:.3g}"
