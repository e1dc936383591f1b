"""Plots of range tests, noise scales and variant comparisons (needs matplotlib)."""

from ._plots import plot_lr_schedule as plot_lr_schedule
from ._plots import plot_noise_scale as plot_noise_scale
from ._plots import plot_range_test as plot_range_test
from ._plots import plot_variants as plot_variants
from ._plots import require_matplotlib as require_matplotlib
