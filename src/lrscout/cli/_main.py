"""``lrscout find-lr``, ``compare-variants``, ``noise-scale``: argument parsing and reports."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import io
import os
import re
import shlex
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from .._batching import gd_variant, steps_per_epoch
from .._engine import RangeTestState
from .._errors import CurveWarning, InvalidArgumentError, NoiseScaleWarning, NoSuggestionError
from .._jsonio import file_identity, is_replaceable, output_problem
from .._result import STOP_REASONS, RangeTestResult
from .._validation import check_float
from .._version import __version__
from ..plotting._plots import format_problem
from ._data import DATASETS, Dataset, load_csv, load_dataset
from ._find_lr import FRAMEWORKS, FindLRSettings, describe_model, load_runner
from ._words import in_flags


class UsageError(Exception):
    """A mistake in the command line: the usage line, the error in one line, exit status 2.

    Attributes:
        prog: The command whose usage to show (``"lrscout find-lr"``), or
            ``None`` for the one the command line named.
    """

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    #: The parser of each command (set on the top-level parser).
    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        raise UsageError(_did_you_mean(message), prog=self.prog)


def _did_you_mean(message: str) -> str:
    """argparse's ``invalid choice`` message with the closest choice suggested (Python 3.14's
    ``suggest_on_error``, for the Pythons before it)."""
    match = re.match(r"argument .*: invalid choice: '(.*)' \(choose from (.*)\)$", message)
    if match is None:
        return message
    choices = re.findall(r"'([^']*)'", match.group(2)) or [c.strip() for c in match.group(2).split(",")]
    close = difflib.get_close_matches(match.group(1), choices, n=1)
    return f"{message}; did you mean '{close[0]}'?" if close else message


def _unrecognized(extras: Sequence[str], parser: argparse.ArgumentParser) -> UsageError:
    """``unrecognized arguments`` with the closest option of ``parser`` for each mistyped one."""
    options = [option for action in parser._actions for option in action.option_strings]
    hints = []
    for extra in extras:
        name = extra.split("=", 1)[0]
        if name.startswith("-"):
            # --start_lr, as a Python user types it, is --start-lr.
            close = difflib.get_close_matches(name.replace("_", "-"), options, n=1)
            if close:
                hints.append(f"did you mean {close[0]} for {name}?")
    text = f"unrecognized arguments: {' '.join(extras)}"
    return UsageError(f"{text}; {'; '.join(hints)}" if hints else text, prog=parser.prog)


def _batch_size(text: str) -> int | None:
    if text.lower() in ("full", "none", "all"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'full'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'full'; got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32); got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32); got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="scikit-learn's bundled data set (no network; default: digits)",
    )
    group.add_argument("--csv", metavar="PATH", help="train on a CSV file with a header row instead")
    group.add_argument("--target", metavar="COLUMN", help="with --csv: the column to predict")
    group.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        default="auto",
        help="with --csv: what the target is (default: inferred)",
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, help="seed for initial weights and batch order (default: 0)"
    )


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="lrscout",
        description="Pick the learning rate, batch size and gradient-descent variant before training.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    find = commands.add_parser(
        "find-lr",
        help="run an LR range test and suggest a learning rate",
        description="Run an LR range test (Smith 2017) and suggest a learning rate.",
    )
    _add_data_options(find)
    find.add_argument(
        "--framework",
        choices=FRAMEWORKS,
        default="numpy",
        help="what trains the model (default: numpy)",
    )
    find.add_argument(
        "--model",
        choices=("linear", "mlp"),
        default=None,
        help="linear: softmax / least-squares regression; mlp: one hidden layer "
        "(pytorch, keras, jax, sklearn). Default: linear for numpy, mlp otherwise",
    )
    find.add_argument(
        "--batch-size",
        type=_batch_size,
        default=32,
        metavar="N|full",
        help="samples per step; 'full' = batch gradient descent (default: 32)",
    )
    find.add_argument(
        "--momentum",
        type=float,
        default=None,
        help="heavy-ball momentum (default: 0 for numpy, 0.9 for pytorch, keras and jax)",
    )
    find.add_argument(
        "--start-lr", type=_positive_float, default=1e-7, help="first learning rate (default: 1e-7)"
    )
    find.add_argument("--end-lr", type=_positive_float, default=10.0, help="last learning rate (default: 10)")
    find.add_argument("--num-steps", type=int, default=100, help="most steps to run (default: 100)")
    find.add_argument(
        "--mode",
        choices=("exponential", "linear"),
        default="exponential",
        help="learning-rate ramp (default: exponential)",
    )
    find.add_argument(
        "--extend",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep ramping past --end-lr while the loss has not turned up, for at most "
        "--num-steps more steps (default: on)",
    )
    find.add_argument(
        "--schedule",
        choices=("constant", "one_cycle", "cosine", "linear"),
        help="the schedule you will train with; the suggestion is its peak rate "
        "(default: the model's own, a constant rate)",
    )
    find.add_argument(
        "--epochs",
        type=int,
        help="epochs you will train for; the suggestion is for that length (default: the model's own)",
    )
    find.add_argument(
        "--plot",
        metavar="PATH",
        default="lrscout-find-lr.png",
        help="where to write the plot; 'none' for no plot (default: lrscout-find-lr.png)",
    )
    find.add_argument(
        "--json",
        metavar="PATH",
        help="also save the result as JSON; '-' writes it to stdout and the report to stderr",
    )
    find.add_argument("--quiet", action="store_true", help="no progress bar")

    compare = commands.add_parser(
        "compare-variants",
        help="batch, stochastic and mini-batch gradient descent side by side",
        description="Train the same model with batch, stochastic and mini-batch gradient descent, "
        "each at its own found learning rate, and compare loss per epoch, update and second.",
    )
    _add_data_options(compare)
    compare.add_argument("--epochs", type=int, default=10, help="epochs per variant (default: 10)")
    compare.add_argument(
        "--batch-sizes",
        default="full,1,32",
        metavar="LIST",
        help="comma-separated batch sizes, 'full' for the whole set (default: full,1,32)",
    )
    compare.add_argument(
        "--lr",
        default="auto",
        help="'auto' (a range test per variant) or one learning rate for all (default: auto)",
    )
    compare.add_argument("--momentum", type=float, default=0.0, help="heavy-ball momentum (default: 0)")
    compare.add_argument(
        "--plot",
        metavar="PATH",
        default="lrscout-compare-variants.png",
        help="where to write the figure; 'none' for no figure",
    )
    compare.add_argument(
        "--json",
        metavar="PATH",
        help="also save the runs as JSON; '-' writes them to stdout and the report to stderr",
    )
    compare.add_argument("--quiet", action="store_true", help="no progress bars")

    noise = commands.add_parser(
        "noise-scale",
        help="suggest a batch size from the gradient noise scale",
        description="Measure the gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. "
        "2018) of a NumPy model after a short training run, suggest a batch size, and say how the "
        "learning rate found at --batch-size should move to it.",
    )
    _add_data_options(noise)
    noise.add_argument(
        "--batch-size",
        type=_batch_size,
        default=32,
        metavar="N|full",
        help="batch size of the range test and the training run, and the one the LR advice starts "
        "from (default: 32)",
    )
    noise.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="epochs to train at the found learning rate before measuring; 0 measures at the "
        "initial weights (default: 3)",
    )
    noise.add_argument(
        "--small-batch", type=int, default=16, help="samples per small batch of the estimator (default: 16)"
    )
    noise.add_argument(
        "--big-batch",
        type=int,
        default=None,
        help="samples per big batch of the estimator (default: 8 x --small-batch, at most the data)",
    )
    noise.add_argument(
        "--num-pairs", type=int, default=200, help="big batches to average over (default: 200)"
    )
    noise.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        default="sgd",
        help="the scaling rule of the LR advice: linear (sgd) or square root (adam) (default: sgd)",
    )
    noise.add_argument(
        "--plot",
        metavar="PATH",
        default="lrscout-noise-scale.png",
        help="where to write the plot of the estimate over big batches; 'none' for no plot "
        "(default: lrscout-noise-scale.png)",
    )
    noise.add_argument(
        "--json",
        metavar="PATH",
        help="also save the result as JSON; '-' writes it to stdout and the report to stderr",
    )
    noise.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.commands = {"find-lr": find, "compare-variants": compare, "noise-scale": noise}
    return parser


#: What each command checks before the data is read; it returns what runs on the data.
_COMMANDS: dict[str, Callable[[argparse.Namespace], Callable[[Dataset], int]]] = {}


def _version() -> str:
    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args: argparse.Namespace | None = None
    checked = False  # the arguments; after that, what fails is in the data, not in what was typed
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            raise _unrecognized(extras, parser.commands.get(args.command, parser))
        if args.command is None:
            parser.print_help()
            return 0
        args.options = {
            option for action in parser.commands[args.command]._actions for option in action.option_strings
        }
        _check_outputs(args)
        csv_path = getattr(args, "csv", None)
        if csv_path is not None:
            # Any file that reads, a pipe (bash's <(...)) included; not a folder.
            if not os.path.exists(csv_path):
                raise UsageError(f"--csv: no such file: {csv_path!r}.")
            if os.path.isdir(csv_path):
                raise UsageError(f"--csv: {csv_path!r} is a folder; give a CSV file.")
        # With --json -, stdout carries the JSON alone: the report (and
        # anything a framework prints) goes to stderr.
        args.stdout = sys.stdout
        report_to = sys.stderr if getattr(args, "json", None) == "-" else sys.stdout
        with contextlib.redirect_stdout(report_to):
            # Every argument (and the framework) is checked before the data is read.
            run = _COMMANDS[args.command](args)
            checked = True
            return run(_load_data(args))
    except BrokenPipeError:
        # The reader went away (lrscout ... | head): stop quietly, as Unix tools do.
        _silence_stdout()
        return 141
    except (UsageError, InvalidArgumentError, NoSuggestionError, OSError) as error:
        # A mistake in what was typed: the usage line, then the error in the
        # command line's words (its flags, not lrscout's argument names).
        # What the data or the system refused: that one line. Anything else
        # is a bug in lrscout and keeps its traceback.
        if isinstance(error, UsageError) or (isinstance(error, InvalidArgumentError) and not checked):
            print(_usage(parser, args, error), file=sys.stderr)
        message = _one_line(error)
        if not isinstance(error, OSError):
            message = in_flags(message, _options(args))
        print(f"lrscout: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lrscout: interrupted", file=sys.stderr)
        return 130


def _options(args: argparse.Namespace | None) -> set[str] | None:
    """The flags of the command being run (``None`` before one is known)."""
    return getattr(args, "options", None)


def _usage(parser: _Parser, args: argparse.Namespace | None, error: Exception) -> str:
    """The usage line of the command the mistake is in (argparse's own for ``lrscout`` itself)."""
    prog = error.prog if isinstance(error, UsageError) else None
    if prog is None:
        command = getattr(args, "command", None)
        prog = parser.prog if command is None else f"{parser.prog} {command}"
    if prog == parser.prog:
        return parser.format_usage().strip()
    return f"usage: {prog} [options]  (all options: {prog} --help)"


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split())


