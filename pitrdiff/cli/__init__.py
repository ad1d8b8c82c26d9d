"""The ``pitrdiff`` command line: parse options, call the library, render.

Exit codes (asserted by name in the tests; see :mod:`pitrdiff.errors`):

- ``0`` done, no differences;
- ``1`` differences found (``diff``) or conflicts left (``apply``);
- ``2`` bad input or a refused operation;
- ``3`` an AWS or I/O failure;
- ``130`` interrupted.

:mod:`pitrdiff.cli.app` holds the typer app, the common options and the one
place errors become exit codes; each other module here defines the commands of
one area. No library module imports this package.
"""

from pitrdiff.cli.app import Common, app, command, load_commands, main

__all__ = ["Common", "app", "command", "load_commands", "main"]
