"""Bad inputs and faults, as a hostile user would make them: one table, one clear error each.

Every row names the call, the exception lrscout must raise and a pattern the
message must hold (the argument at fault). ``InvalidArgumentError`` is both a
``ValueError`` and a ``TypeError``; ``NoSuggestionError`` is a ``ValueError``.
The command-line rows run ``python -m lrscout`` in a subprocess: exit status
2, one line on stderr, no traceback.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import lrscout
from lrscout import InvalidArgumentError, NoSuggestionError, RangeTestResult, RangeTestState
from lrscout.models import LinearRegressor, SoftmaxClassifier, compare_variants, find_lr, noise_scale

X = np.random.default_rng(0).normal(size=(20, 3))
Y = X @ [1.0, 2.0, 3.0]
LABELS = np.arange(20) % 2


def _ok(lr):
    return 1.0


def _returns(value):
    return lambda: lrscout.range_test(lambda lr: value, num_steps=3)


def _ramp(**change):
    kwargs = {"start_lr": 1e-3, "end_lr": 1.0, "num_steps": 10, "mode": "exponential"}
    kwargs.update(change)
    return lambda: lrscout.range_test(_ok, **kwargs)


def _state(**change):
    kwargs = {
        "start_lr": 1e-3,
        "end_lr": 1.0,
        "num_steps": 10,
        "mode": "exponential",
        "smoothing": 0.9,
        "divergence_factor": 4.0,
    }
    kwargs.update(change)
    return lambda: RangeTestState(**kwargs)


def _result(**change):
    lrs = np.geomspace(1e-4, 1.0, 6)
    kwargs = {
        "lrs": lrs,
        "losses": [1.0, 0.9, 0.6, 0.4, 0.5, 2.0],
        "smoothed_losses": [1.0, 0.9, 0.6, 0.4, 0.5, 2.0],
        "stop_reason": "completed",
        "start_lr": 1e-4,
        "end_lr": 1.0,
        "num_steps": 6,
        "mode": "exponential",
        "smoothing": 0.0,
        "divergence_factor": 4.0,
    }
    kwargs.update(change)
    return lambda: RangeTestResult(**kwargs)


def _suggest(method, losses):
    n = len(losses)
    result = RangeTestResult(
        lrs=np.geomspace(1e-5, 1.0, n),
        losses=losses,
        smoothed_losses=losses,
        stop_reason="completed",
        start_lr=1e-5,
        end_lr=1.0,
        num_steps=n,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
    )
    return lambda: result.suggest(method)


def _noise(**change):
    kwargs = {
        "b_simple": 8.0,
        "grad_norm_sq": 1.0,
        "trace_cov": 8.0,
        "interval": (6.0, 10.0),
        "grad_norm_sq_interval": (0.8, 1.2),
        "trace_cov_interval": (7.0, 9.0),
        "confidence": 0.95,
        "method": "two-batch",
        "small_batch": 8,
        "big_batch": 64,
        "n_samples": 1000,
        "pair_grad_norm_sq": [1.0, 1.0],
        "pair_trace_cov": [8.0, 8.0],
    }
    kwargs.update(change)
    return lambda: lrscout.NoiseScaleResult(**kwargs)


FLAT = [2.3] * 40
RISING = list(np.linspace(1.0, 3.0, 40))

CORE = [
    # step_fn must return one real number
    (
        "step_fn returns None",
        _returns(None),
        InvalidArgumentError,
        r"^step_fn must return the step's loss.*None",
    ),
    ("step_fn returns str", _returns("1.5"), InvalidArgumentError, r"step_fn must return.*str '1.5'"),
    ("step_fn returns bytes", _returns(b"1"), InvalidArgumentError, r"step_fn must return"),
    ("step_fn returns bool", _returns(True), InvalidArgumentError, r"step_fn must return.*bool True"),
    (
        "step_fn returns array",
        _returns(np.ones(2)),
        InvalidArgumentError,
        r"step_fn.*shape \(2,\).*one element",
    ),
    ("step_fn returns list", _returns([1.0]), InvalidArgumentError, r"step_fn must return.*list"),
    ("step_fn returns complex", _returns(1 + 2j), InvalidArgumentError, r"step_fn must return"),
    ("step_fn returns dict", _returns({"loss": 1.0}), InvalidArgumentError, r"step_fn must return.*dict"),
    ("step_fn returns 0-d complex array", _returns(np.array(1j)), InvalidArgumentError, r"step_fn.*complex"),
    # A flag is not a loss, in any of its forms.
    ("step_fn returns np.bool_", _returns(np.True_), InvalidArgumentError, r"step_fn must return.*a boolean"),
    (
        "step_fn returns 0-d bool array",
        _returns(np.array(False)),
        InvalidArgumentError,
        r"step_fn must return.*a boolean",
    ),
    (
        "step_fn returns 1-element bool array",
        _returns(np.array([True])),
        InvalidArgumentError,
        r"step_fn must return.*a boolean",
    ),
    (
        "read_losses returns None",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda chunk: None),
        InvalidArgumentError,
        r"range_test: read_losses must return a sequence of losses, one per step it is given \(2\)",
    ),
    (
        "read_losses returns a string",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda chunk: "12"),
        InvalidArgumentError,
        r"read_losses must return a sequence",
    ),
    (
        "read_losses returns strings",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda c: ["a", "b"]),
        InvalidArgumentError,
        r"range_test: read_losses must return the step's loss as a real number.*str 'a'",
    ),
    (
        "read_losses returns numeric strings",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda c: ["1", "2"]),
        InvalidArgumentError,
        r"read_losses must return.*str '1'",
    ),
    (
        "read_losses returns None entries",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda c: [None, 1.0]),
        InvalidArgumentError,
        r"read_losses must return.*None",
    ),
    (
        "read_losses returns bools",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda c: [np.True_] * 2),
        InvalidArgumentError,
        r"read_losses must return.*a boolean",
    ),
    (
        "read_losses returns a number",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda c: 1.0),
        InvalidArgumentError,
        r"read_losses must return a sequence",
    ),
    (
        "record takes a bool",
        lambda: _state()().record([True]),
        InvalidArgumentError,
        r"range_test: each recorded loss must be a real number.*a boolean",
    ),
    (
        "record takes None",
        lambda: _state()().record([1.0, None]),
        InvalidArgumentError,
        r"each recorded loss must be a real number.*None",
    ),
    (
        "step_fn not callable",
        lambda: lrscout.range_test(3.0),
        InvalidArgumentError,
        r"step_fn must be callable",
    ),
    (
        "read_losses too few",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda chunk: [1.0]),
        InvalidArgumentError,
        r"read_losses must return one loss per step it is given \(2\); got 1",
    ),
    (
        "read_losses too many",
        lambda: lrscout.range_test(_ok, num_steps=4, sync_every=2, read_losses=lambda c: [1.0] * 3),
        InvalidArgumentError,
        r"read_losses must return one loss per step",
    ),
    (
        "read_losses not callable",
        lambda: lrscout.range_test(_ok, read_losses=5),
        InvalidArgumentError,
        r"read_losses must be callable",
    ),
    (
        "info not JSON",
        lambda: lrscout.range_test(_ok, num_steps=2, info={"f": object()}),
        InvalidArgumentError,
        "info",
    ),
    (
        "info with NaN",
        lambda: lrscout.range_test(_ok, num_steps=2, info={"x": math.nan}),
        InvalidArgumentError,
        "info",
    ),
    (
        "info not a mapping",
        lambda: lrscout.range_test(_ok, num_steps=2, info=[1]),
        InvalidArgumentError,
        "info",
    ),
    ("start_lr zero", _ramp(start_lr=0.0), InvalidArgumentError, r"start_lr must be positive"),
    ("start_lr negative", _ramp(start_lr=-1e-3), InvalidArgumentError, r"start_lr must be positive"),
    ("start_lr nan", _ramp(start_lr=math.nan), InvalidArgumentError, r"start_lr must be finite"),
    ("start_lr inf", _ramp(start_lr=math.inf), InvalidArgumentError, r"start_lr must be finite"),
    ("start_lr string", _ramp(start_lr="1e-3"), InvalidArgumentError, r"start_lr must be a real number"),
    ("start_lr bool", _ramp(start_lr=True), InvalidArgumentError, r"start_lr must be a real number"),
    ("start_lr None", _ramp(start_lr=None), InvalidArgumentError, r"start_lr must be a real number"),
    ("end_lr below start", _ramp(end_lr=1e-4), InvalidArgumentError, r"end_lr must be greater than start_lr"),
    ("end_lr equal start", _ramp(end_lr=1e-3), InvalidArgumentError, r"end_lr must be greater than start_lr"),
    ("end_lr inf", _ramp(end_lr=math.inf), InvalidArgumentError, r"end_lr must be finite"),
    # Rates that cannot all differ: the test would train every step, then fail building its result.
    (
        "end_lr = nextafter(start_lr)",
        _ramp(end_lr=math.nextafter(1e-3, 1.0)),
        InvalidArgumentError,
        r"end_lr must be far enough above start_lr \(0.001\) for 10 distinct learning rates",
    ),
    (
        "end_lr = nextafter(start_lr), linear",
        _ramp(end_lr=math.nextafter(1e-3, 1.0), mode="linear"),
        InvalidArgumentError,
        r"end_lr must be far enough above start_lr",
    ),
    (
        "end_lr a hair above start_lr, many steps",
        _ramp(start_lr=1.0, end_lr=1.0 + 1e-9, num_steps=10**6),
        InvalidArgumentError,
        r"for 1000000 distinct learning rates",
    ),
    (
        "end_lr a few floats above start_lr, as a state",
        _state(start_lr=1.0, end_lr=1.0 + 4e-16),
        InvalidArgumentError,
        r"end_lr must be far enough above start_lr \(1.0\)",
    ),
    (
        "end_lr above max_lr",
        _ramp(end_lr=10.0, max_lr=1.0),
        InvalidArgumentError,
        r"end_lr must be at most 1",
    ),
    ("max_lr zero", _ramp(max_lr=0.0), InvalidArgumentError, r"max_lr must be positive"),
    ("max_lr nan", _ramp(max_lr=math.nan), InvalidArgumentError, r"max_lr must be finite"),
    ("num_steps 1", _ramp(num_steps=1), InvalidArgumentError, r"num_steps must be an integer >= 2"),
    ("num_steps 0", _ramp(num_steps=0), InvalidArgumentError, r"num_steps must be an integer >= 2"),
    ("num_steps negative", _ramp(num_steps=-5), InvalidArgumentError, r"num_steps must be an integer >= 2"),
    ("num_steps fraction", _ramp(num_steps=2.5), InvalidArgumentError, r"num_steps must be a whole number"),
    ("num_steps string", _ramp(num_steps="10"), InvalidArgumentError, r"num_steps must be an integer"),
    ("num_steps None", _ramp(num_steps=None), InvalidArgumentError, r"num_steps must be an integer"),
    ("mode unknown", _ramp(mode="cosine"), InvalidArgumentError, r"mode must be one of"),
    ("mode None", _ramp(mode=None), InvalidArgumentError, r"mode must be a string"),
    ("mode capitalised", _ramp(mode="Linear"), InvalidArgumentError, r"mode must be one of"),
    ("smoothing 1", _ramp(smoothing=1.0), InvalidArgumentError, r"smoothing must be < 1.0"),
    ("smoothing negative", _ramp(smoothing=-0.1), InvalidArgumentError, r"smoothing must be >= 0.0"),
    ("smoothing nan", _ramp(smoothing=math.nan), InvalidArgumentError, r"smoothing must be finite"),
    (
        "divergence_factor 1",
        _ramp(divergence_factor=1.0),
        InvalidArgumentError,
        r"divergence_factor must be > 1",
    ),
    (
        "divergence_factor 0",
        _ramp(divergence_factor=0),
        InvalidArgumentError,
        r"divergence_factor must be > 1",
    ),
    ("stop_on_divergence str", _ramp(stop_on_divergence="no"), InvalidArgumentError, r"stop_on_divergence"),
    ("sync_every 0", _ramp(sync_every=0), InvalidArgumentError, r"sync_every must be an integer >= 1"),
    (
        "sync_every fraction",
        _ramp(sync_every=1.5),
        InvalidArgumentError,
        r"sync_every must be a whole number",
    ),
    ("progress int", _ramp(progress=1), InvalidArgumentError, r"progress must be True or False"),
    ("state smoothing", _state(smoothing=2.0), InvalidArgumentError, r"RangeTestState|smoothing must be"),
    ("state mode", _state(mode="log"), InvalidArgumentError, r"mode must be one of"),
    ("state num_steps", _state(num_steps=1), InvalidArgumentError, r"num_steps must be"),
    (
        "linear_ramp start",
        lambda: lrscout.linear_ramp(0.0, 1.0, 5),
        InvalidArgumentError,
        r"linear_ramp: start_lr",
    ),
    (
        "linear_ramp steps",
        lambda: lrscout.linear_ramp(0.1, 1.0, 1),
        InvalidArgumentError,
        r"num_steps must be",
    ),
    ("exp ramp end nan", lambda: lrscout.exponential_ramp(0.1, math.nan, 5), InvalidArgumentError, r"end_lr"),
    (
        "schedule step too big",
        lambda: lrscout.linear_ramp(0.1, 1.0, 5)(5),
        InvalidArgumentError,
        r"step must be in",
    ),
    (
        "schedule step negative",
        lambda: lrscout.linear_ramp(0.1, 1.0, 5)(-1),
        InvalidArgumentError,
        r"step must be in",
    ),
    (
        "schedule step float",
        lambda: lrscout.linear_ramp(0.1, 1.0, 5)(1.5),
        InvalidArgumentError,
        r"step must be an",
    ),
    (
        "schedule step bools",
        lambda: lrscout.linear_ramp(0.1, 1.0, 5)(np.array([True])),
        InvalidArgumentError,
        r"step must be an integer",
    ),
    ("one_cycle max_lr", lambda: lrscout.one_cycle(0.0, 10), InvalidArgumentError, r"one_cycle: max_lr"),
    ("one_cycle steps", lambda: lrscout.one_cycle(0.1, 1), InvalidArgumentError, r"total_steps must be"),
    (
        "one_cycle pct 0",
        lambda: lrscout.one_cycle(0.1, 10, pct_start=0.0),
        InvalidArgumentError,
        r"pct_start",
    ),
    (
        "one_cycle div",
        lambda: lrscout.one_cycle(0.1, 10, div_factor=0.5),
        InvalidArgumentError,
        r"div_factor",
    ),
    (
        "one_cycle final div",
        lambda: lrscout.one_cycle(0.1, 10, final_div_factor=0.0),
        InvalidArgumentError,
        r"final_div_factor",
    ),
    (
        "one_cycle strategy",
        lambda: lrscout.one_cycle(0.1, 10, anneal_strategy=1),
        InvalidArgumentError,
        r"anneal",
    ),
    (
        "one_cycle three_phase",
        lambda: lrscout.one_cycle(0.1, 10, three_phase="y"),
        InvalidArgumentError,
        r"three",
    ),
    ("steps_per_epoch n", lambda: lrscout.steps_per_epoch(-1, 2), InvalidArgumentError, r"n_samples"),
    ("steps_per_epoch batch", lambda: lrscout.steps_per_epoch(10, 0), InvalidArgumentError, r"batch_size"),
    (
        "steps_per_epoch drop all",
        lambda: lrscout.steps_per_epoch(10, 20, drop_last=True),
        InvalidArgumentError,
        r"batch_size must be <= n_samples",
    ),
    (
        "gd_variant batch",
        lambda: lrscout.gd_variant("32", 100),
        InvalidArgumentError,
        r"gd_variant: batch_size",
    ),
    ("gd_variant n", lambda: lrscout.gd_variant(32, 0), InvalidArgumentError, r"gd_variant: n_samples"),
    ("minibatches shuffle", lambda: lrscout.minibatches(10, 2, shuffle=1), InvalidArgumentError, r"shuffle"),
    (
        "minibatches seed",
        lambda: lrscout.minibatches(10, 2, random_state=1.5),
        InvalidArgumentError,
        r"random_state",
    ),
    ("scale_lr lr", lambda: lrscout.scale_lr(-1.0, 32, 64), InvalidArgumentError, r"scale_lr: lr"),
    ("scale_lr batch", lambda: lrscout.scale_lr(0.1, 0, 64), InvalidArgumentError, r"from_batch"),
    (
        "scale_lr optimizer",
        lambda: lrscout.scale_lr(0.1, 32, 64, optimizer="lamb"),
        InvalidArgumentError,
        r"optim",
    ),
    (
        "scale_lr b_noise",
        lambda: lrscout.scale_lr(0.1, 32, 64, b_noise=0.0),
        InvalidArgumentError,
        r"b_noise",
    ),
    ("rescale_lr result", lambda: lrscout.rescale_lr("0.1", 32), InvalidArgumentError, r"rescale_lr: result"),
    ("rescale_lr from_batch", lambda: lrscout.rescale_lr(0.1, 32), InvalidArgumentError, r"from_batch"),
    (
        "estimate small >= big",
        lambda: lrscout.estimate_noise_scale([1.0, 1.0], [1.0, 1.0], small_batch=8, big_batch=8),
        InvalidArgumentError,
        r"big_batch",
    ),
    (
        "estimate negative norms",
        lambda: lrscout.estimate_noise_scale([-1.0, 1.0], [1.0, 1.0], small_batch=2, big_batch=8),
        InvalidArgumentError,
        r"small_sq_norms",
    ),
    (
        "estimate one pair",
        lambda: lrscout.estimate_noise_scale([1.0], [1.0], small_batch=2, big_batch=8),
        InvalidArgumentError,
        r"big_sq_norms",
    ),
    (
        "estimate confidence",
        lambda: lrscout.estimate_noise_scale([1, 1], [1, 1], small_batch=2, big_batch=8, confidence=1.0),
        InvalidArgumentError,
        r"confidence",
    ),
    (
        "exact 1-D grads",
        lambda: lrscout.exact_noise_scale([1.0, 2.0]),
        InvalidArgumentError,
        r"per_example_grads",
    ),
    (
        "exact NaN grads",
        lambda: lrscout.exact_noise_scale([[1.0], [math.nan]]),
        InvalidArgumentError,
        r"per_exam",
    ),
    (
        "expected norm batch",
        lambda: lrscout.expected_batch_sq_norm(1.0, 1.0, 0),
        InvalidArgumentError,
        r"batch_size",
    ),
]

SUGGESTIONS = [
    ("unknown method", _suggest("fastest", RISING), InvalidArgumentError, r"method must be one of"),
    ("method not a string", _suggest(3, RISING), InvalidArgumentError, r"method must be a string"),
    *[(f"{m} on a flat curve", _suggest(m, FLAT), NoSuggestionError, m) for m in lrscout._suggest.METHODS],
    *[
        (f"{m} on a rising curve", _suggest(m, RISING), NoSuggestionError, m)
        for m in lrscout._suggest.METHODS
    ],
    *[
        (f"{m} on 3 points", _suggest(m, [3.0, 2.0, 1.0]), NoSuggestionError, r"at least 5")
        for m in ("auto",)
    ],
]

RESULTS = [
    ("lrs 2-D", _result(lrs=np.ones((6, 1))), InvalidArgumentError, r"lrs must be one-dimensional"),
    ("losses short", _result(losses=[1.0] * 5), InvalidArgumentError, r"losses must have one entry per"),
    ("lrs falling", _result(lrs=np.geomspace(1.0, 1e-4, 6)), InvalidArgumentError, r"strictly increasing"),
    (
        "lrs repeated",
        _result(lrs=[1e-4, 1e-3, 1e-3, 1e-2, 1e-1, 1.0]),
        InvalidArgumentError,
        r"strictly incr",
    ),
    ("lrs negative", _result(lrs=-np.geomspace(1.0, 1e-4, 6)), InvalidArgumentError, r"lrs must be positive"),
    ("lrs nan", _result(lrs=[math.nan] * 6), InvalidArgumentError, r"lrs must be positive and finite"),
    ("stop_reason", _result(stop_reason="exploded"), InvalidArgumentError, r"stop_reason must be one of"),
    (
        "stop_reason list",
        _result(stop_reason=["completed"]),
        InvalidArgumentError,
        r"stop_reason must be one of",
    ),
    ("num_steps short", _result(num_steps=5), InvalidArgumentError, r"num_steps must be an integer >= 6"),
    ("num_steps str", _result(num_steps="6"), InvalidArgumentError, r"num_steps must be an integer"),
    ("mode", _result(mode="cyclic"), InvalidArgumentError, r"mode must be one of"),
    ("smoothing", _result(smoothing=1.5), InvalidArgumentError, r"smoothing must be < 1"),
    ("start_lr", _result(start_lr=0.0), InvalidArgumentError, r"start_lr must be positive"),
    ("end_lr", _result(end_lr=1e-5), InvalidArgumentError, r"end_lr must be greater than start_lr"),
    ("divergence", _result(divergence_factor=0.5), InvalidArgumentError, r"divergence_factor must be > 1"),
    ("info", _result(info={"a": {1, 2}}), InvalidArgumentError, r"info must hold JSON values"),
    ("noise method", _noise(method="three-batch"), InvalidArgumentError, r"method must be one of"),
    ("noise b_simple str", _noise(b_simple="8"), InvalidArgumentError, r"b_simple must be a real number"),
    ("noise confidence", _noise(confidence=0.0), InvalidArgumentError, r"confidence must be > 0"),
    (
        "noise interval",
        _noise(interval=(10.0, 6.0)),
        InvalidArgumentError,
        r"interval must be a pair with low",
    ),
    (
        "noise interval len",
        _noise(interval=(1.0,)),
        InvalidArgumentError,
        r"interval must be a \(low, high\)",
    ),
    ("noise small_batch", _noise(small_batch=0), InvalidArgumentError, r"small_batch must be"),
    ("noise big <= small", _noise(big_batch=8), InvalidArgumentError, r"big_batch must be an integer >= 9"),
    ("noise big > n", _noise(n_samples=32), InvalidArgumentError, r"big_batch must be at most n_samples"),
    ("noise n_samples", _noise(n_samples=1), InvalidArgumentError, r"n_samples must be"),
    ("noise exact batches", _noise(method="exact"), InvalidArgumentError, r"small_batch must be None"),
    ("noise pairs", _noise(pair_trace_cov=[1.0]), InvalidArgumentError, r"same length"),
    (
        "noise pairs 2-D",
        _noise(pair_trace_cov=[[1.0, 2.0]]),
        InvalidArgumentError,
        r"pair_trace_cov must be a 1-D",
    ),
    (
        "noise pairs text",
        _noise(pair_trace_cov=["a", "b"]),
        InvalidArgumentError,
        r"pair_trace_cov must be an",
    ),
    ("noise info", _noise(info={"x": math.inf}), InvalidArgumentError, r"info must hold JSON"),
]

MODELS = [
    (
        "fit lr str",
        lambda: LinearRegressor(lr="0.1").fit(X, Y),
        InvalidArgumentError,
        r"lr must be a real number",
    ),
    (
        "fit lr nan",
        lambda: LinearRegressor(lr=math.nan).fit(X, Y),
        InvalidArgumentError,
        r"lr must be finite",
    ),
    ("fit batch", lambda: LinearRegressor(batch_size=-1).fit(X, Y), InvalidArgumentError, r"batch_size"),
    ("fit epochs", lambda: LinearRegressor(epochs=1.5).fit(X, Y), InvalidArgumentError, r"epochs"),
    ("fit momentum", lambda: LinearRegressor(momentum=-0.1).fit(X, Y), InvalidArgumentError, r"momentum"),
    ("fit alpha", lambda: LinearRegressor(alpha=math.inf).fit(X, Y), InvalidArgumentError, r"alpha"),
    (
        "fit intercept",
        lambda: LinearRegressor(fit_intercept=1).fit(X, Y),
        InvalidArgumentError,
        r"fit_intercept",
    ),
    ("fit seed", lambda: LinearRegressor(random_state=-3).fit(X, Y), InvalidArgumentError, r"random_state"),
    (
        "fit engine",
        lambda: LinearRegressor(engine="gpu").fit(X, Y),
        InvalidArgumentError,
        r"engine must be one of",
    ),
    (
        "fit X 3-D",
        lambda: LinearRegressor().fit(X[:, :, None], Y),
        InvalidArgumentError,
        r"X must be a non-empty",
    ),
    ("fit X empty", lambda: LinearRegressor().fit(np.empty((0, 3)), []), InvalidArgumentError, r"X must be"),
    (
        "fit X inf",
        lambda: LinearRegressor().fit(np.full((3, 2), np.inf), [1, 2, 3]),
        InvalidArgumentError,
        r"X",
    ),
    (
        "fit X text",
        lambda: LinearRegressor().fit([["a"]], [1.0]),
        InvalidArgumentError,
        r"X must be a numeric",
    ),
    ("fit y short", lambda: LinearRegressor().fit(X, Y[:3]), InvalidArgumentError, r"y must have shape"),
    ("fit y nan", lambda: LinearRegressor().fit(X, np.where(Y > 0, np.nan, Y)), InvalidArgumentError, r"y"),
    ("fit y text", lambda: LinearRegressor().fit(X, ["a"] * 20), InvalidArgumentError, r"y"),
    (
        "softmax one class",
        lambda: SoftmaxClassifier().fit(X, np.zeros(20)),
        InvalidArgumentError,
        r"2 classes",
    ),
    (
        "softmax y 2-D",
        lambda: SoftmaxClassifier().fit(X, np.stack([LABELS, LABELS], axis=1)),
        InvalidArgumentError,
        r"1-D array",
    ),
    (
        "softmax None label",
        lambda: SoftmaxClassifier().fit(X, np.array([None, *LABELS[1:]], dtype=object)),
        InvalidArgumentError,
        r"y",
    ),
    (
        "softmax NaN label",
        lambda: SoftmaxClassifier().fit(X, np.array([np.nan, *LABELS[1:]])),
        InvalidArgumentError,
        r"y",
    ),
    ("predict unfitted", lambda: LinearRegressor().predict(X), InvalidArgumentError, r"not fitted yet"),
    (
        "predict features",
        lambda: SoftmaxClassifier().fit(X, LABELS).predict(X[:, :1]),
        InvalidArgumentError,
        r"X must have 3 features",
    ),
    (
        "score y column",
        lambda: LinearRegressor().fit(X, Y).score(X, Y[:, None][:10]),
        InvalidArgumentError,
        r"y",
    ),
    ("find_lr model", lambda: find_lr(object(), X, Y), InvalidArgumentError, r"model must be an lrscout"),
    (
        "find_lr batch",
        lambda: find_lr(LinearRegressor(), X, Y, batch_size=0),
        InvalidArgumentError,
        r"batch_size",
    ),
    (
        "find_lr steps",
        lambda: find_lr(LinearRegressor(), X, Y, num_steps=1),
        InvalidArgumentError,
        r"num_steps",
    ),
    (
        "find_lr seed",
        lambda: find_lr(LinearRegressor(), X, Y, random_state="s"),
        InvalidArgumentError,
        r"random",
    ),
    (
        "find_lr progress",
        lambda: find_lr(LinearRegressor(), X, Y, progress="y"),
        InvalidArgumentError,
        r"progress",
    ),
    ("compare model", lambda: compare_variants(None, X, Y, epochs=1), InvalidArgumentError, r"model must be"),
    (
        "compare batch sizes",
        lambda: compare_variants(LinearRegressor(), X, Y, epochs=1, batch_sizes=[0]),
        InvalidArgumentError,
        r"batch_sizes",
    ),
    (
        "compare empty sizes",
        lambda: compare_variants(LinearRegressor(), X, Y, epochs=1, batch_sizes=[]),
        InvalidArgumentError,
        r"batch_sizes must be a non-empty",
    ),
    ("noise model", lambda: noise_scale("m", X, Y), InvalidArgumentError, r"model"),
    (
        "noise method",
        lambda: noise_scale(LinearRegressor(), X, Y, method="x"),
        InvalidArgumentError,
        r"method",
    ),
    (
        "noise small batch",
        lambda: noise_scale(LinearRegressor(), X, Y, method="two-batch", small_batch=20),
        InvalidArgumentError,
        r"small_batch",
    ),
    (
        "noise pairs",
        lambda: noise_scale(LinearRegressor(), X, Y, method="two-batch", small_batch=2, num_pairs=1),
        InvalidArgumentError,
        r"num_pairs",
    ),
]


def _torch_parts():
    import torch
    from torch import nn

    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = [(torch.randn(4, 3), torch.randn(4, 1))]
    return torch, nn, model, optimizer, batches


def _torch(call):
    def run():
        torch, nn, model, optimizer, batches = _torch_parts()
        from lrscout import pytorch

        return call(pytorch, torch, nn, model, optimizer, batches)

    return run


PYTORCH = [
    (
        "pt model",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder("net", o, nn.MSELoss())),
        "model must be a torch",
    ),
    (
        "pt optimizer",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, "sgd", nn.MSELoss())),
        "optimizer must be",
    ),
    ("pt no loss", _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o)), "criterion must be given"),
    (
        "pt both losses",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), loss_fn=len)),
        "loss_fn",
    ),
    ("pt criterion", _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, 3)), "criterion must be callable"),
    (
        "pt amp",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), amp_dtype="half")),
        "amp_dtype",
    ),
    (
        "pt clip",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), max_grad_norm=0)),
        "max_grad_norm",
    ),
    (
        "pt cache",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), cache_dir="/no/such")),
        "cache_dir",
    ),
    (
        "pt copy_frozen",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), copy_frozen="yes")),
        "copy_frozen must be",
    ),
    (
        "pt device",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), device=3)),
        "device must be",
    ),
    (
        "pt device name",
        _torch(lambda p, t, nn, m, o, b: p.LRFinder(m, o, nn.MSELoss(), device="gpu7")),
        "device",
    ),
    ("pt loader", _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, 5, nn.MSELoss())), "train_loader must be"),
    (
        "pt empty",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, [], nn.MSELoss(), progress=False)),
        "at least one",
    ),
    (
        "pt val iterator",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), val_loader=iter(b))),
        "val_",
    ),
    (
        "pt num_val",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), num_val_batches=2)),
        "num_val",
    ),
    (
        "pt accumulation",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), accumulation_steps=0)),
        "accum",
    ),
    (
        "pt sync",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), sync_every=0)),
        "sync_every",
    ),
    (
        "pt steps",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), num_steps=1)),
        "num_steps",
    ),
    (
        "pt end",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), end_lr=1e-9)),
        "end_lr must be",
    ),
    (
        "pt num_iter",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(), num_iter=9)),
        "num_steps",
    ),
    (
        "pt vector loss",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, nn.MSELoss(reduction="none"), progress=False)),
        "criterion must return a scalar",
    ),
    (
        "pt dict batch",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, [{"x": b[0][0]}], nn.MSELoss(), progress=False)),
        "Pass loss_fn",
    ),
    (
        "pt loss_fn str",
        _torch(lambda p, t, nn, m, o, b: p.find_lr(m, o, b, loss_fn=lambda mm, bb: "1", progress=False)),
        "loss_fn must return a scalar",
    ),
    (
        "pt one-cycle momentum",
        _torch(lambda p, t, nn, m, o, b: p.one_cycle_scheduler(o, (0.01, 0.1), 10, base_momentum=1.2)),
        "base_momentum must be",
    ),
    (
        "pt one-cycle momenta",
        _torch(
            lambda p, t, nn, m, o, b: p.one_cycle_scheduler(
                o, (0.01, 0.1), 10, base_momentum=0.9, max_momentum=0.8
            )
        ),
        "max_momentum must be >= base_momentum",
    ),
    (
        "pt one-cycle pair",
        _torch(lambda p, t, nn, m, o, b: p.one_cycle_scheduler(o, (0.1, 0.01), 10)),
        "max_lr",
    ),
    (
        "pt one-cycle steps",
        _torch(lambda p, t, nn, m, o, b: p.one_cycle_scheduler(o, (0.01, 0.1))),
        "total_steps",
    ),
    (
        "pt noise model",
        _torch(lambda p, t, nn, m, o, b: p.noise_scale("m", b, nn.MSELoss())),
        "model must be",
    ),
    (
        "pt noise pairs",
        _torch(lambda p, t, nn, m, o, b: p.noise_scale(m, b, nn.MSELoss(), num_pairs=1)),
        "num_pairs",
    ),
]


def _keras(call):
    def run():
        import os

        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        from lrscout import keras as lk

        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
        x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
        return call(lk, keras, model, x, x[:, :1])

    return run


KERAS = [
    ("keras min_lr", _keras(lambda lk, k, m, x, y: lk.LRFinder(min_lr=0)), "min_lr must be positive"),
    (
        "keras max_lr",
        _keras(lambda lk, k, m, x, y: lk.LRFinder(min_lr=1e-2, max_lr=1e-3)),
        "max_lr must be greater",
    ),
    ("keras steps", _keras(lambda lk, k, m, x, y: lk.LRFinder(steps_per_epoch=0)), "steps_per_epoch"),
    ("keras epochs", _keras(lambda lk, k, m, x, y: lk.LRFinder(epochs=1.5)), "epochs must be a whole"),
    (
        "keras both",
        _keras(lambda lk, k, m, x, y: lk.LRFinder(num_steps=10, epochs=2)),
        "num_steps must be None",
    ),
    ("keras mode", _keras(lambda lk, k, m, x, y: lk.LRFinder(mode="cubic")), "mode must be one of"),
    ("keras restore", _keras(lambda lk, k, m, x, y: lk.LRFinder(restore="yes")), "restore must be True"),
    ("keras info", _keras(lambda lk, k, m, x, y: lk.LRFinder(info={"a": object()})), "info must hold JSON"),
    ("keras model", _keras(lambda lk, k, m, x, y: lk.find_lr("model", x, y)), "model must be a keras.Model"),
    ("keras batch", _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, batch_size=0)), "batch_size must be"),
    ("keras rows", _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y[:3])), "one row per sample"),
    ("keras x", _keras(lambda lk, k, m, x, y: lk.find_lr(m, "x", y)), "x must be an array"),
    ("keras steps fit", _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, num_steps=0)), "num_steps"),
    (
        "keras uncompiled",
        _keras(lambda lk, k, m, x, y: lk.find_lr(k.Sequential([k.layers.Dense(1)]), x, y)),
        "compiled",
    ),
    ("keras one-cycle", _keras(lambda lk, k, m, x, y: lk.OneCycle(-1.0, 10)), "max_lr must be positive"),
    (
        "keras empty pydataset",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, _batches(k, 0))),
        "x must yield at least",
    ),
    (
        "keras x without y",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x)),
        "y must be given with array inputs",
    ),
    ("keras x iterator", _keras(lambda lk, k, m, x, y: lk.find_lr(m, iter([(x, y)]))), "got list_iterator"),
    (
        "keras y with dataset",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, _batches(k, 2), y)),
        r"y must be None when x is a keras\.utils\.PyDataset",
    ),
    (
        "keras validation without refine",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, validation_data=(x, y))),
        "validation_data scores the refinement's probes",
    ),
    (
        "keras validation generator",
        _keras(
            lambda lk, k, m, x, y: lk.find_lr(m, x, y, refine=True, validation_data=(b for b in [(x, y)]))
        ),
        "validation_data must be re-iterable",
    ),
    (
        "keras validation endless",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, refine=True, validation_data=_batches(k, None))),
        "validation_data must be finite",
    ),
    (
        "keras validation empty",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, refine=True, validation_data=_batches(k, 0))),
        "validation_data must yield at least one batch",
    ),
    (
        "keras validation split dataset",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, _batches(k, 2), refine=True, validation_split=0.2)),
        "validation_split needs array inputs",
    ),
    (
        "keras refine generator",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, (b for b in [(x, y)]), refine=True)),
        "x must be re-iterable with refine=True",
    ),
    (
        "keras refine flag",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, refine=1)),
        "refine must be True or",
    ),
    (
        "keras steps per epoch arrays",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, steps_per_epoch=2)),
        "steps_per_epoch must be None with array inputs",
    ),
    (
        "keras steps per epoch zero",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, _batches(k, 2), steps_per_epoch=0)),
        "steps_per_epoch must be an integer >= 1",
    ),
    (
        "keras schedule",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, schedule="step")),
        "schedule must be",
    ),
    (
        "keras total steps",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, total_steps=0)),
        "total_steps must",
    ),
    (
        "keras epochs plan",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, epochs=-2)),
        "epochs must be positive",
    ),
    (
        "keras epochs and total steps",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, x, y, epochs=2, total_steps=10)),
        "epochs must be None when total_steps is given",
    ),
    (
        "keras epochs of endless data",
        _keras(lambda lk, k, m, x, y: lk.find_lr(m, _batches(k, None), epochs=2)),
        "epochs must be given with data whose steps per epoch are known",
    ),
    ("keras finder schedule", _keras(lambda lk, k, m, x, y: lk.LRFinder(schedule=None)), "schedule must be"),
    ("keras finder total", _keras(lambda lk, k, m, x, y: lk.LRFinder(total_steps=1.5)), "total_steps must"),
    (
        "keras finder epochs",
        _keras(lambda lk, k, m, x, y: lk.LRFinder(train_epochs="3")),
        "train_epochs must",
    ),
    (
        "keras finder epochs and total",
        _keras(lambda lk, k, m, x, y: lk.LRFinder(train_epochs=3, total_steps=9)),
        "train_epochs must be None when total_steps",
    ),
]


def _batches(keras, count):
    """A keras.utils.PyDataset of ``count`` batches of 4 (``None``: endless)."""

    class Batches(keras.utils.PyDataset):
        @property
        def num_batches(self):
            return count

        def __getitem__(self, i):
            x = np.ones((4, 3), dtype="float32")
            return x, x[:, :1]

    return Batches()


def _bad_file(edit):
    def call(tmp_path):
        data = _result()().to_dict()
        edit(data)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        return RangeTestResult.from_json(path)

    return call


def _bad_text_of(edit):
    """A valid result file's text, edited."""

    def call(tmp_path):
        path = tmp_path / "bad.json"
        path.write_text(edit(json.dumps(_result()().to_dict())))
        return RangeTestResult.from_json(path)

    return call


