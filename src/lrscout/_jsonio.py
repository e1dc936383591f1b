"""Plain-JSON files for lrscout's results: exact floats, no pickles, checked on the way in."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Mapping
from typing import IO, Any, Union

import numpy as np

from ._errors import InvalidArgumentError


def encode_float(x: float) -> float | str:
    """``x``, or ``"nan"``, ``"inf"``, ``"-inf"``: strict JSON has no non-finite numbers."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def decode_float(value: Any, name: str, where: str) -> float:
    """The inverse of :func:`encode_float`, refusing anything else (an integer too big for a float too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidArgumentError(f"{where}: {name} must be a number; got {value!r}.")
    if isinstance(value, str) and value not in _NON_FINITE:
        raise InvalidArgumentError(
            f"{where}: {name} must be a number, 'nan', 'inf' or '-inf'; got {value!r}."
        )
    try:
        number = float(value)
    except OverflowError:
        digits = math.floor(int(value).bit_length() * math.log10(2)) + 1
        raise InvalidArgumentError(
            f"{where}: {name} must be a number that a float can hold (at most about 1.8e308); "
            f"got an integer of about {digits} digits."
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        # A JSON number past the float range (1e400) reads as inf; lrscout writes "inf".
        raise InvalidArgumentError(
            f"{where}: {name} must be a number that a float can hold (at most about 1.8e308), or the "
            f"string 'inf', '-inf' or 'nan'; got {value!r}."
        )
    return number


class DecodedFloats:
    """A JSON list of encoded floats already decoded by :func:`read_json` (``float_arrays=``)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def decode_floats(values: Any, name: str, where: str, *, offset: int = 0) -> np.ndarray:
    """A JSON list of encoded floats as a ``float64`` array.

    One pass in C for the usual list of numbers (and ``"nan"``, ``"inf"``,
    ``"-inf"``); only a list that holds something else pays for the check of
    each entry, which names the first bad one (``name[i]``, ``i`` counted
    from ``offset``).
    """
    if isinstance(values, DecodedFloats):
        return values.array
    if not isinstance(values, list):
        raise InvalidArgumentError(f"{where}: {name} must be a list; got {type(values).__name__}.")
    kinds = set(map(type, values))
    if kinds <= {float, int, str}:
        entries: list[Any] = values
        if str in kinds:
            if set(filter(_is_str, values)) <= _NON_FINITE.keys():
                entries = [_NON_FINITE[v] if type(v) is str else v for v in values]
            else:
                entries = []  # a string that is not a float's name: named below
        if entries or not values:
            try:
                decoded = np.array(entries, dtype=np.float64)
            except OverflowError:
                pass  # an integer too big for a float: named below
            else:
                odd = np.flatnonzero(~np.isfinite(decoded))
                if all(type(values[i]) is str for i in odd.tolist()):
                    return decoded
                # else a number past the float range (1e400): named below
    decoded = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        decoded[i] = decode_float(value, f"{name}[{offset + i}]", where)
    return decoded


def _is_str(value: Any) -> bool:
    return type(value) is str


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
#: What a reader takes: a path, a file descriptor or an open file (text or binary).
Source = Union[str, "os.PathLike[str]", int, IO[Any]]

#: ``/proc/<pid>/fd``: a path in it (``/dev/stdout``, ``/dev/fd/3``) names an open descriptor.
_DESCRIPTOR_FOLDER = re.compile(r"/proc/(self|thread-self|\d+)(/task/\d+)?/fd")