def _silence_stdout() -> None:
    """Point stdout at the null device so the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that cannot be written or would overwrite something.

    One check for every output (:func:`lrscout._jsonio.output_problem`, what
    the writer itself needs), and one notion of "the same file" (device and
    inode, so a hard link or a symbolic link to ``--csv`` is caught). A new
    ``--plot`` path without a suffix becomes ``.png`` (what matplotlib
    writes), so the report names the file actually written; a FIFO, a
    device or a descriptor path (``>(...)``) keeps its name.
    """
    inputs = {"--csv": args.csv} if getattr(args, "csv", None) else {}
    outputs: dict[str, str] = {}
    plot = getattr(args, "plot", None)
    if plot is not None and plot.lower() != "none":
        new_file = plot.strip() and not os.path.isdir(plot) and is_replaceable(plot)
        if new_file and not os.path.splitext(plot)[1]:
            plot = args.plot = plot + ".png"
        if plot.strip() and not os.path.isdir(plot):
            problem = format_problem(plot)
            if problem is not None:
                raise UsageError(f"--plot {plot!r}: {problem}")
        outputs["--plot"] = plot
    json_path = getattr(args, "json", None)
    if json_path == "-":
        if not _stdout_open():
            raise UsageError(
                "--json -: standard output is closed, so the JSON has nowhere to go; "
                "give a file path (e.g. --json result.json) or open standard output"
            )
    elif json_path is not None:
        outputs["--json"] = json_path
    seen = {file_identity(path): option for option, path in inputs.items()}
    for option, path in outputs.items():
        if not path.strip():
            raise UsageError(f"{option} must be a file path; got {path!r}")
        same = seen.get(file_identity(path))
        if same is not None:
            raise UsageError(f"{option} {path!r} is the same file as {same}; choose another path")
        seen[file_identity(path)] = option
        problem = output_problem(path)
        if problem is not None:
            raise UsageError(f"{option} {path!r}: {problem}")
    if getattr(args, "task", "auto") != "auto" and args.csv is None:
        raise UsageError("--task needs --csv (the bundled data sets know their tasks)")


