"""What a user meets first: install hints, Keras backend, JSON for scripts, progress, notebooks, plots."""

from __future__ import annotations

import base64
import dataclasses
import html
import importlib.util
import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrscout
from lrscout import RangeTestResult, range_test
from lrscout._errors import missing_dependency
from lrscout.cli import main

CLI = [sys.executable, "-m", "lrscout"]
ROOT = Path(__file__).resolve().parents[1]


def _curve(n=100, seed=0):
    """Flat, falling, a minimum, then blowing up: a curve with a suggestion."""
    x = np.linspace(-5, 1, n)
    clean = 2.0 - 1.5 / (1 + np.exp(-3 * (x + 2))) + np.exp(4 * (x - 0.6))
    losses = iter(clean * np.exp(np.random.default_rng(seed).normal(0, 0.02, n)))
    return range_test(lambda lr: next(losses), start_lr=1e-5, end_lr=10.0, num_steps=n, divergence_factor=1e9)


def _flat(n=50):
    """A curve that never falls: no suggestion."""
    lrs = np.geomspace(1e-5, 1.0, n)
    losses = np.linspace(1.0, 3.0, n)
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=losses,
        stop_reason="completed",
        start_lr=1e-5,
        end_lr=1.0,
        num_steps=n,
        mode="exponential",
        smoothing=0.0,
        divergence_factor=4.0,
        warnings=("a <warning> & more",),
    )


def _env_without_keras_backend(tmp_path, config=None):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    home = tmp_path / "keras-home"
    home.mkdir(exist_ok=True)
    if config is not None:
        (home / "keras.json").write_text(json.dumps(config))
    env["KERAS_HOME"] = str(home)
    return env


# Missing optional dependencies: one message, a pip line that works -----------------


def test_missing_dependency_message_ends_with_a_working_pip_line():
    error = missing_dependency("lrscout.x", "torch", needs="PyTorch", or_else="use --framework numpy")
    assert isinstance(error, ImportError)
    assert str(error) == (
        'lrscout.x needs PyTorch, which is not installed. Install it with: pip install "torch==2.13.0" '
        "(or use --framework numpy)"
    )


@pytest.mark.parametrize(
    ("module", "hidden", "line"),
    [
        ("lrscout.pytorch", "torch", 'pip install "torch==2.13.0"'),
        ("lrscout.lightning", "lightning", 'pip install "torch==2.13.0" lightning'),
        ("lrscout.transformers", "transformers", 'pip install "torch==2.13.0" transformers accelerate'),
        ("lrscout.optax", "jax", "pip install jax optax"),
    ],
)
def test_import_without_the_framework_gives_the_pinned_install_line(module, hidden, line, tmp_path):
    code = f"import sys; sys.modules[{hidden!r}] = None\nimport {module}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith(f"Install it with: {line}"), done.stderr[-500:]


def test_the_pin_is_the_readmes():
    from lrscout._errors import TORCH_PIN

    readme = (ROOT / "README.md").read_text()
    pins = set(re.findall(r'"(torch==[0-9.]+)"', readme))
    assert pins == {TORCH_PIN}


@pytest.mark.parametrize(
    ("framework", "hidden", "line"),
    [
        ("pytorch", "torch", 'pip install "torch==2.13.0"'),
        ("jax", "jax", "pip install jax optax"),
    ],
)
def test_cli_without_the_framework_prints_the_install_line_before_reading_data(
    framework, hidden, line, tmp_path
):
    code = (
        f"import sys; sys.modules[{hidden!r}] = None\n"
        "from lrscout.cli import main\n"
        f"sys.exit(main(['find-lr', '--framework', {framework!r}, '--plot', 'none']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # the data were not read: no report header
    assert done.stderr.strip().splitlines()[-1].startswith(f"lrscout: error: --framework {framework}: ")
    assert done.stderr.strip().endswith(f"Install it with: {line}")


def test_cli_without_keras_prints_the_install_line(tmp_path):
    code = (
        "import sys; sys.modules['keras'] = None\n"
        "from lrscout.cli import main\n"
        "sys.exit(main(['find-lr', '--framework', 'keras', '--plot', 'none']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "lrscout: error: --framework keras: lrscout.keras needs Keras 3, which is not installed. "
        "Install it with: pip install keras"
    )


# The Keras backend: chosen in one place, for Python and the CLI alike -------------------

keras_installed = pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="needs keras")


