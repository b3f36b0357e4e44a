"""Writing to a terminal or a pipe: what the CLIs do when the reader goes away.

``python -m fms_dgt.run --list | head`` closes the pipe early; Python then raises
BrokenPipeError on the next write (and again while flushing at exit). That is the reader's
choice, not an error: stop writing and exit quietly instead of printing a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run_cli(main: Callable[[], int]) -> int:
    """Call ``main``; on a closed stdout, point stdout at /dev/null and return 0."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
        return 0
