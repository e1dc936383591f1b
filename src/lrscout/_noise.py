"""The gradient noise scale (McCandlish et al. 2018): which batch size is worth its compute.

Notation. ``g_i`` is the gradient of example ``i``'s loss, ``G`` their mean
over the ``n`` training samples, and

.. math:: \\operatorname{tr}\\Sigma = \\frac{1}{n - 1} \\sum_{i=1}^{n} \\lVert g_i - G \\rVert^2

the trace of the per-example covariance. lrscout divides by ``n - 1``, not
``n``: with that normalisation the mean gradient ``G_B`` of a batch of ``B``
samples drawn *without replacement* satisfies, exactly,

.. math:: \\mathbb{E}\\,\\lVert G_B \\rVert^2 = \\lVert G \\rVert^2
          + \\Bigl(\\frac{1}{B} - \\frac{1}{n}\\Bigr) \\operatorname{tr}\\Sigma

(the finite-population correction: ``Cov(G_B) = (n - B) / (B (n - 1))`` times
the ``n``-normalised covariance), and it is the unbiased estimate of the
covariance of the distribution the data were drawn from. For an endless
stream (``n = None``) the ``1/n`` term is dropped.

The simple noise scale ``B_simple = tr(Sigma) / |G|^2`` is the batch size at
which the noise of a batch gradient equals its signal; McCandlish et al. show
that the critical batch size ``B_crit`` (where training takes twice the fewest
possible steps and twice the fewest possible samples) is close to it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._batching import as_generator, gd_variant
from ._errors import InvalidArgumentError
from ._jsonio import (
    PathOrFile,
    Source,
    check_header,
    decode_float,
    encode_float,
    json_copy,
    read_json,
    write_json,
)
from ._lr_scaling import LRAdvice, rescale_lr
from ._result import RangeTestResult
from ._validation import check_float, check_int, check_option, fail
from ._validation import number_text as _num
from .plotting import plot_noise_scale

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_FORMAT = "lrscout.NoiseScaleResult"
_VERSION = 1

Interval = tuple[float, float]


def expected_batch_sq_norm(
    grad_norm_sq: float, trace_cov: float, batch_size: int, n_samples: int | None = None
) -> float:
    """Expected squared norm of a batch's mean gradient.

    .. math:: \\mathbb{E}\\,\\lVert G_B \\rVert^2 = \\lVert G \\rVert^2
              + \\Bigl(\\frac{1}{B} - \\frac{1}{n}\\Bigr) \\operatorname{tr}\\Sigma

    for batches of ``B`` distinct samples drawn uniformly from ``n``, with
    ``tr(Sigma)`` normalised by ``n - 1`` (see the module docstring); without
    the ``1/n`` term when ``n_samples`` is ``None`` (an endless stream).

    Args:
        grad_norm_sq: ``|G|^2``, the squared norm of the full-data gradient, >= 0.
        trace_cov: ``tr(Sigma)``, >= 0.
        batch_size: ``B``, at least 1 (at most ``n_samples``).
        n_samples: ``n``; ``None`` for an endless stream.

    Returns:
        The expectation.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> expected_batch_sq_norm(1.0, 64.0, 8)
        9.0
        >>> expected_batch_sq_norm(1.0, 64.0, 64, n_samples=64)  # the whole set: no noise
        1.0
    """
    where = "expected_batch_sq_norm"
    g2 = check_float(grad_norm_sq, "grad_norm_sq", where=where, minimum=0.0)
    trace = check_float(trace_cov, "trace_cov", where=where, minimum=0.0)
    n = None if n_samples is None else check_int(n_samples, "n_samples", where=where, minimum=2)
    b = check_int(batch_size, "batch_size", where=where, minimum=1, maximum=n)
    return g2 + (1.0 / b - (0.0 if n is None else 1.0 / n)) * trace


# The result --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NoiseScaleResult:
    """A measured gradient noise scale and the batch size it suggests.

    Attributes:
        b_simple: ``tr(Sigma) / |G|^2``; ``inf`` when the estimate of
            ``|G|^2`` is not positive (the signal is not resolved), negative
            when the estimate of ``tr(Sigma)`` is (the noise is not resolved).
        grad_norm_sq: ``|G|^2``, the squared norm of the full-data gradient.
        trace_cov: ``tr(Sigma)``, ``n - 1`` normalised (module docstring).
        interval: Confidence interval of ``b_simple`` (``(b_simple, b_simple)``
            for the exact method).
        grad_norm_sq_interval, trace_cov_interval: Same, for ``|G|^2`` and
            ``tr(Sigma)``.
        confidence: Level of the intervals (1.0 for the exact method).
        method: ``"two-batch"`` (the estimator) or ``"exact"`` (from every
            example's gradient).
        small_batch, big_batch: Batch sizes of the estimator (``None`` for
            the exact method).
        n_samples: Training-set size ``n``; ``None`` for an endless stream.
        pair_grad_norm_sq, pair_trace_cov: The unbiased estimates of
            ``|G|^2`` and ``tr(Sigma)`` from each big batch (empty for the exact
            method); ``grad_norm_sq`` and ``trace_cov`` are their means.
        info: Facts about the measurement (framework, model, ...), JSON values.

    ``suggested_batch_size``, ``reasoning`` and ``history`` are derived from
    these; :meth:`advise` turns the suggestion into learning-rate advice.
    """

    b_simple: float
    grad_norm_sq: float
    trace_cov: float
    interval: Interval
    grad_norm_sq_interval: Interval
    trace_cov_interval: Interval
    confidence: float
    method: str
    small_batch: int | None
    big_batch: int | None
    n_samples: int | None
    pair_grad_norm_sq: np.ndarray = field(default_factory=lambda: np.empty(0))
    pair_trace_cov: np.ndarray = field(default_factory=lambda: np.empty(0))
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = "NoiseScaleResult"
        method = check_option(self.method, "method", ("two-batch", "exact"), where=where)
        values: dict[str, Any] = {
            # Estimates may be inf (a ratio over a non-positive |G|^2) or NaN.
            "b_simple": _real(self.b_simple, "b_simple", where),
            "grad_norm_sq": _real(self.grad_norm_sq, "grad_norm_sq", where),
            "trace_cov": _real(self.trace_cov, "trace_cov", where),
            "confidence": check_float(
                self.confidence, "confidence", where=where, minimum=0.0, maximum=1.0, open_minimum=True
            ),
        }
        for name in ("interval", "grad_norm_sq_interval", "trace_cov_interval"):
            pair = getattr(self, name)
            if isinstance(pair, (str, bytes)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
                fail(where, name, "a (low, high) pair of numbers", pair)
            low, high = _real(pair[0], f"{name}[0]", where), _real(pair[1], f"{name}[1]", where)
            if low > high:
                fail(where, name, "a pair with low <= high", pair)
            values[name] = (low, high)
        if self.n_samples is not None:
            values["n_samples"] = check_int(self.n_samples, "n_samples", where=where, minimum=2)
        if method == "exact":
            for name in ("small_batch", "big_batch"):
                if getattr(self, name) is not None:
                    fail(where, name, "None for the exact method", getattr(self, name))
        else:
            small = check_int(self.small_batch, "small_batch", where=where, minimum=1)
            big = check_int(self.big_batch, "big_batch", where=where, minimum=small + 1)
            if self.n_samples is not None and big > self.n_samples:
                fail(where, "big_batch", f"at most n_samples ({self.n_samples})", big)
            values.update(small_batch=small, big_batch=big)
        for name in ("pair_grad_norm_sq", "pair_trace_cov"):
            try:
                array = np.array(getattr(self, name), dtype=np.float64, copy=True)
            except (TypeError, ValueError):
                fail(where, name, "an array of numbers", getattr(self, name))
            if array.ndim != 1 or not np.all(np.isfinite(array)):
                fail(where, name, "a 1-D array of finite numbers", f"shape {array.shape}")
            array.flags.writeable = False
            values[name] = array
        if len(values["pair_grad_norm_sq"]) != len(values["pair_trace_cov"]):
            raise InvalidArgumentError(
                f"{where}: pair_grad_norm_sq and pair_trace_cov must have the same length."
            )
        values["info"] = MappingProxyType(json_copy(self.info, where=where))
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoiseScaleResult):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        low, high = self.interval
        return (
            f"NoiseScaleResult(b_simple={self.b_simple:.4g} [{low:.4g}, {high:.4g}], method={self.method!r}, "
            f"suggested_batch_size={self.suggested_batch_size!r})"
        )

    @property
    def num_pairs(self) -> int:
        """Number of big batches the estimate averages (0 for the exact method)."""
        return len(self.pair_grad_norm_sq)

    @property
    def history(self) -> np.ndarray:
        """The running estimate of ``b_simple`` after each big batch.

        Entry ``k`` is the ratio of the means of the first ``k + 1`` pairs'
        estimates (``inf`` while the mean of ``|G|^2`` is not positive); the
        last entry is ``b_simple``.
        """
        g = np.cumsum(self.pair_grad_norm_sq)
        t = np.cumsum(self.pair_trace_cov)
        return _ratio(t, g)

    @property
    def suggested_batch_size(self) -> int | None:
        """The power of two nearest ``b_simple`` on a log scale; ``None`` means the whole set.

        ``None`` (batch gradient descent) when that reaches ``n_samples``, 1
        (stochastic) when ``b_simple <= 1``. Powers of two because hardware
        and the batch size's effect are both coarse; :attr:`reasoning` says
        what the number means.
        """
        b = self.b_simple
        if not math.isfinite(b):
            return None
        if b <= 1.0:
            return 1
        power = 2 ** round(math.log2(b))
        if self.n_samples is not None and power >= self.n_samples:
            return None
        return int(power)

    @property
    def reasoning(self) -> str:
        """Why :attr:`suggested_batch_size`, in plain words."""
        return _reasoning(self)

    def advise(
        self,
        result: RangeTestResult | float,
        *,
        from_batch: int | None = None,
        optimizer: str = "sgd",
    ) -> LRAdvice:
        """How the learning rate of a range test moves to :attr:`suggested_batch_size`.

        :func:`rescale_lr` with ``b_noise = b_simple`` (the plain rule when
        ``b_simple`` is not a positive finite number; the message says so).

        Args:
            result: The range test's result, or its learning rate.
            from_batch: Its batch size; by default from ``result.info``.
            optimizer: ``"sgd"`` or ``"adam"``.

        Returns:
            An :class:`LRAdvice`.
        """
        noise = self.b_simple if 0.0 < self.b_simple < math.inf else None
        to_batch = self.suggested_batch_size
        advice = rescale_lr(
            result,
            to_batch,
            from_batch=from_batch,
            optimizer=optimizer,
            b_noise=noise,
            n_samples=self.n_samples,
        )
        if noise is None:
            note = f" (B_simple = {_num(self.b_simple)} is not a usable noise scale: plain rule used.)"
            advice = dataclasses.replace(advice, message=advice.message + note)
        return advice

    def plot(
        self,
        ax: Axes | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        reference: float | None = None,
        reference_label: str = "reference",
        title: str | None = None,
    ) -> Axes:
        """Plot the running estimate of ``b_simple`` against the big batches measured.

        The final confidence interval is a band, the suggested batch size a
        dashed line; ``reference`` (e.g. the exact value) a dotted one. For
        the exact method only the lines are drawn.

        Args:
            ax: Axes to draw on; a new figure when ``None``.
            path: Save the figure there (format from the extension).
            reference: A value to mark for comparison, or ``None``.
            reference_label: Its label in the legend.
            title: The title; a default one names the method.

        Returns:
            The matplotlib ``Axes``.
        """
        return plot_noise_scale(
            self, ax=ax, path=path, reference=reference, reference_label=reference_label, title=title
        )

    def _repr_html_(self) -> str:
        """The plot and a table (``b_simple``, suggested batch size, why) in a notebook; else ``repr``."""
        from .plotting._plots import figure_html

        low, high = self.interval
        suggested = self.suggested_batch_size
        rows = [
            [
                "B_simple",
                f"{_num(self.b_simple)} ({self.method}; "
                f"{self.confidence:.0%} interval {_num(low)} .. {_num(high)})",
            ],
            [
                "suggested batch size",
                "full (batch gradient descent)" if suggested is None else str(suggested),
            ],
            ["why", self.reasoning],
        ]
        return figure_html(lambda figure: self.plot(ax=figure.subplots()), rows, alt="gradient noise scale")

    # Files --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``inf``/``nan`` become strings. Derived values are included, for readers."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "b_simple": encode_float(self.b_simple),
            "grad_norm_sq": encode_float(self.grad_norm_sq),
            "trace_cov": encode_float(self.trace_cov),
            "interval": [encode_float(x) for x in self.interval],
            "grad_norm_sq_interval": [encode_float(x) for x in self.grad_norm_sq_interval],
            "trace_cov_interval": [encode_float(x) for x in self.trace_cov_interval],
            "confidence": self.confidence,
            "method": self.method,
            "small_batch": self.small_batch,
            "big_batch": self.big_batch,
            "n_samples": self.n_samples,
            "pair_grad_norm_sq": [encode_float(x) for x in self.pair_grad_norm_sq],
            "pair_trace_cov": [encode_float(x) for x in self.pair_trace_cov],
            "info": dict(self.info),
            "suggested_batch_size": self.suggested_batch_size,
            "reasoning": self.reasoning,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseScaleResult:
        """Rebuild a result from :meth:`to_dict` output (derived values are recomputed)."""
        where = "NoiseScaleResult.from_dict"
        data = check_header(data, where, _FORMAT, _VERSION, "noise-scale result")
        derived = {"format", "version", "suggested_batch_size", "reasoning"}
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = set(data) - fields - derived
        if extra:
            raise InvalidArgumentError(f"{where}: unexpected fields {sorted(extra)}.")
        for name in ("pair_grad_norm_sq", "pair_trace_cov"):
            if not isinstance(data.get(name), list):
                fail(where, name, "a list of numbers", data.get(name))
        try:
            return cls(
                b_simple=_decode(data["b_simple"]),
                grad_norm_sq=_decode(data["grad_norm_sq"]),
                trace_cov=_decode(data["trace_cov"]),
                interval=_decode_pair(data["interval"]),
                grad_norm_sq_interval=_decode_pair(data["grad_norm_sq_interval"]),
                trace_cov_interval=_decode_pair(data["trace_cov_interval"]),
                confidence=data["confidence"],
                method=data["method"],
                small_batch=data["small_batch"],
                big_batch=data["big_batch"],
                n_samples=data["n_samples"],
                pair_grad_norm_sq=np.array([_decode(x) for x in data["pair_grad_norm_sq"]]),
                pair_trace_cov=np.array([_decode(x) for x in data["pair_trace_cov"]]),
                info=data["info"],
            )
        except KeyError as error:
            raise InvalidArgumentError(f"{where}: field {error.args[0]!r} is missing.") from None

    def to_json(self, path: PathOrFile) -> None:
        """Write the result as JSON; :meth:`from_json` reads it back.

        Args:
            path: A file path (written atomically), an open text file or a
                file descriptor (written, left open).
        """
        write_json(path, self.to_dict(), where="NoiseScaleResult.to_json")

    @classmethod
    def from_json(cls, path: Source) -> NoiseScaleResult:
        """Read a result written by :meth:`to_json` (plain JSON; nothing is unpickled).

        Args:
            path: A file path, a file descriptor or an open file; a
                descriptor or a file is left open, also when reading fails.
        """
        return cls.from_dict(read_json(path, "NoiseScaleResult.from_json"))


def _real(value: Any, name: str, where: str) -> float:
    """``value`` as a float: a real number (inf and NaN included), not a bool or a string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        fail(where, name, "a real number", value)
    return float(value)


def _decode(value: Any) -> float:
    return decode_float(value, "value", "NoiseScaleResult.from_dict")


def _decode_pair(values: Any) -> Interval:
    if not isinstance(values, list) or len(values) != 2:
        raise InvalidArgumentError(
            f"NoiseScaleResult.from_dict: an interval must be a list of 2 numbers; got {values!r}."
        )
    return _decode(values[0]), _decode(values[1])


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, ``inf`` where the denominator is not positive."""
    out = np.full(np.shape(denominator), np.inf)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _reasoning(result: NoiseScaleResult) -> str:
    b = result.b_simple
    low, high = result.interval
    n = result.n_samples
    suggested = result.suggested_batch_size
    if result.method == "exact":
        measured = f"B_simple = tr(Sigma) / |G|^2 = {_num(b)} (exact, from every example's gradient)"
    else:
        measured = (
            f"B_simple = tr(Sigma) / |G|^2 ~ {_num(b)} ({result.confidence:.0%} interval "
            f"{_num(low)} .. {_num(high)}, {result.num_pairs} big batches of {result.big_batch})"
        )
    if not math.isfinite(b):
        where = "the whole set (batch gradient descent)" if n is not None else "as large as you can afford"
        return (
            f"{measured}: the estimate of |G|^2 is not positive, so the gradient's signal is not resolved "
            f"against its noise. Measure with more big batches or a larger big batch; until then the data "
            f"do not argue for any limit, and the batch can be {where}."
        )
    if b <= 1.0:
        return (
            f"{measured}: the gradient noise of a single example is already below its signal, "
            "so every sample added to a batch mostly repeats what the others say. Suggested batch "
            "size 1 (stochastic gradient descent): it needs the fewest samples."
        )
    parts = [
        f"{measured}: at about that batch size the noise of a batch gradient equals its signal.",
        "Below it, doubling the batch nearly halves the steps to reach a given loss; above it, the "
        "extra samples per step mostly waste compute (McCandlish et al. 2018, who find the critical "
        "batch size close to B_simple).",
    ]
    if suggested is None:
        label, how, variant, chosen = "the whole set", "B_simple reaches the training-set size", "batch", n
    else:
        variant = (
            gd_variant(suggested, n) if n is not None else ("stochastic" if suggested == 1 else "mini-batch")
        )
        label, how, chosen = str(suggested), "the power of two nearest B_simple", suggested
    if chosen is not None:
        parts.append(
            f"Suggested batch size {label} ({how}), {variant} gradient descent: by their model about "
            f"{1.0 + b / chosen:.2g}x the fewest possible steps and {1.0 + chosen / b:.2g}x the fewest "
            "possible samples."
        )
    if high > 2.0 * max(low, 1e-300) and result.method == "two-batch":
        parts.append("The interval is wide: measure with more big batches (num_pairs) for a firmer number.")
    parts.append("B_simple grows as the loss falls: measure again later in training.")
    return " ".join(parts)


# Building results -----------------------------------------------------------------


def draw_big_batch(rng: np.random.Generator, n_samples: int, big_batch: int) -> np.ndarray:
    """Indices of one big batch: ``big_batch`` distinct samples, uniformly at random.

    Every integration draws with this, so the same seed gives the same batches
    in NumPy and PyTorch. The small batches are its consecutive slices.
    """
    return rng.permutation(n_samples)[:big_batch]


def estimate_noise_scale(
    small_sq_norms: npt.ArrayLike,
    big_sq_norms: npt.ArrayLike,
    *,
    small_batch: int,
    big_batch: int,
    n_samples: int | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
    info: Mapping[str, Any] | None = None,
) -> NoiseScaleResult:
    """The unbiased two-batch estimate of the gradient noise scale.

    Pair ``k`` measures ``S_k = |G_small|^2`` (averaged over the small batches
    it holds) and ``L_k = |G_big|^2``. With ``a = 1/b - 1/n`` and
    ``c = 1/B - 1/n`` (``1/n`` dropped for an endless stream), the
    finite-population identity (module docstring) makes

    .. math:: \\widehat{\\operatorname{tr}\\Sigma}_k = \\frac{S_k - L_k}{1/b - 1/B},
              \\qquad \\widehat{\\lVert G \\rVert^2}_k = \\frac{a L_k - c S_k}{a - c}

    unbiased (for ``n = None`` the second is McCandlish et al.'s
    ``(B L - b S) / (B - b)``). Each is averaged over the pairs *before* the
    ratio ``B_simple = mean(tr) / mean(|G|^2)`` is taken: a ratio of noisy
    estimates is biased, a ratio of means much less so. The intervals are
    bootstrap percentile intervals over the pairs (``n_bootstrap`` resamples
    of the pairs with replacement, the same resamples for all three).

    The small batches may lie inside the big one (as a rank's batch lies in
    DDP's global batch): each expectation holds on its own, so the estimates
    stay unbiased, and the shared samples lower their variance.

    Args:
        small_sq_norms: ``|G_small|^2`` per pair, shape ``(m,)``, or
            ``(m, k)`` for ``k`` small batches per pair (averaged).
        big_sq_norms: ``|G_big|^2`` per pair, shape ``(m,)``, ``m >= 2``.
        small_batch: ``b``, samples per small batch, at least 1.
        big_batch: ``B``, samples per big batch, greater than ``b``.
        n_samples: ``n``, the size of the set the batches are drawn from
            without replacement; ``None`` for an endless stream.
        confidence: Level of the intervals, in (0, 1).
        n_bootstrap: Bootstrap resamples, at least 100.
        random_state: Seed or ``numpy.random.Generator`` for the bootstrap.
        info: JSON-serialisable facts to keep in ``result.info``.

    Returns:
        A :class:`NoiseScaleResult` with ``method == "two-batch"``.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> result = estimate_noise_scale([2.1, 1.9, 2.0, 2.2], [1.2, 1.1, 1.0, 1.3],
        ...                               small_batch=8, big_batch=64, random_state=0)
        >>> round(result.trace_cov, 4), round(result.grad_norm_sq, 4), round(result.b_simple, 3)
        (8.2286, 1.0214, 8.056)
        >>> result.suggested_batch_size
        8
    """
    where = "estimate_noise_scale"
    b = check_int(small_batch, "small_batch", where=where, minimum=1)
    big = check_int(big_batch, "big_batch", where=where, minimum=b + 1, fix="The big batch must be larger.")
    n = None
    if n_samples is not None:
        n = check_int(
            n_samples, "n_samples", where=where, minimum=big, fix="Batches are drawn from n_samples."
        )
    level, resamples = _check_bootstrap(confidence, n_bootstrap, where)
    small = _norms(small_sq_norms, "small_sq_norms", where, allow_2d=True)
    if small.ndim == 2:
        small = small.mean(axis=1)
    large = _norms(big_sq_norms, "big_sq_norms", where, allow_2d=False)
    if len(small) != len(large):
        raise InvalidArgumentError(
            f"{where}: small_sq_norms and big_sq_norms must have one entry per pair; "
            f"got {len(small)} and {len(large)}."
        )
    if len(large) < 2:
        fail(where, "big_sq_norms", "at least 2 pairs long", len(large), "Measure more pairs.")
    rng = as_generator(random_state, where=where)
    inv_n = 0.0 if n is None else 1.0 / n
    a = 1.0 / b - inv_n
    c = 1.0 / big - inv_n
    pair_trace = (small - large) / (a - c)
    pair_g2 = (a * large - c * small) / (a - c)
    g2 = float(pair_g2.mean())
    trace = float(pair_trace.mean())
    b_simple = float(_ratio(np.array(trace), np.array(g2)))
    picks = rng.integers(0, len(large), size=(resamples, len(large)))
    boot_g2 = pair_g2[picks].mean(axis=1)
    boot_trace = pair_trace[picks].mean(axis=1)
    return NoiseScaleResult(
        b_simple=b_simple,
        grad_norm_sq=g2,
        trace_cov=trace,
        interval=_percentile_interval(_ratio(boot_trace, boot_g2), level),
        grad_norm_sq_interval=_percentile_interval(boot_g2, level),
        trace_cov_interval=_percentile_interval(boot_trace, level),
        confidence=level,
        method="two-batch",
        small_batch=b,
        big_batch=big,
        n_samples=n,
        pair_grad_norm_sq=pair_g2,
        pair_trace_cov=pair_trace,
        info=dict(info or {}),
    )


def _check_bootstrap(confidence: Any, n_bootstrap: Any, where: str) -> tuple[float, int]:
    """``(confidence, n_bootstrap)`` checked, for every entry that ends in the estimator."""
    level = check_float(
        confidence, "confidence", where=where, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True
    )
    return level, check_int(n_bootstrap, "n_bootstrap", where=where, minimum=100)


def _norms(values: npt.ArrayLike, name: str, where: str, *, allow_2d: bool) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{where}: {name} must be an array of numbers; got {type(values).__name__}."
        ) from None
    shape = "(m,) or (m, k)" if allow_2d else "(m,)"
    if array.ndim not in ((1, 2) if allow_2d else (1,)) or array.size == 0:
        raise InvalidArgumentError(
            f"{where}: {name} must be a non-empty array of shape {shape}; got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise InvalidArgumentError(f"{where}: {name} must hold finite, non-negative squared norms.")
    return array


def _percentile_interval(values: np.ndarray, level: float) -> Interval:
    """Order statistics at ``(1 - level) / 2`` and ``(1 + level) / 2``; ``inf`` entries allowed."""
    ordered = np.sort(values)
    count = len(ordered)
    tail = (1.0 - level) / 2.0
    low = min(count - 1, math.floor(tail * count))
    high = max(0, min(count - 1, math.ceil((1.0 - tail) * count) - 1))
    return float(ordered[low]), float(ordered[high])


def exact_noise_scale(
    per_example_grads: npt.ArrayLike, *, info: Mapping[str, Any] | None = None
) -> NoiseScaleResult:
    """The noise scale computed exactly from every example's gradient.

    .. math:: G = \\frac{1}{n} \\sum_i g_i, \\qquad
              \\operatorname{tr}\\Sigma = \\frac{1}{n - 1} \\sum_i \\lVert g_i - G \\rVert^2,
              \\qquad B_\\text{simple} = \\operatorname{tr}\\Sigma / \\lVert G \\rVert^2

    Args:
        per_example_grads: Shape ``(n, p)``: row ``i`` is example ``i``'s
            gradient, flattened; ``n >= 2``.
        info: JSON-serialisable facts to keep in ``result.info``.

    Returns:
        A :class:`NoiseScaleResult` with ``method == "exact"``.

    Raises:
        TypeError, ValueError: On a bad argument.

    Example:
        >>> exact_noise_scale([[1.0, 0.0], [3.0, 0.0]]).b_simple  # G = (2, 0), tr = 2
        0.5
    """
    where = "exact_noise_scale"
    try:
        grads = np.asarray(per_example_grads, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{where}: per_example_grads must be a 2-D array of numbers; "
            f"got {type(per_example_grads).__name__}."
        ) from None
    if grads.ndim != 2 or grads.shape[0] < 2 or grads.shape[1] < 1:
        raise InvalidArgumentError(
            f"{where}: per_example_grads must have shape (n, p) with n >= 2; got shape {grads.shape}."
        )
    if not np.all(np.isfinite(grads)):
        raise InvalidArgumentError(f"{where}: per_example_grads must be finite.")
    mean = grads.mean(axis=0)
    trace = float(np.sum((grads - mean) ** 2)) / (grads.shape[0] - 1)
    return exact_result(float(mean @ mean), trace, grads.shape[0], info=info)


def exact_result(
    grad_norm_sq: float, trace_cov: float, n_samples: int, *, info: Mapping[str, Any] | None = None
) -> NoiseScaleResult:
    """A :class:`NoiseScaleResult` for exactly known ``|G|^2`` and ``tr(Sigma)``."""
    b_simple = float(_ratio(np.array(trace_cov), np.array(grad_norm_sq)))
    return NoiseScaleResult(
        b_simple=b_simple,
        grad_norm_sq=float(grad_norm_sq),
        trace_cov=float(trace_cov),
        interval=(b_simple, b_simple),
        grad_norm_sq_interval=(grad_norm_sq, grad_norm_sq),
        trace_cov_interval=(trace_cov, trace_cov),
        confidence=1.0,
        method="exact",
        small_batch=None,
        big_batch=None,
        n_samples=int(n_samples),
        info=dict(info or {}),
    )