@pytest.mark.parametrize(
    ("configured", "installed", "chosen"),
    [
        ("tensorflow", {"torch", "jax"}, "torch"),
        ("tensorflow", {"jax"}, "jax"),
        ("tensorflow", {"tensorflow", "torch"}, None),
        ("jax", {"jax", "torch"}, None),
        ("jax", {"torch"}, "torch"),
        ("tensorflow", set(), None),
    ],
)
def test_choose_backend_keeps_an_installed_choice_else_takes_the_first_installed(
    configured, installed, chosen
):
    from lrscout.keras._keras import choose_backend

    assert choose_backend(configured, installed.__contains__) == chosen


@keras_installed
def test_configured_backend_reads_keras_config_file(tmp_path):
    from lrscout.keras._keras import configured_backend

    assert configured_backend({"KERAS_HOME": str(tmp_path)}) == "tensorflow"
    (tmp_path / "keras.json").write_text('{"backend": "jax"}')
    assert configured_backend({"KERAS_HOME": str(tmp_path)}) == "jax"
    (tmp_path / "keras.json").write_text("not json")
    assert configured_backend({"KERAS_HOME": str(tmp_path)}) == "tensorflow"


def _first_installed():
    return next(name for name in ("tensorflow", "torch", "jax") if importlib.util.find_spec(name))