def _stdout_open() -> bool:
    """Whether standard output can take the JSON of ``--json -`` (not closed, as ``>&-`` leaves it)."""
    stream = sys.stdout
    if stream is None or stream.closed:
        return False
    try:
        os.fstat(stream.fileno())
    except (AttributeError, io.UnsupportedOperation):
        return True  # a stream of Python's own (a test's capture): it takes text
    except (OSError, ValueError):
        return False
    return True


def _load_data(args: argparse.Namespace) -> Dataset:
    if args.csv is not None:
        return load_csv(args.csv, args.target, args.task)
    if args.target is not None:
        raise UsageError("--target needs --csv (the bundled data sets know their targets)")
    return load_dataset(args.dataset)


def _plain(text: str) -> str:
    """``text`` for a matplotlib title: a ``$`` from a file name must not start math mode."""
    return text.replace("$", r"\$")


def _write_plot(
    option: str, draw: Callable[[str, Any], object], *, figsize: tuple[float, float] = (7.0, 4.5)
) -> None:
    """Call ``draw(path, figure)`` on a fresh off-screen figure unless ``--plot none``; say where it went.

    A bare matplotlib ``Figure`` (saved through the Agg canvas), not pyplot:
    nothing is left open, and the command starts faster without pyplot's
    backend machinery (about 0.2 s of its run).
    """
    if option.lower() == "none":
        return
    from matplotlib.figure import Figure

    try:
        draw(option, Figure(figsize=figsize, layout="constrained"))
    except OSError as error:
        raise UsageError(f"--plot {option!r}: {error.strerror or error}") from None
    print(f"plot: {option}")