def _long_file(edit):
    """A valid result of 200 000 steps (its arrays longer than one read chunk), edited."""

    def call(tmp_path):
        n = 200_000
        lrs = np.geomspace(1e-6, 1.0, n)
        curve = np.linspace(2.0, 1.0, n)
        data = RangeTestResult(
            lrs=lrs,
            losses=curve,
            smoothed_losses=curve,
            stop_reason="completed",
            start_lr=1e-6,
            end_lr=1.0,
            num_steps=n,
            mode="exponential",
            smoothing=0.0,
            divergence_factor=4.0,
        ).to_dict()
        del data["summary"]
        edit(data)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        return RangeTestResult.from_json(path)

    return call


def _bad_text(text):
    def call(tmp_path):
        path = tmp_path / "bad.json"
        path.write_text(text)
        return RangeTestResult.from_json(path)

    return call


FILES = [
    ("file lrs falling", _bad_file(lambda d: d["lrs"].reverse()), r"strictly increasing"),
    (
        "file num_steps short",
        _bad_file(lambda d: d.update(num_steps=3)),
        r"num_steps must be an integer >= 6",
    ),
    ("file num_steps huge", _bad_file(lambda d: d.update(num_steps=10**400)), r"num_steps"),
    ("file start_lr negative", _bad_file(lambda d: d.update(start_lr=-1.0)), r"start_lr must be positive"),
    ("file start_lr str", _bad_file(lambda d: d.update(start_lr="1e-4")), r"start_lr must be a real number"),
    ("file mode", _bad_file(lambda d: d.update(mode="fast")), r"mode must be one of"),
    ("file smoothing", _bad_file(lambda d: d.update(smoothing=1.0)), r"smoothing must be < 1"),
    ("file stop_reason", _bad_file(lambda d: d.update(stop_reason=1)), r"stop_reason must be one of"),
    ("file lengths", _bad_file(lambda d: d["losses"].pop()), r"losses must have one entry per"),
    (
        "file loss text",
        _bad_file(lambda d: d["losses"].__setitem__(0, "one")),
        r"losses\[0\] must be a number",
    ),
    (
        "file loss bool",
        _bad_file(lambda d: d["losses"].__setitem__(0, True)),
        r"losses\[0\] must be a number",
    ),
    ("file lrs not list", _bad_file(lambda d: d.update(lrs="1,2")), r"lrs must be a list"),
    ("file info list", _bad_file(lambda d: d.update(info=[])), r"info must be an object"),
    ("file extra field", _bad_file(lambda d: d.update(extra=1)), r"unexpected \['extra'\]"),
    ("file missing field", _bad_file(lambda d: d.pop("mode")), r"missing \['mode'\]"),
    ("file version", _bad_file(lambda d: d.update(version=2)), r"not an lrscout result"),
    ("file not a mapping", _bad_text("[1, 2]"), r"data must be a mapping"),
    ("file not JSON", _bad_text("{"), r"is not valid JSON"),
    ("file bare NaN", _bad_text('{"a": NaN}'), r"bare NaN is not JSON"),
    ("file deep nesting", _bad_text("[" * 100_000 + "]" * 100_000), r"nested too deeply"),
    ("file huge integer", _bad_text('{"num_steps": ' + "9" * 5000 + "}"), r"not valid JSON"),
    ("file latin-1", _bad_text('{"mode": "caf\xe9"}'.encode("latin-1").decode("latin-1")), r"not an lrscout"),
    # Numbers that JSON holds and a float does not.
    (
        "file 401-digit loss",
        _bad_file(lambda d: d["losses"].__setitem__(0, 10**400)),
        r"losses\[0\] must be a number that a float can hold .*about 401 digits",
    ),
    (
        "file 401-digit negative lr",
        _bad_file(lambda d: d["lrs"].__setitem__(2, -(10**400))),
        r"lrs\[2\] must be a number that a float can hold",
    ),
    ("file big start_lr", _bad_file(lambda d: d.update(start_lr=10**400)), r"start_lr must be"),
    (
        "file 1e400 loss",
        _bad_text_of(lambda t: t.replace("[1.0, 0.9", "[1e400, 0.9", 1)),
        r"losses\[0\] must be a number that a float can hold .*got inf",
    ),
    # The float arrays are read a chunk at a time: every way an entry can be wrong still says which.
    (
        "file loss null",
        _bad_file(lambda d: d["losses"].__setitem__(1, None)),
        r"losses\[1\] must be a number",
    ),
    (
        "file loss list",
        _bad_file(lambda d: d["losses"].__setitem__(1, [1.0])),
        r"losses\[1\] must be a number",
    ),
    ("file loss dict", _bad_file(lambda d: d["losses"].__setitem__(1, {})), r"losses\[1\] must be a number"),
    (
        "file loss text with a comma",
        _bad_file(lambda d: d["losses"].__setitem__(3, "1,5")),
        r"losses\[3\] must be a number, 'nan', 'inf' or '-inf'; got '1,5'",
    ),
    (
        "file loss text with a bracket",
        _bad_file(lambda d: d["losses"].__setitem__(0, "]")),
        r"losses\[0\] must be a number, 'nan'",
    ),
    ("file loss 'NaN' text", _bad_file(lambda d: d["losses"].__setitem__(2, "NaN")), r"losses\[2\] must be"),
    ("file smoothed bool", _bad_file(lambda d: d["smoothed_losses"].__setitem__(5, False)), r"losses\[5\]"),
    (
        "file bad entry far in a long array",
        _long_file(lambda d: d["losses"].__setitem__(150_001, "x")),
        r"losses\[150001\] must be a number, 'nan'",
    ),
    (
        "file huge integer far in a long array",
        _long_file(lambda d: d["smoothed_losses"].__setitem__(199_999, 10**400)),
        r"smoothed_losses\[199999\] must be a number that a float can hold",
    ),
    (
        "file bare NaN in losses",
        _bad_text_of(lambda t: t.replace('"losses": [1.0', '"losses": [NaN', 1)),
        r"bare NaN",
    ),
    (
        "file bare -Infinity in lrs",
        _bad_text_of(lambda t: t.replace('"lrs": [', '"lrs": [-Infinity, ', 1)),
        r"bare -Inf",
    ),
    (
        "file bare NaN in info",
        _bad_text_of(lambda t: t.replace('"info": {}', '"info": {"a": NaN}', 1)),
        r"bare NaN",
    ),
    ("file trailing comma", _bad_text_of(lambda t: t.replace("2.0]", "2.0, ]", 1)), r"is not valid JSON"),
    ("file empty entry", _bad_text_of(lambda t: t.replace("0.9,", "0.9,,", 1)), r"is not valid JSON"),
    ("file unclosed array", _bad_text_of(lambda t: t[: t.rindex("]")]), r"is not valid JSON"),
    ("file extra data", _bad_text_of(lambda t: t + "{}"), r"is not valid JSON \(Extra data"),
    ("file byte-order mark", _bad_text_of(lambda t: "\ufeff" + t), r"is not valid JSON"),
    (
        "file nested too deeply in info",
        _bad_text_of(lambda t: t.replace('"info": {}', '"info": ' + "[" * 100_000 + "]" * 100_000, 1)),
        r"nested too deeply",
    ),
]