def write_text(target: PathOrFile, text: str | bytes, *, where: str) -> None:
    """Write ``text`` (or bytes) to a path, a descriptor or an open file, losing nothing on the way.

    A regular file, or a path where nothing is yet, is written atomically:
    through a temporary file in the same folder, renamed over the target
    only once everything is written, so an error half way (a full disk, an
    interrupt) leaves an existing file as it was. The target is the file at
    the end of the path's symbolic links (the links stay links). Anything
    else is written in place and appended to, never replaced: a FIFO, a
    device (``/dev/null``), and a path that names an open descriptor
    (``/dev/stdout``, ``/dev/fd/3``, bash's ``>(...)``). A file descriptor
    (``int``) or an open file is written in place and left open: it
    belongs to the caller.

    Raises:
        OSError: When the system refuses, naming ``target`` (not the
            temporary file).
    """
    binary = isinstance(text, bytes)
    mode, encoding = ("b", None) if binary else ("", "utf-8")
    if isinstance(target, int) and not isinstance(target, bool):
        with open(target, "w" + mode, encoding=encoding, closefd=False) as handle:
            handle.write(text)
        return
    if hasattr(target, "write"):
        stream: Any = target
        stream.write(text)
        return
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"{where}: path must be a path, an open text file or a file descriptor; got {target!r}."
        )
    path: Any = os.fspath(target)
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(f"{where}: path must be a non-empty text path; got {target!r}.")
    if not is_replaceable(path):
        with open(path, "a" + mode, encoding=encoding) as handle:
            handle.write(text)
        return
    real = os.path.realpath(path)
    temporary = None
    try:
        handle_fd, temporary = tempfile.mkstemp(prefix=".lrscout-", suffix=".tmp", dir=os.path.dirname(real))
        with open(handle_fd, "w" + mode, encoding=encoding, newline=None if binary else "") as handle:
            handle.write(text)
        if os.path.exists(real):
            shutil.copymode(real, temporary)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, real)
        temporary = None
    except OSError as error:
        raise OSError(error.errno, error.strerror, path) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.remove(temporary)


def is_replaceable(path: str) -> bool:
    """Whether :func:`write_text` writes ``path`` atomically: a regular file, or nothing there yet.

    Not a FIFO, a device, or a path that names an open descriptor
    (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``), even one that
    leads to a regular file: replacing that file would cut it off from the
    descriptor.
    """
    if _names_descriptor(path):
        return False
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return not os.path.lexists(path) or os.path.islink(path)  # a dangling link: its target is new
    except OSError:
        return True  # the write will say what is wrong
    return stat.S_ISREG(mode)