def _write_json(args: argparse.Namespace, save: Callable[[Any], None]) -> None:
    """``save(target)`` to ``--json``'s path, or to stdout for ``--json -``; nothing without ``--json``."""
    if args.json is None:
        return
    if args.json == "-":
        save(args.stdout)
        args.stdout.flush()
        return
    try:
        save(args.json)
    except OSError as error:
        raise UsageError(f"--json {args.json!r}: {error.strerror or error}") from None
    print(f"result: {args.json}")


def _rerun_command(args: argparse.Namespace, options: Sequence[str] = ()) -> str:
    """``lrscout find-lr`` on the same data with ``options``, its batch size a ``{batch_size}`` field.

    The command line's own way to rerun a range test at another batch size,
    for the messages that advise one (``rerun_hint``, see
    :func:`lrscout.rescale_lr`).
    """
    if args.csv is not None:
        data = ["--csv", args.csv, "--target", args.target] + (
            [] if args.task == "auto" else ["--task", args.task]
        )
    else:
        data = ["--dataset", args.dataset]
    seed = [] if args.seed == 0 else ["--seed", str(args.seed)]
    words = " ".join(shlex.quote(str(word)) for word in [*data, *options, *seed])
    return f"lrscout find-lr {words} --batch-size {{batch_size}}"


def _in_cli_words(result: RangeTestResult, rerun: str) -> RangeTestResult:
    """``result`` with the command line's rerun hint instead of the Python call that ran it."""
    return dataclasses.replace(result, info={**result.info, "rerun_hint": rerun})


def _for_the_plan(result: RangeTestResult, args: argparse.Namespace, n: int) -> RangeTestResult:
    """``result`` whose suggestion is for ``--schedule`` and ``--epochs``, where they were given.

    Field by field, as everywhere: a flag wins, the rest is the plan the run held.
    """
    if args.schedule is None and args.epochs is None:
        return result
    held = result.info.get("plan")
    held = held if isinstance(held, dict) else {}
    total = (
        args.epochs * steps_per_epoch(n, args.batch_size)
        if args.epochs is not None
        else held.get("total_steps")
    )
    plan = {
        "schedule": args.schedule or held.get("schedule", "constant"),
        "total_steps": total,
        "source": "command line",
    }
    return dataclasses.replace(result, info={**result.info, "plan": plan})