ALL = CORE + SUGGESTIONS + RESULTS + MODELS


@pytest.mark.parametrize(("call", "error", "match"), [row[1:] for row in ALL], ids=[row[0] for row in ALL])
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


FRAMEWORKS = PYTORCH + KERAS


@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
@pytest.mark.parametrize(
    ("call", "match"), [row[1:] for row in FRAMEWORKS], ids=[row[0] for row in FRAMEWORKS]
)
def test_bad_framework_input_gets_a_clear_error(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


@pytest.mark.parametrize(("call", "match"), [row[1:] for row in FILES], ids=[row[0] for row in FILES])
def test_bad_result_file_gets_a_clear_error(call, match, tmp_path):
    with pytest.raises(InvalidArgumentError, match=match):
        call(tmp_path)


def test_a_binary_result_file_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InvalidArgumentError, match="is not valid JSON"):
        RangeTestResult.from_json(path)


CLI = [
    (["find-lr", "--batch-size", "0"], "--batch-size"),
    (["find-lr", "--batch-size", "x"], "--batch-size"),
    (["find-lr", "--start-lr", "0"], "--start-lr"),
    (["find-lr", "--start-lr", "nan"], "--start-lr"),
    (["find-lr", "--end-lr", "inf"], "--end-lr"),
    (["find-lr", "--start-lr", "1", "--end-lr", "0.5"], "--end-lr must be greater than --start-lr"),
    (["find-lr", "--num-steps", "1"], "--num-steps"),
    (["find-lr", "--num-steps", "ten"], "--num-steps"),
    (["find-lr", "--mode", "cosine"], "--mode"),
    (["find-lr", "--framework", "tensorflow"], "--framework"),
    (["find-lr", "--model", "mlp"], "--model mlp"),
    (["find-lr", "--momentum", "1.5"], "momentum"),
    (["find-lr", "--seed", "-1"], "--seed"),
    (["find-lr", "--seed", str(2**64)], "--seed"),
    (["find-lr", "--dataset", "mnist"], "--dataset"),
    (["find-lr", "--target", "y"], "--target needs --csv"),
    (["find-lr", "--task", "regression"], "--task needs --csv"),
    (["find-lr", "--csv", "missing.csv", "--target", "y"], "--csv: no such file"),
    (["find-lr", "--json", ""], "--json must be a file path"),
    (["find-lr", "--json", "out", "--plot", "out.png", "--csv", "out.png"], "--plot"),
    (["find-lr", "--json", "same.png", "--plot", "same.png"], "--json 'same.png' is the same file as --plot"),
    (["find-lr", "--json", "no/such/folder/r.json"], "does not exist"),
    (["find-lr", "--plot", "."], "is a folder"),
    (["find-lr", "--plot", "plot.unknown"], "matplotlib cannot write .unknown"),
    (["find-lr", "--plot", "p" * 300 + ".png"], r"--plot 'p+\.png': the file name is 304 bytes long"),
    (["find-lr", "--json", "j" * 300 + ".json"], r"--json 'j+\.json': the file name is 305 bytes long"),
    (["find-lr", "--json", "no/such/r.json", "--plot", "none"], "--json 'no/such/r.json': the folder"),
    (
        ["find-lr", "--num-steps", "10000000000000"],
        r"--num-steps must be at most 1000000; got 10000000000000\. ",
    ),
    (["find-lr", "--num-steps", "1000001"], r"--num-steps must be at most 1000000; got 1000001"),
    (["compare-variants", "--epochs", "10000000000000"], "--epochs must be at most 10000"),
    (["noise-scale", "--num-pairs", "10000000000000"], "--num-pairs must be at most 1000000"),
    (["noise-scale", "--epochs", "10000000000000"], "--epochs must be at most 10000"),
    (["find-lr", "--csv", ".", "--target", "y"], r"--csv: '\.' is a folder"),
    (["compare-variants", "--epochs", "0"], "--epochs"),
    (["compare-variants", "--batch-sizes", "full,0"], "--batch-sizes"),
    (["compare-variants", "--lr", "-1"], "--lr"),
    (["noise-scale", "--epochs", "-1"], "--epochs"),
    (["noise-scale", "--small-batch", "0"], "--small-batch"),
    (["noise-scale", "--num-pairs", "1"], "--num-pairs"),
    (["noise-scale", "--optimizer", "lamb"], "--optimizer"),
    (["noise-scale", "--json", ""], "--json must be a file path"),
    (["train"], "invalid choice: 'train'"),
]


