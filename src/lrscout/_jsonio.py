"""Plain-JSON files for lrscout's results: exact floats, no pickles, checked on the way in."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._errors import InvalidArgumentError


def encode_float(x: float) -> float | str:
    """``x``, or ``"nan"``, ``"inf"``, ``"-inf"``: strict JSON has no non-finite numbers."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def decode_float(value: Any, name: str, where: str) -> float:
    """The inverse of :func:`encode_float`, refusing anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidArgumentError(f"{where}: {name} must be a number; got {value!r}.")
    if isinstance(value, str) and value not in ("nan", "inf", "-inf"):
        raise InvalidArgumentError(
            f"{where}: {name} must be a number, 'nan', 'inf' or '-inf'; got {value!r}."
        )
    return float(value)


def decode_floats(values: Any, name: str, where: str) -> np.ndarray:
    """A JSON list of encoded floats as a ``float64`` array."""
    if not isinstance(values, list):
        raise InvalidArgumentError(f"{where}: {name} must be a list; got {type(values).__name__}.")
    return np.array([decode_float(v, f"{name}[{i}]", where) for i, v in enumerate(values)], dtype=np.float64)


def check_header(data: Any, where: str, fmt: str, version: int, what: str) -> Mapping[str, Any]:
    """``data`` if it is a mapping written as ``fmt`` version ``version``."""
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"{where}: data must be a mapping; got {type(data).__name__}.")
    if data.get("format") != fmt or data.get("version") != version:
        raise InvalidArgumentError(
            f"{where}: not an lrscout {what} (format {data.get('format')!r}, version "
            f"{data.get('version')!r}; expected {fmt!r} version {version})."
        )
    return data


def json_copy(info: Any, *, where: str, name: str = "info") -> dict[str, Any]:
    """A deep copy of the mapping ``info`` through JSON, refusing what JSON cannot hold.

    Example:
        >>> json_copy({"batch_size": 32, "ratios": (1.0, 0.5)}, where="f")
        {'batch_size': 32, 'ratios': [1.0, 0.5]}
    """
    if info is None:
        return {}
    if not isinstance(info, Mapping):
        raise InvalidArgumentError(f"{where}: {name} must be a mapping of JSON values; got {info!r}.")
    try:
        copied: dict[str, Any] = json.loads(json.dumps(dict(info), allow_nan=False))
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidArgumentError(
            f"{where}: {name} must hold JSON values only; got {info!r} ({type(error).__name__}: {error})."
        ) from None
    return copied


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, allow_nan=False)
        handle.write("\n")


def read_json(path: str | os.PathLike[str], where: str) -> Any:
    """Parse a JSON file; bare ``NaN`` / ``Infinity`` (not JSON) are refused."""

    def reject(constant: str) -> None:
        raise InvalidArgumentError(f"{where}: bare {constant} is not JSON; lrscout writes it as a string.")

    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle, parse_constant=reject)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InvalidArgumentError(f"{where}: {os.fspath(path)!r} is not valid JSON ({error}).") from None
