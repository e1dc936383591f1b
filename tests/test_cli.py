"""The command line, run in-process and as a real subprocess."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import lrscout
from lrscout import RangeTestResult
from lrscout.cli import _find_lr as cli_find_lr
from lrscout.cli import main
from lrscout.cli._data import Dataset, load_csv
from lrscout.cli._find_lr import FindLRSettings, load_runner


def test_find_lr_with_no_arguments_runs_on_digits(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["find-lr", "--quiet", "--json", "r.json"]) == 0
    out = capsys.readouterr().out
    assert "digits (1797 samples, 64 features, 10 classes)" in out
    assert "mini-batch gradient descent, batch size 32, 57 steps per epoch" in out
    result = RangeTestResult.from_json(tmp_path / "r.json")
    assert f"suggested lr: {result.suggestion.lr:.3g}" in out
    base, peak = result.lr_range()
    assert f"{base:.3g} .. {peak:.3g}" in out
    assert f"stopped: {result.stop_reason}" in out
    assert (tmp_path / "lrscout-find-lr.png").stat().st_size > 10_000
    assert result.info["framework"] == "numpy" and result.info["batch_size"] == 32


def test_find_lr_options_reach_the_range_test(tmp_path, capsys):
    path = tmp_path / "r.json"
    argv = [
        "find-lr",
        "--dataset",
        "diabetes",
        "--batch-size",
        "full",
        "--start-lr",
        "1e-4",
        "--end-lr",
        "5",
        "--num-steps",
        "40",
        "--mode",
        "linear",
        "--no-extend",
        "--plot",
        "none",
        "--json",
        str(path),
        "--quiet",
    ]
    assert main(argv) == 0
    result = RangeTestResult.from_json(path)
    assert (result.start_lr, result.end_lr, result.num_steps, result.mode) == (1e-4, 5.0, 40, "linear")
    assert result.info["variant"] == "batch" and result.info["model"] == "LinearRegressor"
    assert "batch gradient descent" in capsys.readouterr().out


def test_a_curve_without_an_answer_prints_none_and_exits_2(tmp_path, capsys):
    # Rates up to 1e-6 on digits: the loss falls by under 0.1 % and never turns up, even after the
    # extension. The result and plot are still written; the status says there is no rate.
    json_path = tmp_path / "result.json"
    argv = ["find-lr", "--start-lr", "1e-7", "--end-lr", "1e-6", "--plot", "none", "--json", str(json_path)]
    assert main([*argv, "--quiet"]) == 2
    out = capsys.readouterr().out
    assert "suggested lr:" not in out and "lr range" not in out
    assert "no suggestion:" in out and "Raise --end-lr" in out
    saved = RangeTestResult.from_json(json_path)
    assert saved.info["extension"]["planned_end_lr"] == 1e-6


def test_schedule_and_epochs_give_the_rate_for_that_plan(tmp_path, capsys):
    plain, planned = tmp_path / "plain.json", tmp_path / "planned.json"
    base = ["find-lr", "--plot", "none", "--quiet", "--json"]
    assert main([*base, str(plain)]) == 0
    assert main([*base, str(planned), "--schedule", "one_cycle", "--epochs", "30"]) == 0
    out = capsys.readouterr().out
    assert "for: peak of a one-cycle schedule, 1710 steps" in out  # 30 epochs of 57 batches of 32
    default, chosen = RangeTestResult.from_json(plain), RangeTestResult.from_json(planned)
    np.testing.assert_array_equal(default.losses, chosen.losses)  # the same test, read for another plan
    assert chosen.suggestion == default.suggest(schedule="one_cycle", total_steps=1710)
    assert chosen.info["plan"]["source"] == "command line"


def test_the_report_says_when_the_range_was_extended(tmp_path, capsys):
    assert main(["find-lr", "--end-lr", "1", "--num-steps", "200", "--plot", "none", "--quiet"]) == 0
    out = capsys.readouterr().out
    extended = [line for line in out.splitlines() if line.startswith("extended:")]
    assert len(extended) == 1 and "--end-lr 1 (step 200)" in extended[0]
    tested = next(line for line in out.splitlines() if line.startswith("tested lr"))
    extra = int(extended[0].split("went on for ")[1].split()[0])
    assert f"{200 + extra} of {200 + extra} steps" in tested
    assert main(["find-lr", "--end-lr", "1", "--num-steps", "200", "--no-extend", "--plot", "none"]) == 0
    assert "extended:" not in capsys.readouterr().out


def test_find_lr_on_a_csv_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    kind = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    lines = ["a,b,label,c"] + [f"{x[0]},{x[1]},{k},{x[2]}" for x, k in zip(X, kind, strict=True)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    argv = ["find-lr", "--csv", str(tmp_path / "data.csv"), "--target", "label", "--plot", "none", "--quiet"]
    assert main(argv) == 0
    assert "data.csv (150 samples, 3 features, 2 classes)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["find-lr", "--batch-size", "0"],
            "argument --batch-size: must be a positive integer or 'full'; got '0'",
        ),
        (["find-lr", "--start-lr", "-1"], "argument --start-lr: must be a positive number; got '-1'"),
        (["find-lr", "--start-lr", "1", "--end-lr", "0.1"], "--end-lr must be greater than --start-lr (1.0)"),
        (["find-lr", "--momentum", "2"], "--momentum must be < 1.0; got 2.0."),
        (["compare-variants", "--momentum", "-1"], "--momentum must be >= 0.0; got -1.0."),
        (["noise-scale", "--small-batch", "16", "--big-batch", "8"], "--big-batch must exceed --small-batch"),
        (
            ["fnd-lr"],
            "invalid choice: 'fnd-lr' (choose from 'find-lr', 'compare-variants', 'noise-scale'); "
            "did you mean 'find-lr'?",
        ),
        (
            ["find-lr", "--start_lr", "1e-5"],
            "unrecognized arguments: --start_lr 1e-5; did you mean --start-lr",
        ),
        (["find-lr", "--dataset", "digit"], "did you mean 'digits'?"),
        (["find-lr", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["find-lr", "--model", "mlp"], "--model mlp needs --framework pytorch or keras"),
        (["find-lr", "--num-steps", "1"], "--num-steps must be at least 2; got 1"),
        (["find-lr", "--csv", "missing.csv", "--target", "y"], "--csv: no such file: 'missing.csv'"),
        (["find-lr", "--target", "y"], "--target needs --csv"),
        (
            ["compare-variants", "--batch-sizes", "full,x"],
            "--batch-sizes: each entry must be a positive integer",
        ),
        (["compare-variants", "--lr", "fast"], "--lr must be 'auto' or a positive number"),
        (["fit"], "argument COMMAND: invalid choice: 'fit'"),
    ],
)
def test_user_errors_are_a_usage_line_and_one_error_line_with_status_2(
    argv, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [*argv, "--quiet"]
            if argv[0].startswith("find-") or argv[0] in ("compare-variants", "noise-scale")
            else argv
        )
        == 2
    )
    usage, error = capsys.readouterr().err.splitlines()
    command = argv[0] if argv[0] in ("find-lr", "compare-variants", "noise-scale") else None
    # argparse's convention: the usage of the command the mistake is in, then the error.
    assert usage.startswith(f"usage: lrscout {command} [options]" if command else "usage: lrscout [-h]")
    assert error.startswith("lrscout: error: ")
    assert message in error


@pytest.mark.parametrize(
    "argv",
    [
        ["find-lr", "--start-lr", "1", "--end-lr", "0.1"],
        ["find-lr", "--momentum", "2"],
        ["find-lr", "--num-steps", "1"],
        ["find-lr", "--model", "mlp"],
        ["compare-variants", "--epochs", "0"],
        ["compare-variants", "--lr", "fast"],
        ["noise-scale", "--num-pairs", "1"],
        ["noise-scale", "--small-batch", "16", "--big-batch", "8"],
    ],
)
def test_arguments_are_checked_before_the_data_is_read(argv, monkeypatch, capsys):
    from lrscout.cli import _main

    def no_data(args):
        raise AssertionError("the data were read before the arguments were checked")

    monkeypatch.setattr(_main, "_load_data", no_data)
    assert main([*argv, "--quiet", "--plot", "none"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "lrscout: error: " in captured.err


_PYTHON_WORDS = (
    r"\b(start_lr|end_lr|num_steps|batch_size|run_find_lr|range_test|rerun_find_lr|lrscout\.models)\b"
)


@pytest.mark.parametrize(
    "argv",
    [
        ["find-lr", "--num-steps", "5", "--end-lr", "1e-5"],  # never turned up: raise --end-lr
        ["find-lr", "--json", "-"],
        ["noise-scale", "--json", "-"],
        ["noise-scale", "--epochs", "0"],
        ["find-lr", "--start-lr", "1", "--end-lr", "0.1"],
    ],
)
def test_the_command_line_speaks_in_its_flags(argv, capsys, tmp_path, monkeypatch):
    import json
    import re

    monkeypatch.chdir(tmp_path)
    main([*argv, "--quiet", "--plot", "none"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    if "--json" in argv:
        # The file's field names are the result's (start_lr, ...); its messages are the command line's.
        data = json.loads(captured.out)
        assert "{batch_size}" not in captured.out
        text = (
            captured.err + json.dumps(data["info"].get("rerun_hint")) + json.dumps(data["info"].get("advice"))
        )
    assert not re.search(_PYTHON_WORDS, text), re.search(_PYTHON_WORDS, text).group(0)
    assert "{batch_size}" not in text
    if "--end-lr" in argv and "1e-5" in argv:
        assert "Raise --end-lr (e.g. to" in text


def test_noise_scale_names_the_command_that_checks_its_advice(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(["noise-scale", "--dataset", "breast-cancer", "--seed", "3", "--quiet", "--plot", "none"]) == 0
    )
    out = capsys.readouterr().out
    import re

    command = re.search(r"confirm with a range test at batch (\d+) \((lrscout find-lr [^)]*)\)", out)
    assert command is not None, out
    assert (
        command.group(2)
        == f"lrscout find-lr --dataset breast-cancer --seed 3 --batch-size {command.group(1)}"
    )
    # ... and that command runs.
    assert main([*command.group(2).split()[1:], "--quiet", "--plot", "none"]) == 0


def test_compare_variants_json_like_the_other_commands(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.chdir(tmp_path)
    argv = ["compare-variants", "--dataset", "diabetes", "--epochs", "2", "--lr", "0.01", "--plot", "none"]
    assert main([*argv, "--json", "runs.json", "--quiet"]) == 0
    assert "result: runs.json" in capsys.readouterr().out
    data = json.loads((tmp_path / "runs.json").read_text())
    assert [run["batch_size"] for run in data["runs"]] == [None, 1, 32]
    assert all(len(run["epoch_losses"]) == 2 and run["lr"] == 0.01 for run in data["runs"])
    assert main([*argv, "--json", "-", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == data | {
        "runs": [
            run | {"seconds": new["seconds"], "epoch_times": new["epoch_times"]}
            for run, new in zip(data["runs"], json.loads(captured.out)["runs"], strict=True)
        ]
    }
    assert "variant" in captured.err  # the table went to stderr


def test_csv_errors_name_the_problem(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,3\n3,4\n")
    assert main(["find-lr", "--csv", str(tmp_path / "d.csv"), "--quiet"]) == 2
    assert "--target is required with --csv; choose one of the columns: a, b" in capsys.readouterr().err
    assert main(["find-lr", "--csv", str(tmp_path / "d.csv"), "--target", "c", "--quiet"]) == 2
    assert "--target: no column 'c'" in capsys.readouterr().err
    assert main(["find-lr", "--csv", str(tmp_path / "d.csv"), "--target", "a", "--quiet"]) == 2
    assert "every feature column must be numeric" in capsys.readouterr().err


def test_a_variant_without_a_learning_rate_names_the_options_that_fix_it(tmp_path, monkeypatch, capsys):
    # Stochastic GD on diabetes: single-sample losses hide the fall (the curve cannot
    # support a rate). The command line has no num_steps for compare-variants: it
    # names --lr and --batch-sizes, and both fixes run.
    monkeypatch.chdir(tmp_path)
    assert main(["compare-variants", "--dataset", "diabetes", "--plot", "none", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrscout: error: no learning rate found for batch size 1: ")
    assert "--lr" in err and "leave 1 out of --batch-sizes" in err and err.count("\n") == 1
    argv = ["compare-variants", "--dataset", "diabetes", "--plot", "none", "--quiet"]
    assert main([*argv, "--batch-sizes", "full,32"]) == 0
    assert main([*argv, "--lr", "0.01"]) == 0


def test_compare_variants_prints_a_table_and_writes_a_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["compare-variants", "--dataset", "breast-cancer", "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    for variant, steps in (("batch", 1), ("stochastic", 569), ("mini-batch", 18)):
        assert any(line.split()[:1] == [variant] and str(steps) in line.split() for line in out.splitlines())
    assert (tmp_path / "lrscout-compare-variants.png").stat().st_size > 10_000


def test_module_entry_point_and_help():
    done = subprocess.run(
        [sys.executable, "-m", "lrscout", "--help"], capture_output=True, text=True, check=True
    )
    assert "find-lr" in done.stdout and "compare-variants" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "lrscout", "find-lr", "--mode", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("usage: lrscout find-lr") and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1].startswith("lrscout: error: argument --mode: invalid choice: 'x'")


def test_import_lrscout_needs_numpy_only():
    code = (
        "import sys, lrscout, lrscout.models; "
        "print(sorted(m for m in ('torch', 'keras', 'matplotlib', 'sklearn', 'tqdm', 'numba', 'jax') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_find_lr_with_a_framework(framework, tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "r.json"
    argv = ["find-lr", "--framework", framework, "--num-steps", "30", "--plot", "none", "--json", str(path)]
    assert main([*argv, "--quiet"]) == 0
    result = RangeTestResult.from_json(path)
    assert result.info["framework"] == framework
    assert result.info["momentum"] == 0.9
    assert "model: mlp" in capsys.readouterr().out


def test_keras_runs_without_keras_backend_set(tmp_path):
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    import os

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    argv = [
        sys.executable,
        "-m",
        "lrscout",
        "find-lr",
        "--framework",
        "keras",
        "--num-steps",
        "20",
        "--quiet",
        "--plot",
        "none",
        "--json",
        str(tmp_path / "r.json"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert RangeTestResult.from_json(tmp_path / "r.json").info["backend"] in ("torch", "jax", "tensorflow")


# What find-lr trains: one settings record, one runner per framework ------------------


def _tiny(task):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    if task == "classification":
        return Dataset("tiny", X, ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)), task, ("a", "b", "c"))
    return Dataset("tiny", X, X @ [1.0, -1.0, 0.5], task)


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
@pytest.mark.parametrize(("task", "model"), [("classification", "mlp"), ("regression", "linear")])
def test_runners_are_seeded_and_leave_global_rng_alone(framework, task, model):
    torch = pytest.importorskip("torch")
    run_find_lr = load_runner(framework)
    settings = FindLRSettings(model=model, batch_size=16, start_lr=1e-4, num_steps=12, seed=3)
    rng_state = torch.get_rng_state()
    first, second = run_find_lr(_tiny(task), settings), run_find_lr(_tiny(task), settings)
    assert first == second
    if framework == "pytorch":
        assert torch.equal(torch.get_rng_state(), rng_state)
        assert first.info["hidden_units"] == (64 if model == "mlp" else None)
    assert (first.info["task"], first.info["model"], first.info["seed"], first.info["momentum"]) == (
        task,
        model,
        3,
        0.9,
    )
    assert run_find_lr(_tiny(task), dataclasses.replace(settings, seed=4)) != first


def test_keras_runner_full_batch_regression():
    pytest.importorskip("keras")
    settings = FindLRSettings(
        batch_size=None, start_lr=1e-3, end_lr=1.0, num_steps=8, mode="linear", extend=False
    )
    result = load_runner("keras")(_tiny("regression"), settings)
    assert (len(result), result.info["batch_size"], result.info["steps_per_epoch"]) == (8, 60, 1)
    assert result.losses[-1] < result.losses[0]


@pytest.mark.parametrize("framework", ["numpy", "pytorch", "keras"])
def test_momentum_reaches_every_framework(framework, tmp_path):
    # Regression: --framework pytorch --momentum 0.5 used to exit 2 with
    # "run_find_lr() got an unexpected keyword argument 'momentum'".
    if framework != "numpy":
        pytest.importorskip("torch")
    path = tmp_path / "r.json"
    argv = ["find-lr", "--framework", framework, "--momentum", "0.5", "--num-steps", "10", "--plot", "none"]
    # 10 steps may support no rate (status 2, the result still written): the momentum must reach it.
    assert main([*argv, "--json", str(path), "--quiet"]) in (0, 2)
    assert RangeTestResult.from_json(path).info["momentum"] == 0.5


def test_a_bug_inside_the_cli_keeps_its_traceback(monkeypatch):
    def broken(data, settings):
        raise TypeError("internal bug")

    monkeypatch.setattr(cli_find_lr, "load_runner", lambda framework: broken)
    monkeypatch.setattr("lrscout.cli._main.load_runner", lambda framework: broken)
    with pytest.raises(TypeError, match="internal bug"):
        main(["find-lr", "--plot", "none", "--quiet"])


def test_a_bug_shows_a_traceback_in_a_subprocess(tmp_path):
    code = (
        "import sys, lrscout.cli._main as m\n"
        "def broken(data, settings):\n"
        "    raise TypeError('internal bug')\n"
        "m.load_runner = lambda framework: broken\n"
        "sys.exit(m.main(['find-lr', '--plot', 'none', '--quiet']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "TypeError: internal bug" in done.stderr


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"model": "cnn"}, r"^run_find_lr: model must be one of 'linear', 'mlp'; got 'cnn'"),
        ({"batch_size": 0}, r"^run_find_lr: batch_size must be an integer >= 1"),
        ({"seed": -1}, r"^run_find_lr: seed must be an integer in \[0, 4294967295\]"),
        ({"start_lr": 0.0}, r"^run_find_lr: start_lr must be positive"),
        ({"momentum": 1.0}, r"^run_find_lr: momentum must be < 1\.0"),
        ({"progress": 1}, r"^run_find_lr: progress must be True or False"),
    ],
)
def test_settings_are_checked_once(change, match):
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        FindLRSettings(**change)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"task": "ranking"}, r"^Dataset: task must be one of 'classification', 'regression'"),
        ({"y": np.array([0.5, 1.0, 2.0, 0.0])}, r"^Dataset: y must be integer class labels"),
        ({"y": np.zeros(4, dtype=np.int64)}, r"^Dataset: y must be labels 0\.\.K-1 with K >= 2"),
        ({"y": np.array([0, 2, 2, 0])}, r"^Dataset: y must be labels 0\.\.K-1 with K >= 2, each present"),
        ({"y": np.arange(3)}, r"^Dataset: y must be of shape \(4,\), one target per row of X"),
        ({"X": np.ones(4)}, r"^Dataset: X must be a 2-D array"),
        ({"X": np.full((4, 2), np.nan)}, r"^Dataset: X must be finite floats"),
        ({"task": "regression", "y": np.array([0.0, np.inf, 1.0, 2.0])}, r"^Dataset: y must be finite"),
    ],
)
def test_data_are_checked_once_for_every_framework(change, match):
    fields = {
        "name": "d",
        "X": np.arange(8.0).reshape(4, 2),
        "y": np.array([0, 1, 1, 0]),
        "task": "classification",
    }
    fields.update(change)
    with pytest.raises(lrscout.InvalidArgumentError, match=match):
        Dataset(**fields)


def test_csv_as_excel_writes_it(tmp_path):
    # UTF-8 with a byte-order mark, semicolons, blank lines, a huge text cell in an ignored-free
    # table, labels "1" and "1.0" (one class), values near the largest float in one column.
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        a, b = rng.normal(size=2)
        label = ("1" if i % 3 else "1.0") if a + b > 0 else "0"
        rows.append(f"{a:.6f};{b * 1e306:.6e};{label}")
        if i % 10 == 0:
            rows.append("")
    text = "\ufeffa;b;label\n" + "\n".join(rows) + "\n"
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8")
    data = load_csv(str(path), "label", "auto")
    assert data.task == "classification" and data.class_names == ("0", "1")
    assert data.X.shape == (60, 2) and np.all(np.isfinite(data.X))
    assert np.allclose(data.X.mean(axis=0), 0.0) and np.allclose(data.X.std(axis=0), 1.0)


def test_csv_with_a_field_beyond_128_kib(tmp_path):
    path = tmp_path / "long.csv"
    long = "1." + "0" * 200_000  # a number written out to 200 000 digits
    path.write_text(f"a,label\n1,0\n2,1\n3,0\n{long},1\n", encoding="utf-8")
    data = load_csv(str(path), "label", "auto")
    assert data.X.shape == (4, 1) and np.all(np.isfinite(data.X))
    import csv

    assert csv.field_size_limit() == 131072  # the module's limit is left as it was


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("a,b,label\n1,2,0\n3,4,1\n5,6,0\n", (3, 2)),
        ("a;b;label\n1,5;2;0\n3;4,5;1\n5;6;0\n", None),  # decimal commas: named, not misread
        ("a;b;label\n1;2;0\n3;4;1\n5;6;0\n", (3, 2)),
        ("a\tb\tlabel\n1\t2\t0\n3\t4\t1\n5\t6\t0\n", (3, 2)),
        ("a|b|label\n1|2|0\n3|4|1\n5|6|0\n", (3, 2)),
        ('"a","b","label"\n"1","2","0"\n"3","4","1"\n"5","6","0"\n', (3, 2)),
        ('a, b, label\n1, "2", 0\n3, 4, 1\n5, 6, 0\n', (3, 2)),
        ('a,"b,c",label\n1,2,0\n3,4,1\n5,6,0\n', (3, 2)),
    ],
)
def test_the_delimiter_is_chosen_in_one_pass_without_csv_sniffer(text, shape, tmp_path, monkeypatch):
    # csv.Sniffer takes time quadratic in the quotes of its sample (tens of seconds for a
    # hostile 60 KB file): lrscout chooses the delimiter itself.
    import csv

    monkeypatch.setattr(csv.Sniffer, "sniff", lambda *a, **k: pytest.fail("csv.Sniffer was used"))
    path = tmp_path / "d.csv"
    path.write_text(text)
    if shape is None:
        with pytest.raises(lrscout.InvalidArgumentError, match=r"holds '1,5'"):
            load_csv(str(path), "label", "auto")
    else:
        assert load_csv(str(path), "label", "auto").X.shape == shape


def test_a_csv_from_a_pipe_is_read(tmp_path):
    read_end, write_end = os.pipe()
    os.write(write_end, b"a,b,label\n1,2,0\n3,4,1\n5,6,0\n")
    os.close(write_end)
    try:
        assert load_csv(f"/dev/fd/{read_end}", "label", "auto").X.shape == (3, 2)
    finally:
        os.close(read_end)