def _find_lr(args: argparse.Namespace) -> Callable[[Dataset], int]:
    model = args.model or ("linear" if args.framework == "numpy" else "mlp")
    if args.framework == "numpy" and model != "linear":
        raise UsageError(
            "--model mlp needs --framework pytorch or keras (or jax); numpy trains linear models"
        )
    if args.num_steps < 2:
        raise UsageError(f"--num-steps must be at least 2; got {args.num_steps}")
    if args.epochs is not None:
        if args.epochs < 1:
            raise UsageError(f"--epochs must be at least 1; got {args.epochs}")
        _check_work("--epochs", args.epochs, None, "epochs", "Training runs for 1 to 1000")
    _check_work(
        "--num-steps", args.num_steps, args.batch_size, "steps", "A range test reads its curve in 100 to 1000"
    )
    settings = FindLRSettings(
        model=model,
        batch_size=args.batch_size,
        momentum=args.momentum,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        num_steps=args.num_steps,
        mode=args.mode,
        extend=args.extend,
        seed=args.seed,
        progress=not args.quiet,
    )
    # The ramp, checked by the core's own rules (the runner checks it again).
    RangeTestState(
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        num_steps=args.num_steps,
        mode=args.mode,
        smoothing=0.98,
        divergence_factor=4.0,
        extend=args.extend,
    )
    try:
        run_find_lr = load_runner(args.framework)
    except ImportError as error:
        # The framework (or its extra) is not installed: say which, with the line that installs it.
        raise UsageError(f"--framework {args.framework}: {error}") from None
    typed = [
        *(["--framework", args.framework] if args.framework != "numpy" else []),
        *(["--model", args.model] if args.model else []),
        *(["--momentum", repr(args.momentum)] if args.momentum is not None else []),
        *(["--start-lr", repr(args.start_lr)] if args.start_lr != 1e-7 else []),
        *(["--end-lr", repr(args.end_lr)] if args.end_lr != 10.0 else []),
        *(["--num-steps", str(args.num_steps)] if args.num_steps != 100 else []),
        *(["--mode", args.mode] if args.mode != "exponential" else []),
        *(["--no-extend"] if not args.extend else []),
    ]
    rerun = _rerun_command(args, typed)

    def run(data: Dataset) -> int:
        n = len(data.X)
        batch = args.batch_size
        print(
            f"lrscout find-lr: {data.describe()}, features standardised\n"
            f"model: {describe_model(args.framework, settings)}, {gd_variant(batch, n)} gradient descent, "
            f"batch size {'full' if batch is None else batch}, {steps_per_epoch(n, batch)} steps per epoch"
        )
        if args.framework == "keras":
            from ..keras._keras import keras

            print(f"keras backend: {keras.backend.backend()}")
        with warnings.catch_warnings():
            # The report prints the curve's warnings itself, next to the suggestion.
            warnings.simplefilter("ignore", CurveWarning)
            result = _for_the_plan(_in_cli_words(run_find_lr(data, settings), rerun), args, n)
        suggested = _report(result, args.options)
        # In the file, the batch size to try is the flag's own placeholder.
        _write_json(args, _in_cli_words(result, rerun.replace("{batch_size}", "N")).to_json)
        title = (
            f"LR range test: {_plain(data.name)}, {model} ({args.framework}), "
            f"batch {'full' if batch is None else batch}"
        )
        _write_plot(args.plot, lambda path, figure: result.plot(ax=figure.subplots(), path=path, title=title))
        # The result and the plot are written either way; the exit status says whether the
        # curve supports a rate (2: it does not, as for any other answer the command cannot give).
        return 0 if suggested else 2

    return run


#: The most steps, epochs or pairs a command takes: far past what any of them
#: needs, and short of what would run for days or fail to allocate.
_MOST_WORK = {"steps": 1_000_000, "epochs": 10_000, "pairs": 1_000_000}


def _check_work(flag: str, value: int, batch_size: int | None, unit: str, usual: str) -> None:
    """Refuse a count no run could finish, saying what it would take (before the data is read)."""
    most = _MOST_WORK[unit]
    if value <= most:
        return
    if unit != "steps":
        cost = f"{value} would take days, and more memory than there is"
    elif batch_size is None:
        cost = f"{value} steps are {value} passes over the whole data set (full batch)"
    else:
        cost = f"{value} steps of {batch_size} samples are {value * batch_size:.3g} samples of training"
    raise UsageError(f"{flag} must be at most {most}; got {value}. {usual} {unit}; {cost}")


