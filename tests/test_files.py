"""Result files: nothing the user has is lost, and any damaged file is refused with a ValueError."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lrscout
from lrscout import NoiseScaleResult, RangeTestResult


def _range_result():
    def step_fn(lr):
        step_fn.w -= lr * step_fn.w
        return 0.5 * step_fn.w**2 + 0.01

    step_fn.w = 1.0
    return lrscout.range_test(step_fn, start_lr=1e-3, end_lr=10.0, num_steps=40, info={"batch_size": 8})


def _noise_result():
    return lrscout.estimate_noise_scale(
        [2.1, 1.9, 2.0, 2.2], [1.2, 1.1, 1.0, 1.3], small_batch=8, big_batch=64, n_samples=500, random_state=0
    )


@pytest.mark.parametrize("make", [_range_result, _noise_result])
def test_a_failed_write_leaves_the_old_file_and_no_litter(make, tmp_path, monkeypatch):
    result = make()
    path = tmp_path / "result.json"
    path.write_text("the user's earlier file\n")

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        result.to_json(path)
    assert path.read_text() == "the user's earlier file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_failed_serialisation_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    path.write_text("keep me\n")

    def broken(*args, **kwargs):
        raise ValueError("cannot serialise")

    monkeypatch.setattr(json, "dumps", broken)
    with pytest.raises(ValueError, match="cannot serialise"):
        _range_result().to_json(path)
    assert path.read_text() == "keep me\n"


def test_csv_is_written_atomically_too(tmp_path, monkeypatch):
    path = tmp_path / "curve.csv"
    path.write_text("old\n")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        _range_result().to_csv(path)
    assert path.read_text() == "old\n"


def test_a_file_descriptor_stays_open_and_an_open_file_is_written(tmp_path):
    result = _range_result()
    fd = os.open(tmp_path / "fd.json", os.O_WRONLY | os.O_CREAT)
    try:
        result.to_json(fd)
        os.fstat(fd)  # still open: raises OSError if to_json closed it
    finally:
        os.close(fd)
    assert RangeTestResult.from_json(tmp_path / "fd.json") == result
    buffer = io.StringIO()
    result.to_json(buffer)
    assert RangeTestResult.from_dict(json.loads(buffer.getvalue())) == result


def test_an_existing_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    _range_result().to_json(path)
    assert os.stat(path).st_mode & 0o777 == 0o640


# Any damage to a valid file: an equal result or a ValueError, never anything else.

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _mutations(data):
    keys = sorted(data)
    replace = st.tuples(st.just("replace"), st.sampled_from(keys), _JSON)
    drop = st.tuples(st.just("drop"), st.sampled_from(keys), st.none())
    add = st.tuples(st.just("add"), st.text(max_size=8), _JSON)
    element = st.tuples(st.just("element"), st.sampled_from(keys), _JSON)
    return st.lists(st.one_of(replace, drop, add, element), min_size=1, max_size=3)


def _apply(data, mutations):
    data = json.loads(json.dumps(data))
    for kind, key, value in mutations:
        if kind == "replace":
            data[key] = value
        elif kind == "drop":
            data.pop(key, None)
        elif kind == "add":
            data[key] = value
        elif isinstance(data.get(key), list) and data[key]:
            data[key][len(data[key]) // 2] = value
    return data


@pytest.mark.parametrize("make", [_range_result, _noise_result])
def test_any_mutation_loads_equal_or_raises_value_error(make, tmp_path):
    original = make()
    valid = original.to_dict()
    kind = type(original)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_mutations(valid))
    def check(mutations):
        path = tmp_path / "mutated.json"
        path.write_text(json.dumps(_apply(valid, mutations), allow_nan=True))
        try:
            loaded = kind.from_json(path)
        except ValueError:
            return
        assert isinstance(loaded, kind)
        loaded.to_dict()  # every derived value still computes
        repr(loaded)

    check()


def test_reading_keeps_the_values_exactly(tmp_path):
    result = _range_result()
    result.to_json(tmp_path / "r.json")
    again = RangeTestResult.from_json(tmp_path / "r.json")
    assert again == result and np.array_equal(again.lrs, result.lrs)
    noise = _noise_result()
    noise.to_json(tmp_path / "n.json")
    assert NoiseScaleResult.from_json(tmp_path / "n.json") == noise


# Descriptors and open files: the caller's, left open, whatever happens.


@pytest.mark.parametrize("content", ["valid", "not JSON", "not a result", "bad entry"])
@pytest.mark.parametrize("kind", ["descriptor", "binary file", "text file"])
@pytest.mark.parametrize("result_class", [RangeTestResult, NoiseScaleResult], ids=["range", "noise"])
def test_from_json_leaves_a_descriptor_or_a_file_open(result_class, kind, content, tmp_path):
    reader = result_class.from_json
    valid = _range_result() if result_class is RangeTestResult else _noise_result()
    text = {
        "valid": json.dumps(valid.to_dict()),
        "not JSON": "{",
        "not a result": "[1, 2]",
        "bad entry": json.dumps({**valid.to_dict(), "info": []}),
    }[content]
    path = tmp_path / "r.json"
    path.write_text(text)
    fd = os.open(path, os.O_RDONLY)
    handle = None if kind == "descriptor" else os.fdopen(fd, "rb" if kind == "binary file" else "r")
    try:
        if content == "valid":
            assert reader(fd if handle is None else handle) == valid
        else:
            with pytest.raises(ValueError, match="Result"):
                reader(fd if handle is None else handle)
        os.fstat(fd)  # still open: raises OSError if from_json closed it
        assert handle is None or not handle.closed
    finally:
        if handle is None:
            os.close(fd)
        else:
            handle.close()


def test_to_json_and_from_json_share_a_descriptor_rule(tmp_path):
    result = _range_result()
    fd = os.open(tmp_path / "r.json", os.O_RDWR | os.O_CREAT)
    try:
        result.to_json(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        assert RangeTestResult.from_json(fd) == result
        os.fstat(fd)
    finally:
        os.close(fd)


# Where a file is written: atomically over a regular file, in place into anything else.


def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path):
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    result = _range_result()
    result.to_json(fifo)
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert RangeTestResult.from_dict(json.loads(received[0])) == result


def test_a_descriptor_path_is_written_through(tmp_path):
    read_end, write_end = os.pipe()
    try:
        result = _range_result()
        result.to_json(f"/dev/fd/{write_end}")  # what bash's >(...) hands over
        os.close(write_end)
        write_end = -1
        with os.fdopen(read_end, "rb", closefd=False) as handle:
            assert RangeTestResult.from_dict(json.loads(handle.read())) == result
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_descriptor_path_to_a_file_appends_and_keeps_the_file(tmp_path):
    path = tmp_path / "log.txt"
    with open(path, "w") as handle:
        handle.write("report\n")
        handle.flush()
        _range_result().to_csv(f"/dev/fd/{handle.fileno()}")
        inode = os.fstat(handle.fileno()).st_ino
    assert os.stat(path).st_ino == inode  # not replaced behind the descriptor
    assert path.read_text().startswith("report\nstep,lr,loss,smoothed_loss,trend\n")


def test_a_symlink_stays_a_link_and_its_target_is_written(tmp_path):
    (tmp_path / "target.json").write_text("old")
    os.symlink("target.json", tmp_path / "link.json")
    result = _range_result()
    result.to_json(tmp_path / "link.json")
    assert os.path.islink(tmp_path / "link.json")
    assert RangeTestResult.from_json(tmp_path / "target.json") == result


@pytest.mark.parametrize("name", ["x" * 300 + ".json", "missing/r.json"])
def test_a_path_the_system_refuses_is_named_not_the_temporary_file(name, tmp_path):
    with pytest.raises(OSError, match=r"name too long|No such file") as caught:
        _range_result().to_json(tmp_path / name)
    assert caught.value.filename == str(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_plot_is_rendered_before_anything_is_written(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    path = tmp_path / "plot.png"
    path.write_bytes(b"the user's plot")
    with pytest.raises(ValueError, match="not supported"):
        _range_result().plot(path=tmp_path / "plot.unknownformat")
    assert path.read_bytes() == b"the user's plot"
    _range_result().plot(path=path)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


# Long curves: read a chunk at a time, the same numbers, without a Python float per entry.


def _long_result(n):
    rng = np.random.default_rng(0)
    lrs = np.geomspace(1e-7, 10.0, n)
    losses = rng.lognormal(size=n) * 10.0 ** rng.integers(-300, 300, size=n)
    losses[::97] = np.nan
    losses[5::101] = np.inf
    losses[7::103] = -np.inf
    losses[11::107] = -0.0
    losses[13::109] = 5e-324
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=losses[::-1],
        stop_reason="completed",
        start_lr=1e-7,
        end_lr=10.0,
        num_steps=n,
        mode="exponential",
        smoothing=0.98,
        divergence_factor=4.0,
    )


def test_a_long_result_reads_back_bitwise(tmp_path):
    result = _long_result(300_000)
    result.to_json(tmp_path / "long.json")
    again = RangeTestResult.from_json(tmp_path / "long.json")
    assert again == result
    for name in ("lrs", "losses", "smoothed_losses"):
        assert getattr(again, name).tobytes() == getattr(result, name).tobytes()  # -0.0 and 5e-324 too


def test_reading_a_long_result_costs_its_arrays_not_a_float_per_entry(tmp_path):
    import tracemalloc

    path = tmp_path / "long.json"
    _long_result(300_000).to_json(path)
    size = os.path.getsize(path)
    tracemalloc.start()
    try:
        RangeTestResult.from_json(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The file's bytes and the three arrays (twice: read, then kept), with room for one
    # read chunk; a Python float per entry (32 bytes and a pointer) would be far over.
    arrays = 3 * 8 * 300_000
    assert peak < size + 2 * arrays + 64 * 2**20, (peak, size)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_chunked_reader_agrees_with_json_on_any_damage(data):
    from lrscout._jsonio import decode_floats, read_json

    text = json.dumps(_long_result(60).to_dict())
    position = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(
        st.sampled_from(["", ",", "]", "[", '"', "x", " ", "1e400", "NaN", "-", "0", "{}", "\\"])
    )
    damaged = text[:position] + insert + text[position + cut :]

    def read(fast):
        try:
            parsed = read_json(
                io.BytesIO(damaged.encode()), "r", float_arrays=("lrs", "losses") if fast else ()
            )
            if isinstance(parsed, dict):
                return {
                    key: decode_floats(value, key, "r").tobytes() if key in ("lrs", "losses") else value
                    for key, value in parsed.items()
                }
            return parsed
        except ValueError as error:
            return type(error)

    assert read(True) == read(False)
