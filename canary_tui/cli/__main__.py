"""`python -m canary_tui.cli`: the `canary-tui` command."""

import os

from canary_tui.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
main()