def _csv_case(tmp_path, content, *extra):
    path = tmp_path / "data.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return ["find-lr", "--csv", str(path), "--target", "label", *extra]


CSV = [
    ("a,b,label\n1,x,0\n2,3,1\n4,5,0\n", "line 2, column 'b' holds 'x'"),
    ("a,b,label\n1,,0\n2,3,1\n4,5,0\n", "line 2, column 'b': the cell is empty"),
    ("a,b,label\n1,2,\n2,3,1\n4,5,0\n", "column 'label': the cell is empty"),
    ("a,label,label\n1,0,0\n2,1,1\n4,0,0\n", "names columns more than once: 'label'"),
    ("a,b,label\n1,2,0\n2,3\n4,5,0\n", "line 3 of"),
    ("a,b,label\n1,2,0\n", "needs a header row and at least 2 data rows"),
    (b"a,b,label\n1,2,0\n\x00\x01,3,1\n", "is not a text file"),
    ("a,b,label\n1,2,0\n2,3,0\n4,5,0\n", "at least 2 classes"),
    ("a,b,label\n1,inf,0\n2,3,1\n4,5,0\n", "'inf' is not a finite number"),
    ("a,b,target\n1,2,0\n2,3,1\n4,5,0\n", "--target: no column 'label'"),
    ("label\n0\n1\n0\n", "no feature columns"),
    # A quote left open swallows every row after it in a lenient reader: refused, with its line.
    ('a,b,label\n1,2,0\n"3,4,1\n' + "5,6,1\n" * 500, r"line 3: a quoted field opened there is never closed"),
    ('a,b,label\n1,2,0\n3,4,"1\n' + "5,6,0\n" * 500, r"line 3: a quoted field opened there is never closed"),
    ('a,b,label\n1,2,0\n"3"x,4,1\n5,6,0\n', r"line 3: ',' expected after '\"'"),
    ('a;b;label\n1;2;0\n3;"4;1\n5;6;0\n', r"line 3: a quoted field opened there is never closed"),
    # Quotes that csv.Sniffer takes quadratic time over (tens of seconds for 60 KB).
    ("a,b,label\n" + ', "a' * 15_000 + "\n1,2,0\n2,3,1\n", r"--csv: .*line 2"),
]


