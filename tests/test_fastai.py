"""lrscout.fastai: ``auto`` in fastai's suggestion-function shape, ``auto_for``, and ``find_lr`` on a Learner.

The first half needs neither fastai nor torch-side fastai code: it calls the
suggestion functions as ``Learner.lr_find`` does (float32 tensors of the
window ``[num_it // 10 : -5]`` of the recorder's smoothed losses) and checks
them against lrscout's rule on the raw losses. The second half runs the real
fastai where it is installed (it is not in CI: see
``benchmarks/record_peer_fixtures.py`` for the environment).
"""

from __future__ import annotations

import copy
import json
import random
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lrscout  # noqa: E402
from lrscout._suggest import auto as auto_rule  # noqa: E402
from lrscout.fastai import auto, auto_for, find_lr, unsmooth  # noqa: E402

DATA = json.loads((Path(__file__).parent / "data" / "peer_rules.json").read_text())
CURVES = DATA["curves"]


def _ema(raw: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """fastai's AvgSmoothLoss (and lrscout's) bias-corrected EMA, step by step."""
    m, out = 0.0, []
    for t, loss in enumerate(raw):
        m = beta * m + (1 - beta) * loss
        out.append(m / (1 - beta ** (t + 1)))
    return np.array(out)


def _fastai_window(curve: dict[str, Any], smoothed: np.ndarray | None = None) -> tuple[Any, Any, int]:
    """What ``Learner.lr_find`` passes: float32 tensors of ``[num_it // 10 : -5]``, cut at the first NaN."""
    num_it = curve["num_steps"]
    lrs = torch.tensor(curve["lrs"][num_it // 10 : -5], dtype=torch.float32)
    ema = np.asarray(curve["smoothed_losses"] if smoothed is None else smoothed)
    losses = torch.tensor(ema[num_it // 10 : -5], dtype=torch.float32)
    nan = torch.nonzero(torch.isnan(losses))
    if len(nan):
        lrs, losses = lrs[: int(nan.min())], losses[: int(nan.min())]
    return lrs, losses, num_it


def _raw_window(curve: dict[str, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The raw losses (and rates) of the window's steps but its first, in float32 as fastai holds them."""
    start = curve["num_steps"] // 10
    lrs = np.float32(curve["lrs"][start + 1 : start + n])
    raw = np.float32(curve["losses"][start + 1 : start + n])
    return lrs, raw


# unsmooth ------------------------------------------------------------------------------


@pytest.mark.parametrize("curve", CURVES, ids=[c["name"] for c in CURVES])
def test_unsmooth_recovers_the_raw_losses_of_lrscouts_ema(curve):
    raw, smoothed = np.array(curve["losses"]), np.array(curve["smoothed_losses"])
    finite = np.isfinite(smoothed)
    n = int(np.argmin(finite)) if not finite.all() else len(smoothed)
    start = curve["num_steps"] // 10
    np.testing.assert_allclose(
        unsmooth(smoothed[start:n], start=start), raw[start + 1 : n], rtol=1e-9, atol=1e-9
    )


def test_unsmooth_takes_other_betas_and_no_smoothing():
    raw = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    for beta in (0.0, 0.5, 0.9):
        np.testing.assert_allclose(
            unsmooth(_ema(raw, beta)[2:], start=2, smoothing=beta), raw[3:], rtol=1e-12
        )


def test_unsmooth_reads_a_zero_loss_rounded_below_zero_as_zero():
    raw = np.array([2.0, 2.5, 0.0, 1.5, 0.0, 2.2])
    smoothed = np.float32(_ema(raw))
    recovered = unsmooth(smoothed, start=0)
    assert np.all(recovered >= 0.0)
    np.testing.assert_allclose(recovered, raw[1:], atol=1e-4)


# auto ----------------------------------------------------------------------------------


@pytest.mark.parametrize("curve", CURVES, ids=[c["name"] for c in CURVES])
def test_auto_gives_lrscouts_rule_on_the_raw_losses_of_fastais_window(curve):
    lrs, losses, num_it = _fastai_window(curve)
    lr, (at, loss) = auto(lrs, losses, num_it)
    rates, raw = _raw_window(curve, len(lrs))
    # The raw losses are recovered from fastai's float32 EMA: equal to float32 precision. No
    # Learner called it, so no plan is known: a constant rate.
    assert lr == pytest.approx(auto_rule(rates, raw, num_steps=num_it), rel=1e-6)
    # The point fastai marks: the suggestion, on the smoothed loss of the nearest recorded step.
    nearest = int(np.argmin(np.abs(np.log(lrs.double().numpy()) - np.log(lr))))
    assert at == lr and isinstance(loss, torch.Tensor) and loss.ndim == 0
    assert torch.equal(loss, losses[nearest])


def test_auto_reads_the_raw_losses_not_the_lagging_ema():
    """On the EMA itself the rule lands past the fall; unsmoothed, where it does on the raw losses."""
    curve = next(c for c in CURVES if c["name"] == "synthetic-noise-0.02")
    lrs, losses, num_it = _fastai_window(curve)
    on_ema = auto_rule(lrs.numpy(), losses.numpy(), num_steps=num_it)
    lr, _ = auto(lrs, losses, num_it)
    assert on_ema > 5 * lr
    # fastai's window leaves out the first tenth of the steps, so the fall the margin reads
    # starts a little later: within 5 % of the rate on the whole raw curve.
    whole = auto_rule(np.array(curve["lrs"]), np.array(curve["losses"]), num_steps=num_it)
    assert lr == pytest.approx(whole, rel=0.05)


def test_auto_without_a_suggestion_warns_and_returns_nan():
    lrs = torch.tensor(np.geomspace(1e-5, 1e-2, 85), dtype=torch.float32)
    flat = torch.full((85,), 0.7, dtype=torch.float32)
    with pytest.warns(lrscout.CurveWarning, match="lrscout.fastai.auto: suggest: method 'auto' found no"):
        lr, (at, loss) = auto(lrs, flat, 100)
    assert np.isnan(lr) and np.isnan(at) and np.isnan(loss)


def test_the_suggestion_functions_have_names_of_their_own_as_fastai_names_its_fields():
    # fastai builds a namedtuple from the functions' names: two of one name fail it.
    assert auto.__name__ == "auto"
    assert auto_for(SimpleNamespace()).__name__ == "auto_for"


def _learner_like(
    opt_func: Any = None, opt: Any = None, bs: int | None = None, beta: float | None = None
) -> Any:
    """The attributes of a fastai Learner that ``auto_for`` reads, without fastai."""
    recorder = None if beta is None else SimpleNamespace(smooth_loss=SimpleNamespace(beta=beta))
    return SimpleNamespace(
        opt=opt, opt_func=opt_func, dls=SimpleNamespace(train=SimpleNamespace(bs=bs)), recorder=recorder
    )


def Adam(params: Any, lr: float) -> None:
    """Stands in for ``fastai.optimizer.Adam``: auto_for reads only its name."""


def SGD(params: Any, lr: float) -> None:
    """Stands in for ``fastai.optimizer.SGD``."""


def _optim_wrapper(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``fastai.optimizer.OptimWrapper`` in a ``partial``."""


@pytest.mark.parametrize(
    ("learn", "facts"),
    [
        (_learner_like(Adam, bs=32), {"optimizer": "Adam", "batch_size": 32}),
        (
            _learner_like(SGD, opt=SimpleNamespace(hypers=[{"mom": 0.9, "lr": 1e-3}]), bs=8),
            {"optimizer": "SGD", "momentum": 0.9, "batch_size": 8},
        ),
        # Adam's "mom" is its beta1, not heavy-ball momentum.
        (_learner_like(Adam, opt=SimpleNamespace(hypers=[{"mom": 0.9}])), {"optimizer": "Adam"}),
        (_learner_like(partial(_optim_wrapper, opt=torch.optim.AdamW)), {"optimizer": "AdamW"}),
        (
            _learner_like(
                opt=SimpleNamespace(opt=torch.optim.SGD([nn.Parameter(torch.ones(1))], 0.1, momentum=0.5))
            ),
            {"optimizer": "SGD", "momentum": 0.5},
        ),
    ],
)
def test_auto_for_tells_the_rule_the_learners_optimizer_and_batch(learn, facts):
    curve = next(c for c in CURVES if c["name"] == "pytorch-mlp-digits-sgdm")
    lrs, losses, num_it = _fastai_window(curve)
    rates, raw = _raw_window(curve, len(lrs))
    lr, _ = auto_for(learn)(lrs, losses, num_it)
    # ... and that it will train with fit_one_cycle: the rate is that schedule's peak.
    expected = auto_rule(rates, raw, num_steps=num_it, schedule="one_cycle", **facts)
    assert lr == pytest.approx(expected, rel=1e-6)


def test_auto_for_reads_the_recorders_beta():
    curve = next(c for c in CURVES if c["name"] == "synthetic-noise-0.1")
    smoothed = _ema(np.array(curve["losses"]), beta=0.9)
    lrs, losses, num_it = _fastai_window(curve, smoothed)
    rates, raw = _raw_window(curve, len(lrs))
    lr, _ = auto_for(_learner_like(beta=0.9))(lrs, losses, num_it)
    # The raw losses are recovered from fastai's float32 EMA: equal to float32 precision.
    assert lr == pytest.approx(auto_rule(rates, raw, num_steps=num_it, schedule="one_cycle"), rel=1e-6)


def test_find_lr_without_fastai_names_the_package_to_install():
    try:
        import fastai  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install fastai"):
            find_lr(object())
    else:
        pytest.skip("fastai is installed")


# With the real fastai --------------------------------------------------------------------


@pytest.fixture
def fastai_learner() -> Any:
    pytest.importorskip("fastai.callback.schedule")
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner

    def make(opt_func: Any = None) -> Any:
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(1)
        X = torch.randn(256, 4, generator=generator)
        y = (X @ torch.tensor([1.0, -2.0, 0.5, 0.3]) > 0).long()
        data = torch.utils.data.TensorDataset(X, y)
        dls = DataLoaders(
            # Its own generator: find_lr must put it back, as the global RNG.
            torch.utils.data.DataLoader(
                data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(2)
            ),
            torch.utils.data.DataLoader(data, batch_size=64),
        )
        model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
        kwargs = {} if opt_func is None else {"opt_func": opt_func}
        return Learner(dls, model, loss_func=nn.CrossEntropyLoss(), **kwargs)

    return make


def _spy() -> Any:
    from fastai.callback.core import Callback

    class Spy(Callback):
        """Each training batch's raw loss and the rate its optimizer step used."""

        order = 70

        def before_fit(self) -> None:
            self.raw: list[float] = []
            self.rates: list[float] = []

        def after_loss(self) -> None:
            if self.learn.training:
                self.raw.append(self.learn.loss.item())

        def before_step(self) -> None:
            self.rates.append(self.learn.opt.hypers[0]["lr"])

    return Spy()


def _quiet(learn: Any) -> Any:
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(learn.no_bar())
    stack.enter_context(learn.no_logging())
    return stack


def _opt_func(name: str) -> Any:
    """fastai's idioms: its own optimizers as partials, a torch one in an OptimWrapper."""
    from fastai.optimizer import SGD, OptimWrapper

    return {
        "Adam (fastai's default)": None,
        "SGD with momentum": partial(SGD, mom=0.9),
        "AdamW wrapped": partial(OptimWrapper, opt=torch.optim.AdamW),
    }[name]


_OPTIMIZERS = {
    "Adam (fastai's default)": {"optimizer": "Adam"},
    "SGD with momentum": {"optimizer": "SGD", "momentum": 0.9},
    "AdamW wrapped": {"optimizer": "AdamW"},
}


# fastai's own lr_find reloads its saved model through numpy.core, deprecated in NumPy 2.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("optimizer", list(_OPTIMIZERS))
def test_lr_find_takes_auto_and_auto_for_and_both_are_the_rule_on_the_whole_raw_curve(
    fastai_learner, optimizer
):
    from fastai.callback.schedule import valley

    facts = _OPTIMIZERS[optimizer]
    learn = fastai_learner(_opt_func(optimizer))
    spy = _spy()
    learn.add_cb(spy)
    with _quiet(learn):
        suggested = learn.lr_find(suggest_funcs=(auto, auto_for(learn), valley), show_plot=False)
    assert suggested._fields == ("auto", "auto_for", "valley")
    # The oracle: lrscout's rule on every step's own loss, told what the Learner trains with.
    rates = np.asarray(learn.recorder.lrs)
    raw = np.float32(spy.raw[: len(rates)])
    expected = auto_rule(rates, raw, num_steps=100, batch_size=16, schedule="one_cycle", **facts)
    assert suggested.auto == pytest.approx(expected, rel=1e-5)
    assert suggested.auto_for == suggested.auto


# fastai's own lr_find reloads its saved model through numpy.core, deprecated in NumPy 2.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("optimizer", list(_OPTIMIZERS))
def test_auto_in_lr_find_and_find_lr_give_one_answer_on_one_test(fastai_learner, optimizer):
    learn = fastai_learner(_opt_func(optimizer))
    # fastai's ramp: step i of num_it at start * (end / start) ** (i / num_it), so its last
    # rate is end_lr * (start / end) ** (1 / num_it); lrscout's ramp ends on end_lr itself.
    start, end, num_it = 1e-7, 10.0, 50
    ours = find_lr(
        learn,
        start_lr=start,
        end_lr=start * (end / start) ** ((num_it - 1) / num_it),
        num_steps=num_it,
        extend=False,
        progress=False,
    )
    # find_lr left the Learner and its loader as they were: lr_find sees the same batches.
    with _quiet(learn):
        theirs = learn.lr_find(
            start_lr=start, end_lr=end, num_it=num_it, suggest_funcs=(auto,), show_plot=False
        )
    np.testing.assert_allclose(ours.lrs, learn.recorder.lrs, rtol=1e-12)
    assert ours.suggestion.lr == pytest.approx(theirs.auto, rel=1e-5)


def _learner_state(learn: Any) -> dict[str, Any]:
    opt = getattr(learn.opt, "opt", learn.opt)
    state: dict[str, Any] = {
        "model": copy.deepcopy(learn.model.state_dict()),
        "grads": [None if p.grad is None else p.grad.clone() for p in learn.model.parameters()],
        "rng": (torch.get_rng_state(), random.getstate()),
        "recorder": copy.deepcopy([learn.recorder.lrs, learn.recorder.losses]),
    }
    if opt is not None:
        state["opt"] = copy.deepcopy(opt.state_dict())
    return state


@pytest.mark.parametrize("wrapped", [False, True], ids=["fastai-Adam", "OptimWrapper-SGD"])
def test_find_lr_ramps_exactly_records_raw_losses_and_restores_bitwise(assert_same, fastai_learner, wrapped):
    from fastai.optimizer import OptimWrapper

    opt_func = partial(OptimWrapper, opt=partial(torch.optim.SGD, momentum=0.9)) if wrapped else None
    learn = fastai_learner(opt_func)
    with _quiet(learn):
        learn.fit(1, 1e-3)  # optimizer state, BatchNorm statistics, a recorder to restore
    spy = _spy()
    learn.add_cb(spy)
    before = _learner_state(learn)
    opt = learn.opt
    result = find_lr(
        learn, start_lr=1e-5, end_lr=1.0, num_steps=40, extend=False, sync_every=3, progress=False
    )
    n = len(result)
    np.testing.assert_array_equal(result.lrs, lrscout.exponential_ramp(1e-5, 1.0, 40)(np.arange(n)))
    assert spy.rates[:n] == list(result.lrs)
    np.testing.assert_array_equal(result.losses, np.float32(spy.raw[:n]))
    assert result.info["framework"] == "fastai" and result.info["batch_size"] == 16
    assert result.info["optimizer"] == ("SGD" if wrapped else "Adam")
    assert result.info.get("momentum") == (0.9 if wrapped else None)
    learn.remove_cb(spy)
    assert learn.opt is opt
    assert_same(_learner_state(learn), before)


def test_fit_after_find_lr_is_bitwise_as_without_it(assert_same, fastai_learner):
    def train(find_first: bool) -> dict[str, Any]:
        learn = fastai_learner()
        if find_first:
            find_lr(learn, num_steps=30, progress=False)
            assert learn.opt is None
        with _quiet(learn):
            learn.fit(2, 1e-2)
        return copy.deepcopy(learn.model.state_dict())

    assert_same(train(True), train(False))


def test_find_lr_restores_after_an_exception_and_stops_on_divergence(assert_same, fastai_learner):
    from fastai.callback.core import Callback

    class Fail(Callback):
        def after_batch(self) -> None:
            if self.learn.training and self.learn.iter == 5:
                raise RuntimeError("failed on purpose")

    learn = fastai_learner()
    with _quiet(learn):
        learn.fit(1, 1e-3)
    before = _learner_state(learn)
    learn.add_cb(Fail())
    with pytest.raises(RuntimeError, match="on purpose"):
        find_lr(learn, num_steps=30, progress=False)
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, Fail)])
    assert_same(_learner_state(learn), before)
    result = find_lr(learn, start_lr=1e-3, end_lr=1e6, num_steps=60, sync_every=1, progress=False)
    assert result.stop_reason in ("diverged", "non_finite") and len(result) < 60
    assert_same(_learner_state(learn), before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_steps": 1}, "num_steps must be"),
        ({"end_lr": 1e-9}, "end_lr must be greater than start_lr"),
        ({"sync_every": 0}, "sync_every must be"),
        ({"progress": 1}, "progress must be"),
        ({"info": {"x": object()}}, "info"),
    ],
)
def test_find_lr_bad_arguments(fastai_learner, kwargs, match):
    learn = fastai_learner()
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        find_lr(learn, **kwargs)
    assert learn.opt is None
    with pytest.raises(lrscout.InvalidArgumentError, match="learn must be a fastai Learner"):
        find_lr(object())
