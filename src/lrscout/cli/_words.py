"""The command line's words for lrscout's argument names: one mapping, for every message it prints.

lrscout's messages name the Python argument (``end_lr``) and the function
that refused it (``range_test: ...``); a command-line user typed a flag
(``--end-lr``). :func:`in_flags` rewrites a message for the command line:
the function's name goes, each argument becomes its flag.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: Each keyword argument of the Python API that the command line takes as a flag.
FLAGS = {
    "start_lr": "--start-lr",
    "end_lr": "--end-lr",
    "num_steps": "--num-steps",
    "mode": "--mode",
    "extend": "--extend",
    "batch_size": "--batch-size",
    "batch_sizes": "--batch-sizes",
    "momentum": "--momentum",
    "epochs": "--epochs",
    "lr": "--lr",
    "random_state": "--seed",
    "seed": "--seed",
    "small_batch": "--small-batch",
    "big_batch": "--big-batch",
    "num_pairs": "--num-pairs",
    "model": "--model",
    "framework": "--framework",
}

# The function that raised, before the message proper: "range_test: ", "models.find_lr: ".
_WHERE = re.compile(r"^[A-Za-z_][\w.]*: ")
# Names with an underscore are no English word: they become flags wherever they stand
# (not inside a dotted name or a call).
_COMPOUND = re.compile(
    r"(?<![\w.-])(" + "|".join(sorted((n for n in FLAGS if "_" in n), key=len, reverse=True)) + r")(?![\w(])"
)
# A plain word ("momentum", "epochs") is an argument only as the subject of a check.
_SUBJECT = re.compile(r"^(" + "|".join(n for n in FLAGS if "_" not in n) + r")(?= must | is | needs )")


def in_flags(message: str, options: Collection[str] | None = None) -> str:
    """``message`` in the command line's words.

    ``options``: the flags of the command that prints it; a name whose flag
    the command does not have keeps its name (``None``: every flag).

    Example:
        >>> in_flags("range_test: end_lr must be greater than start_lr (1.0); got 0.1.")
        '--end-lr must be greater than --start-lr (1.0); got 0.1.'
        >>> in_flags("run_find_lr: momentum must be < 1.0; got 2.0.")
        '--momentum must be < 1.0; got 2.0.'
        >>> in_flags("never turned up: ... Raise end_lr (e.g. to 0.0316).")
        'never turned up: ... Raise --end-lr (e.g. to 0.0316).'
    """

    def flag(match: re.Match[str]) -> str:
        name = match.group(1)
        return FLAGS[name] if options is None or FLAGS[name] in options else name

    text = _WHERE.sub("", message, count=1)
    text = _SUBJECT.sub(flag, text, count=1)
    return _COMPOUND.sub(flag, text)