def _report(result: RangeTestResult, options: set[str]) -> bool:
    """Print the find-lr report; whether the curve gave a suggestion."""
    print(
        f"tested lr {result.lrs[0]:.3g} .. {result.lrs[-1]:.3g} ({result.mode} ramp, "
        f"{len(result)} of {result.num_steps} steps)"
    )
    extension = result.info.get("extension")
    if isinstance(extension, dict):
        print(
            f"extended: the loss had not turned up at --end-lr {extension['planned_end_lr']:.3g} "
            f"(step {extension['planned_num_steps']}), so the ramp went on for "
            f"{extension['extra_steps']} more steps at the same ratio (--no-extend stops at --end-lr)"
        )
    print(f"stopped: {result.stop_reason} ({in_flags(STOP_REASONS[result.stop_reason], options)})")
    for message in result.warnings:
        print(f"warning: {in_flags(message, options)}")
    try:
        chosen = result.suggestion
        base, peak = result.lr_range()
    except NoSuggestionError as error:
        print(f"no suggestion: {in_flags(str(error), options)}")
        return False
    schedule = chosen.schedule or "constant"
    plan = "constant rate" if schedule == "constant" else f"peak of a {schedule.replace('_', '-')} schedule"
    if chosen.total_steps:
        plan += f", {chosen.total_steps} steps"
    print(
        f"suggested lr: {chosen.lr:.3g}\nfor: {plan} (--schedule, --epochs)\n"
        "lr range (base_lr, max_lr) for cyclic / one-cycle schedules: "
        f"{base:.3g} .. {peak:.3g}"
    )
    others = []
    for method in ("valley", "steepest", "minimum"):
        try:
            others.append(f"{method} {result.suggest(method).lr:.3g}")
        except NoSuggestionError:
            others.append(f"{method} n/a")
    print(f"other rules: {', '.join(others)}")
    return True


