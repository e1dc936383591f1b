"""Plain-JSON files for lrscout's results: exact floats, no pickles, checked on the way in."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import IO, Any, Union

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


PathOrFile = Union[str, "os.PathLike[str]", int, IO[str]]


def write_text(target: PathOrFile, text: str, *, where: str) -> None:
    """Write ``text`` to a path atomically, or to an open file or descriptor the caller keeps.

    A path is written through a temporary file in the same folder, renamed
    over the target only once everything is written: an error half way (a
    full disk, an interrupt) leaves an existing file as it was. A file
    descriptor (``int``) or an open text file is written in place and left
    open: it belongs to the caller.
    """
    if isinstance(target, int) and not isinstance(target, bool):
        with open(target, "w", encoding="utf-8", closefd=False) as handle:
            handle.write(text)
        return
    if hasattr(target, "write"):
        target.write(text)
        return
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"{where}: path must be a path, an open text file or a file descriptor; got {target!r}."
        )
    path: Any = os.fspath(target)
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(f"{where}: path must be a non-empty text path; got {target!r}.")
    folder = os.path.dirname(os.path.abspath(path))
    handle_fd, temporary = tempfile.mkstemp(prefix=".lrscout-", suffix=".tmp", dir=folder)
    try:
        with open(handle_fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if os.path.exists(path):
            shutil.copymode(path, temporary)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(target: PathOrFile, data: Mapping[str, Any], *, where: str = "to_json") -> None:
    """Serialise ``data`` fully first, then write it with :func:`write_text`."""
    write_text(target, json.dumps(data, indent=1, allow_nan=False) + "\n", where=where)


def read_json(path: str | os.PathLike[str], where: str) -> Any:
    """Parse a JSON file; bare ``NaN`` / ``Infinity`` (not JSON) are refused.

    Nesting deeper than Python's recursion limit and integers longer than
    Python will parse are refused as not being an lrscout file, not raised
    as ``RecursionError`` or an interpreter limit.
    """

    def reject(constant: str) -> None:
        raise InvalidArgumentError(f"{where}: bare {constant} is not JSON; lrscout writes it as a string.")

    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle, parse_constant=reject)
        except InvalidArgumentError:
            raise
        except (ValueError, RecursionError) as error:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is
            # Python's refusal of an integer with too many digits.
            detail = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            raise InvalidArgumentError(
                f"{where}: {os.fspath(path)!r} is not valid JSON ({detail})."
            ) from None