@keras_installed
def test_import_without_keras_backend_picks_an_installed_one_and_logs_it(tmp_path):
    pytest.importorskip("torch")
    code = (
        "import logging, os; logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')\n"
        "import lrscout.keras, keras\n"
        "print(keras.backend.backend(), os.environ.get('KERAS_BACKEND', 'unset'))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=_env_without_keras_backend(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    expected = _first_installed()
    # Keras's own default, tensorflow, is left to Keras; another backend is set and logged.
    assert done.stdout.split() == [expected, "unset" if expected == "tensorflow" else expected]
    if expected != "tensorflow":
        assert (
            f"lrscout.keras KERAS_BACKEND is not set and Keras's default backend (tensorflow) is not "
            f"installed; using {expected}." in done.stderr
        )


@keras_installed
def test_an_installed_backend_in_keras_config_is_kept(tmp_path):
    pytest.importorskip("jax")
    code = "import os, lrscout.keras, keras; print(keras.backend.backend(), 'KERAS_BACKEND' in os.environ)"
    env = _env_without_keras_backend(tmp_path, {"backend": "jax"})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["jax", "False"]


@keras_installed
def test_keras_backend_named_but_not_installed_says_both_ways_out(tmp_path):
    missing = next((n for n in ("tensorflow", "jax", "torch") if importlib.util.find_spec(n) is None), None)
    if missing is None:
        pytest.skip("every backend is installed")
    env = {**_env_without_keras_backend(tmp_path), "KERAS_BACKEND": missing}
    done = subprocess.run(
        [sys.executable, "-c", "import lrscout.keras"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"ImportError: lrscout.keras needs the Keras backend {missing!r} named by KERAS_BACKEND, which is "
        f"not installed. Install it with: pip install {missing}"
    )


@keras_installed
def test_cli_and_python_choose_the_same_backend(tmp_path):
    pytest.importorskip("torch")
    argv = [*CLI, "find-lr", "--framework", "keras", "--num-steps", "10", "--no-extend", "--quiet"]
    done = subprocess.run(
        [*argv, "--plot", "none", "--json", "-"],
        capture_output=True,
        text=True,
        env=_env_without_keras_backend(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"keras backend: {_first_installed()}\n" in done.stderr
    assert json.loads(done.stdout)["info"]["backend"] == _first_installed()


# Output a script can read ------------------------------------------------------------


def test_summary_in_the_json_is_derived_and_ignored_when_read():
    result = _curve()
    data = result.to_dict()
    base, peak = result.lr_range()
    assert data["summary"] == {
        "suggestion": {
            "lr": result.suggestion.lr,
            "method": "auto",
            "schedule": "constant",
            "total_steps": None,
        },
        "lr_range": [base, peak],
        "stop_reason": result.stop_reason,
        "warnings": list(result.warnings),
    }
    data["summary"] = {"suggestion": "anything"}  # derived: never read back
    assert RangeTestResult.from_dict(data) == result
    data.pop("summary")  # optional: files written before it existed
    assert RangeTestResult.from_dict(data) == result
    data["extra"] = 1
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        RangeTestResult.from_dict(data)


def test_summary_of_a_curve_without_suggestion_is_null():
    summary = _flat().to_dict()["summary"]
    assert summary == {
        "suggestion": None,
        "lr_range": None,
        "stop_reason": "completed",
        "warnings": ["a <warning> & more"],
    }


def test_json_dash_writes_json_to_stdout_and_the_report_to_stderr(tmp_path):
    argv = [*CLI, "find-lr", "--num-steps", "40", "--no-extend", "--plot", "none", "--json", "-"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # stdout is the JSON and nothing else
    result = RangeTestResult.from_dict(data)
    assert len(result) == 40
    chosen = result.suggestion
    assert data["summary"]["suggestion"] == {
        "lr": chosen.lr,
        "method": "auto",
        "schedule": chosen.schedule,
        "total_steps": chosen.total_steps,
    }
    assert data["summary"]["lr_range"] == list(result.lr_range())
    # The report's summary line is stable and greppable, on stderr here.
    lines = [line for line in done.stderr.splitlines() if line.startswith("suggested lr:")]
    assert lines == [f"suggested lr: {result.suggestion.lr:.3g}"]
    assert "result:" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_the_summary_line_is_greppable_on_stdout(tmp_path, capsys):
    assert (
        main(
            ["find-lr", "--quiet", "--num-steps", "40", "--plot", "none", "--json", str(tmp_path / "r.json")]
        )
        == 0
    )
    out = capsys.readouterr().out
    result = RangeTestResult.from_json(tmp_path / "r.json")
    assert re.findall(r"^suggested lr: (\S+)$", out, flags=re.MULTILINE) == [f"{result.suggestion.lr:.3g}"]


def test_noise_scale_json_dash(tmp_path):
    argv = [
        *CLI,
        "noise-scale",
        "--quiet",
        "--epochs",
        "0",
        "--num-pairs",
        "20",
        "--plot",
        "none",
        "--json",
        "-",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = lrscout.NoiseScaleResult.from_dict(json.loads(done.stdout))
    assert f"suggested batch size: {loaded.suggested_batch_size}" in done.stderr


def test_curve_warnings_of_other_commands_become_report_lines(capsys):
    import warnings

    from lrscout.cli._main import _curve_warnings_as_lines

    def fails_after_warning():
        for message in ("too noisy", "too noisy", "ran short"):
            warnings.warn(message, lrscout.CurveWarning, stacklevel=1)
        raise RuntimeError("the warning may say why")

    with pytest.raises(RuntimeError), _curve_warnings_as_lines():
        fails_after_warning()
    assert capsys.readouterr().out == "warning: too noisy\nwarning: ran short\n"
    with pytest.warns(DeprecationWarning, match="not a curve's"), _curve_warnings_as_lines():
        warnings.warn("not a curve's", DeprecationWarning, stacklevel=1)
    assert capsys.readouterr().out == ""


# Progress in logs ------------------------------------------------------------------


_NEEDS = {
    "numpy": (),
    "pytorch": ("torch",),
    "keras": ("keras", "torch"),
    "jax": ("jax", "optax"),
    "sklearn": (),
}


@pytest.mark.parametrize("framework", list(_NEEDS))
def test_no_carriage_returns_when_stderr_is_a_pipe(framework, tmp_path):
    from lrscout.cli._find_lr import FRAMEWORKS

    if framework not in FRAMEWORKS:
        pytest.skip(f"no --framework {framework} here")
    for module in _NEEDS[framework]:
        pytest.importorskip(module)
    argv = [*CLI, "find-lr", "--framework", framework, "--num-steps", "30", "--no-extend", "--plot", "none"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)  # progress on: no --quiet
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\r" not in done.stdout
    assert "LR range test" not in done.stderr


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_where_someone_watches(monkeypatch):
    from tqdm.std import tqdm

    from lrscout._engine import _progress_bar

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert _progress_bar(10) is None
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = _progress_bar(10)
    assert type(bar) is tqdm
    bar.close()
    assert "LR range test" in terminal.getvalue()


def test_no_progress_bar_in_a_notebook_without_ipywidgets(monkeypatch):
    from lrscout._engine import _progress_bar

    if importlib.util.find_spec("ipywidgets") is not None:
        pytest.skip("ipywidgets is installed: tqdm.auto's widget is used")
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", type(sys)("ipykernel.zmqshell"))
    # Even a stderr that says it is a terminal: tqdm's text bar in a kernel is a red stderr box.
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _progress_bar(10) is None  # warnings are errors here: no "IProgress not found"
    assert terminal.getvalue() == ""


def test_no_progress_bar_without_a_stderr(monkeypatch):
    from lrscout._engine import _progress_bar

    monkeypatch.setattr(sys, "stderr", None)
    assert _progress_bar(10) is None
    closed = io.StringIO()
    closed.close()  # isatty() raises
    monkeypatch.setattr(sys, "stderr", closed)
    assert _progress_bar(10) is None


def _public_entries_with_progress():
    import lrscout
    import lrscout.models
    import lrscout.sklearn

    entries = {
        "lrscout.range_test": lrscout.range_test,
        "lrscout.models.find_lr": lrscout.models.find_lr,
        "lrscout.models.rerun_find_lr": lrscout.models.rerun_find_lr,
        "lrscout.models.compare_variants": lrscout.models.compare_variants,
        "lrscout.compare_variants": lrscout.compare_variants,
        "lrscout.sklearn.find_lr": lrscout.sklearn.find_lr,
    }
    optional = {
        "lrscout.pytorch": ("LRFinder.range_test",),  # find_lr passes **kwargs to it
        "lrscout.keras": ("find_lr",),
        "lrscout.optax": ("find_lr",),
        "lrscout.lightning": ("find_lr", "LRFinder"),
        "lrscout.transformers": ("find_lr",),
        "lrscout.fastai": ("find_lr",),
    }
    for package, names in optional.items():
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        for name in names:
            entry = module
            for part in name.split("."):
                entry = getattr(entry, part)
            entries[f"{package}.{name}"] = entry
    return entries


def test_progress_has_one_default_everywhere():
    import inspect

    defaults = {
        name: inspect.signature(entry).parameters["progress"].default
        for name, entry in _public_entries_with_progress().items()
    }
    assert len(defaults) >= 6
    assert set(defaults.values()) == {True}, defaults


# Notebook display ------------------------------------------------------------------


def _html_parts(text):
    image = re.search(r'<img src="data:image/png;base64,([^"]+)"', text)
    assert image is not None
    png = base64.b64decode(image.group(1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", text)


def _no_open_figures():
    import matplotlib.pyplot as plt

    return plt.get_fignums() == []


def test_range_test_result_renders_in_a_notebook_and_stays_repr_in_a_terminal():
    from IPython.core.formatters import DisplayFormatter

    result = _curve()
    data, _ = DisplayFormatter().format(result)
    assert data["text/plain"] == repr(result)
    cells = _html_parts(data["text/html"])
    base, peak = result.lr_range()
    assert cells[:4] == [
        "suggested lr",
        f"{result.suggestion.lr:.3g} (auto)",
        "lr_range()",
        f"{base:.3g} .. {peak:.3g}",
    ]
    assert cells[4] == "stopped" and cells[5].startswith(f"{result.stop_reason} (")
    assert _no_open_figures()


def test_notebook_tables_carry_their_alignment_on_every_cell():
    # Jupyter's CSS sets text-align on td and th and centres tables: a table-level style loses.
    from sklearn.datasets import load_digits

    from lrscout.models import SoftmaxClassifier, compare_variants

    X, y = load_digits(return_X_y=True)
    comparison = compare_variants(
        SoftmaxClassifier(random_state=0), X[:200] / 16, y[:200], epochs=1, batch_sizes=(None, 32)
    )
    for text, right in ((_curve()._repr_html_(), 0), (comparison._repr_html_(), 6)):
        assert '<table style="margin-left:0;margin-right:auto">' in text
        cells = re.findall(r"<(t[dh])([^>]*)>", text)
        assert cells and all(attributes.startswith(' style="text-align:') for _, attributes in cells)
        rows = re.findall(r"<tr>(.*?)</tr>", text)
        for row in rows:
            sides = re.findall(r'text-align:(\w+)"', row)
            assert sides == ["left"] * (len(sides) - right) + ["right"] * right


def test_repr_shows_the_suggestion_and_the_range():
    result = _curve()
    base, peak = result.lr_range()
    assert repr(result).startswith(
        f"RangeTestResult(suggestion={result.suggestion.lr:.3g} (auto), lr_range=({base:.3g}, {peak:.3g}), "
    )
    assert repr(_flat()).startswith("RangeTestResult(suggestion=None, ")


def test_a_result_without_suggestion_still_renders_with_the_reason():
    result = _flat()
    cells = _html_parts(result._repr_html_())
    with pytest.raises(lrscout.NoSuggestionError) as caught:
        _ = result.suggestion
    assert cells[1] == html.escape("none: " + str(caught.value).removeprefix("suggest: "))
    assert cells[2:4] == ["lr_range()", "none"]
    assert cells[-2:] == ["warning", "a &lt;warning&gt; &amp; more"]


def test_noise_scale_and_variant_comparison_render():
    from sklearn.datasets import load_digits

    from lrscout.models import SoftmaxClassifier, compare_variants, noise_scale

    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16
    noise = noise_scale(
        SoftmaxClassifier(epochs=2, random_state=0).fit(X, y[:300]), X, y[:300], method="exact"
    )
    cells = _html_parts(noise._repr_html_())
    assert cells[0] == "B_simple" and cells[2:4] == ["suggested batch size", str(noise.suggested_batch_size)]
    comparison = compare_variants(
        SoftmaxClassifier(random_state=0), X, y[:300], epochs=2, batch_sizes=(None, 32)
    )
    cells = _html_parts(comparison._repr_html_())
    table = [re.split(r" {2,}", line.strip()) for line in comparison.table().splitlines()]
    assert cells == [cell for row in (table[0], *table[2:]) for cell in row]
    assert _no_open_figures()


# Plots -------------------------------------------------------------------------------


def _legend(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_range_test_legend_leaves_the_ema_out_unless_asked():
    result = _curve()
    plain = _legend(result.plot())
    assert len(plain) == 4 and not any("EMA" in label for label in plain)
    ax = result.plot(ema=True)
    assert "EMA (divergence check; lags)" in _legend(ax)
    ema = [line for line in ax.get_lines() if line.get_label().startswith("EMA")]
    np.testing.assert_array_equal(ema[0].get_ydata(), result.smoothed_losses)


def test_the_plotted_line_is_the_saved_trend():
    result = _curve()
    ax = result.plot()
    (line,) = [line for line in ax.get_lines() if line.get_label().startswith("trend")]
    np.testing.assert_array_equal(line.get_ydata(), result.trend)
    np.testing.assert_array_equal(line.get_xdata(), result.lrs)


def test_the_trend_follows_the_points_of_a_smooth_curve_to_its_diverging_end():
    # Full-batch gradient descent on diabetes: no noise, so a line that follows the points
    # is on them. The log-space Gaussian drawn before rose past 0.5 where the points sat at 0.243.
    from lrscout.cli._data import load_dataset
    from lrscout.models import LinearRegressor, find_lr

    data = load_dataset("diabetes")
    result = find_lr(LinearRegressor(batch_size=None), data.X, data.y, progress=False)
    assert result.stop_reason == "diverged"
    steady = slice(0, len(result) - 3)  # all but the diverging last steps
    np.testing.assert_allclose(result.trend[steady], result.losses[steady], rtol=0.02)
    # Nor does it rise before the points do.
    assert np.all(result.trend[steady] <= 1.02 * np.maximum.accumulate(result.losses[steady][::-1])[::-1])


def test_the_trend_shrugs_off_a_spike_and_tracks_noise():
    rng = np.random.default_rng(0)
    level = np.linspace(2.0, 1.0, 200)
    noisy = level * np.exp(rng.normal(0.0, 0.05, 200))
    spiked = noisy.copy()
    spiked[100] = 1e6
    trend = lrscout.loss_trend(spiked)
    assert np.max(np.abs(trend / level - 1.0)) < 0.05  # one huge loss leaves no bump
    assert np.all(np.isnan(lrscout.loss_trend([1.0, np.inf, 2.0])[1:]))


@pytest.mark.parametrize("scale", [1e-5, 1e-3, 1.0, 1e3])
def test_variant_panels_read_cleanly(scale):
    from sklearn.datasets import load_digits

    from lrscout.models import SoftmaxClassifier, compare_variants

    X, y = load_digits(return_X_y=True)
    comparison = compare_variants(
        SoftmaxClassifier(random_state=0), X[:200] / 16, y[:200], epochs=3, batch_sizes=(None, 1, 32), lr=0.1
    )
    runs = tuple(dataclasses.replace(run, epoch_times=run.epoch_times * scale) for run in comparison.runs)
    _, by_update, by_second = dataclasses.replace(comparison, runs=runs).plot()
    figure = by_second.get_figure(root=True)
    figure.canvas.draw()
    # Per update: the epoch ends are markers, not lines across hundreds of updates.
    for line in by_update.get_lines():
        if line.get_marker() == "o":
            assert line.get_linestyle() == "None"
    # Per second: a unit that needs no offset text, and tick labels that do not overlap.
    assert by_second.xaxis.get_offset_text().get_text() == ""
    renderer = figure.canvas.get_renderer()
    left, right = by_second.get_xlim()
    boxes = sorted(
        (label.get_window_extent(renderer).x0, label.get_window_extent(renderer).x1)
        for tick, label in zip(by_second.get_xticks(), by_second.get_xticklabels(), strict=True)
        if left <= tick <= right and label.get_text()
    )
    assert len(boxes) >= 3
    assert all(a[1] < b[0] for a, b in itertools.pairwise(boxes))
    longest = max(run.total_time for run in runs)
    assert by_second.get_xlim()[1] * {"µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}[
        re.search(r"\((\S+)\)$", by_second.get_xlabel()).group(1)
    ] == pytest.approx(longest, rel=0.1)


def test_a_variant_comparison_repr_is_a_line_per_run_not_its_arrays():
    from lrscout import compare_variants
    from lrscout.models import LinearRegressor

    X = np.random.default_rng(0).normal(size=(500, 2))
    comparison = compare_variants(LinearRegressor(random_state=0), X, X @ [1.0, 2.0], epochs=3, lr=0.05)
    text = repr(comparison)
    assert "array(" not in text and "RangeTestResult" not in text
    assert text.count("VariantRun(") == 3 and "variant='stochastic'" in text
