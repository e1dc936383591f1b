"""Plots of range tests and variant comparisons (needs matplotlib)."""

from ._plots import plot_lr_schedule as plot_lr_schedule
from ._plots import plot_range_test as plot_range_test