@pytest.mark.parametrize(("argv", "match"), CLI, ids=[" ".join(a)[:40] for a, _ in CLI])
def test_command_line_mistakes_are_one_line_exit_2(argv, match, tmp_path):
    _assert_one_line_error([*argv, "--quiet"] if argv[0] != "train" else argv, match, tmp_path, usage=True)


@pytest.mark.parametrize(("content", "match"), CSV, ids=[f"csv{i}" for i in range(len(CSV))])
def test_bad_csv_files_are_one_line_exit_2(content, match, tmp_path):
    _assert_one_line_error(_csv_case(tmp_path, content, "--quiet", "--plot", "none"), match, tmp_path)


def test_a_latin1_csv_names_the_encoding(tmp_path):
    argv = _csv_case(tmp_path, "a,b,label\n1,2,caf\xe9\n2,3,x\n4,5,y\n".encode("latin-1"), "--quiet")
    _assert_one_line_error(argv, r"is not UTF-8 text \(byte 0xe9", tmp_path)


def _assert_one_line_error(argv, match, tmp_path, *, usage=False, shell=False):
    """One error line, exit 2; after a mistake in the arguments, the usage line before it.

    ``shell``: run through bash (process substitution, a closed stdout).
    """
    if shell:
        command = " ".join([f"'{sys.executable}'", "-m", "lrscout", *argv])
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=300
        )
    else:
        done = subprocess.run(
            [sys.executable, "-m", "lrscout", *argv],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
    assert done.returncode == 2, (done.stdout, done.stderr)
    # Found before the test: no report of a test that ran.
    assert "tested lr" not in done.stdout + done.stderr, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 + usage and "Traceback" not in done.stderr, done.stderr
    assert not usage or lines[0].startswith("usage: lrscout"), done.stderr
    assert lines[-1].startswith("lrscout: error: "), done.stderr
    assert __import__("re").search(match, done.stderr), done.stderr


def _data_csv(tmp_path):
    rows = [f"{a:.6f},{b:.6f},{int(a + b > 0)}" for a, b in np.random.default_rng(0).normal(size=(60, 2))]
    path = tmp_path / "data.csv"
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


def _hard_link_plot(tmp_path):
    os.link(_data_csv(tmp_path), tmp_path / "link.png")
    return ["find-lr", "--csv", "data.csv", "--target", "label", "--plot", "link.png"], (
        r"--plot 'link.png' is the same file as --csv"
    )


def _symlink_json(tmp_path):
    os.symlink(_data_csv(tmp_path), tmp_path / "alias.json")
    argv = ["find-lr", "--csv", "data.csv", "--target", "label", "--plot", "none", "--json", "alias.json"]
    return argv, r"--json 'alias.json' is the same file as --csv"


def _linked_outputs(tmp_path):
    (tmp_path / "out.png").write_bytes(b"old")
    os.link(tmp_path / "out.png", tmp_path / "out.json")
    return [
        "find-lr",
        "--plot",
        "out.png",
        "--json",
        "out.json",
    ], r"--json 'out.json' is the same file as --plot"


def _json_under_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    return ["find-lr", "--plot", "none", "--json", "file.txt/r.json"], r"--json 'file.txt/r.json': the folder"


def _closed_stdout(tmp_path):
    return ["find-lr", "--plot", "none", "--json", "-", ">&-"], r"--json -: standard output is closed"


def _pgf_without_tex(tmp_path):
    import shutil

    if shutil.which("xelatex"):
        pytest.skip("xelatex is installed: .pgf can be written")
    return ["find-lr", "--plot", "x.pgf"], r"--plot 'x.pgf': matplotlib writes \.pgf files with xelatex"


OUTPUTS = [
    _hard_link_plot,
    _symlink_json,
    _linked_outputs,
    _json_under_a_file,
    _closed_stdout,
    _pgf_without_tex,
]


@pytest.mark.parametrize("setup", OUTPUTS, ids=[f.__name__.strip("_") for f in OUTPUTS])
def test_output_problems_are_refused_before_the_test(setup, tmp_path):
    argv, match = setup(tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    _assert_one_line_error([*argv, "--quiet"], match, tmp_path, usage=True, shell=True)
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert after == before  # nothing written, nothing replaced


def _run_shell(command, tmp_path):
    done = subprocess.run(
        ["bash", "-c", f"'{sys.executable}' -m lrscout {command}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_process_substitution_for_csv_and_json(tmp_path):
    _data_csv(tmp_path)
    _run_shell(
        "find-lr --quiet --plot none --csv <(cat data.csv) --target label --json >(cat > copied.json)",
        tmp_path,
    )
    for _ in range(100):  # the reader of >(...) may finish after lrscout
        if (tmp_path / "copied.json").stat().st_size:
            break
        __import__("time").sleep(0.1)
    assert len(RangeTestResult.from_json(tmp_path / "copied.json")) > 1


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_a_fifo_output_is_written_through_not_replaced(option, tmp_path):
    import threading

    fifo = tmp_path / ("out.fifo" if option == "--json" else "plot.png")
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    other = ["--plot", "none"] if option == "--json" else []
    _run_shell(f"find-lr --quiet {' '.join(other)} {option} {fifo.name}", tmp_path)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the FIFO
    reader.join(timeout=60)
    if option == "--json":
        assert json.loads(received[0])["format"] == "lrscout.RangeTestResult"
    else:
        assert received[0].startswith(b"\x89PNG")


def test_a_device_output_is_written_through_not_replaced(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a twin of /dev/null
    except (PermissionError, AttributeError, OSError):
        pytest.skip("cannot make a device node here")
    _run_shell("find-lr --quiet --plot null --json null", tmp_path)
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_symlinked_output_stays_a_link(tmp_path):
    (tmp_path / "real.json").write_text("old")
    os.symlink("real.json", tmp_path / "link.json")
    _run_shell("find-lr --quiet --plot none --json link.json", tmp_path)
    assert os.path.islink(tmp_path / "link.json")
    assert RangeTestResult.from_json(tmp_path / "real.json").stop_reason


def test_the_table_covers_every_class():
    count = len(ALL) + len(FRAMEWORKS) + len(FILES) + len(CLI) + len(CSV) + len(OUTPUTS) + 2
    assert count >= 150, count
