"""The ``pitrdiff`` console script and ``python -m pitrdiff``: signal handlers first.

The console script generated from ``[project.scripts]`` runs
``from pitrdiff.__main__ import main`` then ``main()``. Importing this module
imports only the ``pitrdiff`` package itself (a table of lazy names) and the
standard library's ``os`` and ``signal``; :func:`main` installs
handlers for SIGINT and SIGTERM as its first statement and only then imports
the command line (:mod:`pitrdiff.cli`, then typer, rich, the command modules).
A signal that lands while those import ends the process with one line on
stderr and exit 130 (SIGINT) or 143 (SIGTERM): nothing has been written yet,
so there is nothing to clean up. :func:`pitrdiff.cli.main` then installs the
handlers that unwind the stack (temporary files removed, journals flushed).

Residual: a signal that lands before this module's ``main`` runs (Python's own
start-up, ``site`` and its ``.pth`` files, typically 20-70 ms under load, and
the ``pitrdiff`` package's import, under 1 ms) meets Python's defaults: SIGINT
gives a KeyboardInterrupt traceback or "Fatal Python error: init_import_site",
SIGTERM kills the process (exit -15 / 143 by the shell). No pitrdiff code has
run then, and nothing was written.
"""

import os
import signal
from types import FrameType

__all__ = ["main"]


def _exit_before_cli(signum: int, frame: FrameType | None) -> None:
    """End the process at once: a signal landed before the command line was imported."""
    terminated = signum == signal.SIGTERM
    os.write(2, b"error: terminated\n" if terminated else b"error: interrupted\n")
    os._exit(143 if terminated else 130)


def main() -> None:
    """Install the early signal handlers, then import and run :func:`pitrdiff.cli.main`."""
    signal.signal(signal.SIGINT, _exit_before_cli)
    signal.signal(signal.SIGTERM, _exit_before_cli)
    from pitrdiff.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