def _names_descriptor(path: str) -> bool:
    """Whether ``path``, or a link on its way, lies in a ``/proc/<pid>/fd`` folder."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if _DESCRIPTOR_FOLDER.fullmatch(os.path.realpath(os.path.dirname(current))):
            return True
        try:
            link = os.readlink(current)
        except OSError:
            return False
        current = os.path.abspath(os.path.join(os.path.dirname(current), link))
    return False


def output_problem(path: str) -> str | None:
    """What would stop :func:`write_text` from writing ``path``, found before any work; ``None`` if nothing.

    For an atomic write (see :func:`is_replaceable`) the folder must exist
    and take a new file: a temporary file is made there and removed at once,
    which also tries the name's length; an existing file must be writable.
    Anything else (a FIFO, a device, a descriptor) must be writable.
    """
    if not path.strip():
        return "must be a file path"
    if os.path.isdir(path):
        return "is a folder; give a file path"
    if not is_replaceable(path):
        return None if os.access(path, os.W_OK) else "permission denied"
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        return f"the folder {os.path.dirname(os.path.abspath(path))!r} does not exist"
    if os.path.exists(real) and not os.access(real, os.W_OK):
        return "permission denied"
    name = os.path.basename(real)
    try:
        longest = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    if len(os.fsencode(name)) > longest:
        return (
            f"the file name is {len(os.fsencode(name))} bytes long; this file system takes at most {longest}"
        )
    try:
        handle_fd, temporary = tempfile.mkstemp(prefix=".lrscout-", suffix=".tmp", dir=folder)
    except OSError as error:
        return "permission denied" if error.errno in (errno.EACCES, errno.EPERM) else str(error.strerror)
    os.close(handle_fd)
    with contextlib.suppress(OSError):
        os.remove(temporary)
    return None


def file_identity(path: str) -> tuple[str, Any]:
    """What makes two paths one file: its device and inode when it exists, else its resolved path.

    Hard links and symbolic links to one file share it; two character
    devices never clash (two outputs may both go to ``/dev/null``).
    """
    try:
        info = os.stat(path)
    except OSError:
        return ("path", os.path.normcase(os.path.realpath(path)))
    if stat.S_ISCHR(info.st_mode):
        return ("device", (path, id(path)))
    return ("inode", (info.st_dev, info.st_ino))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(target: PathOrFile, data: Mapping[str, Any], *, where: str = "to_json") -> None:
    """Serialise ``data`` fully first, then write it with :func:`write_text`."""
    write_text(target, json.dumps(data, indent=1, allow_nan=False) + "\n", where=where)


def read_json(source: Source, where: str, *, float_arrays: Collection[str] = ()) -> Any:
    """Parse a JSON document from a path, a file descriptor or an open file (left open).

    Bare ``NaN`` / ``Infinity`` (not JSON) are refused. Nesting deeper than
    Python's recursion limit and integers longer than Python will parse are
    refused as not being an lrscout file, not raised as ``RecursionError``
    or an interpreter limit.

    With ``float_arrays``, a top-level object's lists of those names are
    read straight into ``float64`` arrays, a chunk at a time, and come back
    as :class:`DecodedFloats` for :func:`decode_floats`: a million-entry
    curve costs its array, not a Python float per entry.
    """

    def reject(constant: str) -> None:
        raise InvalidArgumentError(f"{where}: bare {constant} is not JSON; lrscout writes it as a string.")

    data = _read_bytes(source, where)
    try:
        if float_arrays:
            fast = _FloatArrayReader(data, frozenset(float_arrays), where, reject).read()
            if fast is not None:
                return fast
        return json.loads(data.decode("utf-8"), parse_constant=reject)
    except InvalidArgumentError:
        raise
    except (ValueError, RecursionError) as error:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is
        # Python's refusal of an integer with too many digits.
        detail = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise InvalidArgumentError(f"{where}: {_source_name(source)} is not valid JSON ({detail}).") from None


def _read_bytes(source: Source, where: str) -> bytes:
    """Everything in ``source``; a descriptor or an open file is read from where it is, and left open."""
    if isinstance(source, int) and not isinstance(source, bool):
        with open(source, "rb", closefd=False) as handle:
            return handle.read()
    if hasattr(source, "read"):
        content = source.read()
        if isinstance(content, str):
            try:
                return content.encode("utf-8")
            except UnicodeEncodeError as error:
                raise InvalidArgumentError(
                    f"{where}: {_source_name(source)} is not valid JSON ({error})."
                ) from None
        if not isinstance(content, bytes):
            raise InvalidArgumentError(
                f"{where}: path must be a path, a file descriptor or an open file; "
                f"its read() gave {type(content).__name__}."
            )
        return content
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"{where}: path must be a path, a file descriptor or an open file; got {source!r}."
        )
    with open(source, "rb") as handle:
        return handle.read()


def _source_name(source: Source) -> str:
    if isinstance(source, int) and not isinstance(source, bool):
        return f"file descriptor {source}"
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    name = getattr(source, "name", None)
    return repr(name) if isinstance(name, str) else repr(source)


_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_OR_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SCALAR = re.compile(rb"[^,:\]}\s]+")
#: Bytes of a float array parsed at a time: its Python floats live only that long.
_CHUNK = 1 << 20


class _FloatArrayReader:
    """One top-level JSON object, its float arrays read a chunk at a time.

    Every value is parsed by ``json`` itself (so the grammar and the errors
    are Python's), a small one whole and a float array in chunks split at
    commas. Anything this reader does not expect (a document that is not an
    object, a bad token, a string with a comma inside an array) makes
    :meth:`read` return ``None``, and the caller parses the whole document
    the plain way, which then says what is wrong.
    """

    def __init__(self, data: bytes, names: frozenset[str], where: str, reject: Callable[[str], None]) -> None:
        self.data, self.names, self.where, self.reject = data, names, where, reject

    def _skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.data, pos)
        return pos if match is None else match.end()

    def _parse(self, start: int, stop: int) -> Any:
        return json.loads(self.data[start:stop].decode("utf-8"), parse_constant=self.reject)

    def read(self) -> dict[str, Any] | None:
        try:
            return self._object()
        except InvalidArgumentError:
            raise
        except (ValueError, RecursionError):
            return None  # the plain parse says where

    def _object(self) -> dict[str, Any] | None:
        data = self.data
        pos = self._skip(0)
        if data[pos : pos + 1] != b"{":
            return None
        found: dict[str, Any] = {}
        pos = self._skip(pos + 1)
        if data[pos : pos + 1] == b"}":
            return found if self._skip(pos + 1) == len(data) else None
        while True:
            key = _STRING.match(data, pos)
            if key is None:
                return None
            name = self._parse(pos, key.end())
            pos = self._skip(key.end())
            if data[pos : pos + 1] != b":":
                return None
            pos = self._skip(pos + 1)
            if name in self.names and data[pos : pos + 1] == b"[":
                parsed = self._float_array(pos, name)
                if parsed is None:
                    return None
                found[name], pos = parsed
            else:
                end = self._value_end(pos)
                if end is None:
                    return None
                found[name] = self._parse(pos, end)
                pos = end
            pos = self._skip(pos)
            mark = data[pos : pos + 1]
            if mark == b"}":
                return found if self._skip(pos + 1) == len(data) else None
            if mark != b",":
                return None
            pos = self._skip(pos + 1)

    def _value_end(self, pos: int) -> int | None:
        """Where the value at ``pos`` ends, by its brackets and strings (``json`` checks the rest)."""
        data = self.data
        first = data[pos : pos + 1]
        if first == b'"':
            match = _STRING.match(data, pos)
            return None if match is None else match.end()
        if first in (b"{", b"["):
            depth = 0
            for token in _BRACKET_OR_STRING.finditer(data, pos):
                mark = token.group()
                if mark in (b"{", b"["):
                    depth += 1
                elif mark in (b"}", b"]"):
                    depth -= 1
                    if depth == 0:
                        return token.end()
            return None
        match = _SCALAR.match(data, pos)
        return None if match is None else match.end()

    def _float_array(self, pos: int, name: str) -> tuple[DecodedFloats, int] | None:
        """The float array at ``pos`` (its ``[``) and where it ends, read a chunk at a time."""
        data = self.data
        close = data.find(b"]", pos)
        if close < 0:
            return None
        start = pos + 1
        if self._skip(start) == close:
            return DecodedFloats(np.empty(0, dtype=np.float64)), close + 1
        values = np.empty(data.count(b",", start, close) + 1, dtype=np.float64)
        count = 0
        while True:
            stop = close
            if close - start > _CHUNK:
                stop = data.rfind(b",", start, start + _CHUNK)
                if stop < 0:
                    stop = data.find(b",", start + _CHUNK, close)
                    stop = close if stop < 0 else stop
            text = b"[" + data[start:stop] + b"]"
            piece = json.loads(text.decode("utf-8"), parse_constant=self.reject)
            if not piece or count + len(piece) > len(values):
                return None  # an empty entry ("[1,,2]") or a comma inside a string: the plain way says
            values[count : count + len(piece)] = decode_floats(piece, name, self.where, offset=count)
            count += len(piece)
            if stop == close:
                break
            start = stop + 1
        if count != len(values):
            return None
        return DecodedFloats(values), close + 1