@contextlib.contextmanager
def _curve_warnings_as_lines(options: set[str] | None = None) -> Iterator[None]:
    """Print each curve warning as one ``warning: ...`` line, as the find-lr report does.

    Printed also when the block raises: the warning may say why it did.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CurveWarning)
            yield
    finally:
        for message in dict.fromkeys(str(w.message) for w in caught if w.category is CurveWarning):
            print(f"warning: {in_flags(message, options)}")
        for other in caught:  # anything else, as it would have been shown
            if other.category is not CurveWarning:
                warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)


def _compare_variants(args: argparse.Namespace) -> Callable[[Dataset], int]:
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1; got {args.epochs}")
    _check_work("--epochs", args.epochs, None, "epochs", "The variants part ways in 10 to 100")
    try:
        sizes = [_batch_size(part.strip()) for part in args.batch_sizes.split(",")]
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"--batch-sizes: each entry {error}") from None
    lr: Any = args.lr
    if lr != "auto":
        try:
            lr = _positive_float(lr)
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"--lr must be 'auto' or a positive number; {error}") from None
    check_float(args.momentum, "momentum", where="compare", minimum=0.0, maximum=1.0, open_maximum=True)

    def run(data: Dataset) -> int:
        from ..models import LinearRegressor, SoftmaxClassifier, compare_variants
        from ..models._compare import NoVariantRateError

        estimator = SoftmaxClassifier if data.task == "classification" else LinearRegressor
        model = estimator(momentum=args.momentum, random_state=args.seed)
        print(
            f"lrscout compare-variants: {data.describe()}, features standardised, {args.epochs} epochs each"
        )
        with _curve_warnings_as_lines(args.options):
            try:
                comparison = compare_variants(
                    model,
                    data.X,
                    data.y,
                    epochs=args.epochs,
                    batch_sizes=sizes,
                    lr=lr,
                    progress=not args.quiet,
                )
            except NoVariantRateError as error:
                size = "full" if error.batch_size is None else error.batch_size
                # What the data would not give, not a mistake in the command: no usage line.
                raise NoSuggestionError(
                    f"no learning rate found for batch size {size}: {error.reason} Give one with --lr "
                    f"(e.g. --lr 0.01 for every variant), or leave {size} out of --batch-sizes."
                ) from None
        print(comparison.table())
        _write_json(args, comparison.to_json)
        _write_plot(
            args.plot,
            lambda path, figure: comparison.plot(path=path, axes=figure.subplots(1, 3)),
            figsize=(15.0, 4.5),
        )
        return 0

    return run


def _noise_scale(args: argparse.Namespace) -> Callable[[Dataset], int]:
    if args.epochs < 0:
        raise UsageError(f"--epochs must be at least 0; got {args.epochs}")
    _check_work("--epochs", args.epochs, None, "epochs", "The noise scale settles in 1 to 10")
    _check_work("--num-pairs", args.num_pairs, None, "pairs", "The estimate settles in 100 to 1000")
    for name in ("small_batch", "num_pairs"):
        if getattr(args, name) < (2 if name == "num_pairs" else 1):
            raise UsageError(f"--{name.replace('_', '-')} is too small; got {getattr(args, name)}")
    if args.big_batch is not None and args.big_batch <= args.small_batch:
        raise UsageError(f"--big-batch must exceed --small-batch ({args.small_batch}); got {args.big_batch}")
    return lambda data: _measure_noise_scale(args, data)


def _measure_noise_scale(args: argparse.Namespace, data: Dataset) -> int:
    from ..models import LinearRegressor, SoftmaxClassifier, find_lr, noise_scale

    n = len(data.X)
    batch = args.batch_size
    estimator = SoftmaxClassifier if data.task == "classification" else LinearRegressor
    model = estimator(batch_size=batch, random_state=args.seed)
    print(
        f"lrscout noise-scale: {data.describe()}, features standardised\n"
        f"model: {estimator.__name__} (numpy), range test and training at batch size "
        f"{'full' if batch is None else batch}"
    )
    with _curve_warnings_as_lines(args.options):
        found = _in_cli_words(find_lr(model, data.X, data.y, progress=not args.quiet), _rerun_command(args))
    lr = found.suggestion.lr
    if args.epochs:
        model.set_params(lr=lr, epochs=args.epochs).fit(data.X, data.y)
        where = (
            f"after {args.epochs} epochs ({model.n_updates_} steps of {steps_per_epoch(n, batch)} per epoch) "
            f"at lr {lr:.3g}, loss {model.epoch_losses_[-1]:.4g}"
        )
    else:
        where = "at the initial weights (zeros)"
    kwargs: dict[str, Any] = dict(
        small_batch=args.small_batch, big_batch=args.big_batch, num_pairs=args.num_pairs
    )
    with warnings.catch_warnings():
        # --epochs 0 asks for the initial weights, and the report says so.
        warnings.simplefilter("ignore", NoiseScaleWarning)
        result = noise_scale(model, data.X, data.y, method="two-batch", random_state=args.seed, **kwargs)
        exact = noise_scale(model, data.X, data.y, method="exact")
    advice = result.advise(found, optimizer=args.optimizer)
    low, high = result.interval
    suggested = result.suggested_batch_size
    print(
        f"measured {where}\n"
        f"B_simple = tr(Sigma) / |G|^2: {result.b_simple:.4g} ({result.confidence:.0%} interval "
        f"{low:.4g} .. {high:.4g}; {result.num_pairs} big batches of {result.big_batch}, small batches "
        f"of {result.small_batch}); exact from every example's gradient: {exact.b_simple:.4g}\n"
        f"|G|^2 = {result.grad_norm_sq:.4g} (exact {exact.grad_norm_sq:.4g}), "
        f"tr(Sigma) = {result.trace_cov:.4g} (exact {exact.trace_cov:.4g})\n"
        f"suggested batch size: {'full' if suggested is None else suggested}\n"
        f"why: {result.reasoning}\n"
        f"learning rate: found {lr:.3g} at batch size {advice.from_batch}. {advice.message}"
    )
    if args.json:
        info = {
            **result.info,
            "dataset": data.name,
            "epochs_trained": args.epochs,
            "exact": {
                "b_simple": exact.b_simple,
                "grad_norm_sq": exact.grad_norm_sq,
                "trace_cov": exact.trace_cov,
            },
            "range_test": {"batch_size": advice.from_batch, "lr": lr},
            "advice": advice.to_dict(),
        }
        _write_json(args, dataclasses.replace(result, info=info).to_json)
    title = f"Gradient noise scale: {_plain(data.name)}, {estimator.__name__}, " + (
        f"after {args.epochs} epochs" if args.epochs else "initial weights"
    )
    _write_plot(
        args.plot,
        lambda path, figure: result.plot(
            ax=figure.subplots(), path=path, reference=exact.b_simple, reference_label="exact", title=title
        ),
    )
    return 0


_COMMANDS.update({"find-lr": _find_lr, "compare-variants": _compare_variants, "noise-scale": _noise_scale})
