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
