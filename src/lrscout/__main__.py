"""``python -m lrscout``: the command line."""

from .cli import main

raise SystemExit(main())
