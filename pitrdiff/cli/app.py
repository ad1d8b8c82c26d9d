"""The ``pitrdiff`` typer app, its common options and its one error handler.

Commands live beside this module, one module per area (``export.py``,
``diff.py`` …); each registers itself with :func:`command` when imported.

Exit codes (asserted by name in the tests; see :mod:`pitrdiff.errors`):

- ``0`` done, no differences;
- ``1`` differences found (``diff``) or conflicts left (``apply``);
- ``2`` bad input or a refused operation;
- ``3`` an AWS or I/O failure;
- ``130`` interrupted.

Every command accepts the common options after its name, as the AWS CLI does:
``--endpoint-url``, ``--region``, ``--profile``, ``--json``, ``--quiet``, ``--debug``.
Errors are caught in exactly one place (:func:`command`): a one-line message
on stderr and the exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from pitrdiff import __version__
from pitrdiff.aws import AwsConfig
from pitrdiff.errors import EXIT_INTERRUPTED, PitrdiffError
from pitrdiff.output import Renderer

app = typer.Typer(
    name="pitrdiff",
    help=(
        "Diff a DynamoDB table against its point-in-time restore and put back only what "
        "was lost.\n\nExit codes: 0 done / no differences; 1 differences found or conflicts "
        "left; 2 bad input or refused; 3 AWS or I/O failure; 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Common:
    """The options every command accepts."""

    endpoint_url: str | None
    region: str | None
    profile: str | None
    json: bool
    quiet: bool
    debug: bool

    @property
    def aws(self) -> AwsConfig:
        """Where to talk to AWS."""
        return AwsConfig(profile=self.profile, region=self.region, endpoint_url=self.endpoint_url)

    @property
    def renderer(self) -> Renderer:
        """The renderer these options ask for."""
        return Renderer(json_mode=self.json, quiet=self.quiet)


_COMMON_PARAMETERS = [
    inspect.Parameter(
        "endpoint_url",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option(
                "--endpoint-url",
                help="DynamoDB endpoint URL (a local server, a VPC endpoint). "
                "AWS_ENDPOINT_URL_DYNAMODB works too.",
                rich_help_panel="Common options",
            ),
        ],
    ),
    inspect.Parameter(
        "region",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option("--region", help="AWS region.", rich_help_panel="Common options"),
        ],
    ),
    inspect.Parameter(
        "profile",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option("--profile", help="Named AWS profile.", rich_help_panel="Common options"),
        ],
    ),
    inspect.Parameter(
        "json_output",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--json",
                help="Print one JSON document on stdout.",
                rich_help_panel="Common options",
            ),
        ],
    ),
    inspect.Parameter(
        "quiet",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--quiet",
                "-q",
                help="No progress or messages; errors only.",
                rich_help_panel="Common options",
            ),
        ],
    ),
    inspect.Parameter(
        "debug",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[
            bool,
            typer.Option(
                "--debug",
                help="Show tracebacks and debug logging.",
                rich_help_panel="Common options",
            ),
        ],
    ),
]
COMMON_OPTION_NAMES = tuple(p.name for p in _COMMON_PARAMETERS)


def command(name: str | None = None, **typer_kwargs: Any) -> Callable[[F], F]:
    """Register a command that takes a :class:`Common` as its first argument.

    The decorated function is written as ``def cmd(common: Common, ...)``; this
    decorator adds the common options to its signature, builds the
    :class:`Common`, and is the one place errors become exit codes.
    """

    def decorator(func: F) -> F:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != "common"]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            common = Common(
                endpoint_url=kwargs.pop("endpoint_url"),
                region=kwargs.pop("region"),
                profile=kwargs.pop("profile"),
                json=kwargs.pop("json_output"),
                quiet=kwargs.pop("quiet"),
                debug=kwargs.pop("debug"),
            )
            return run(common, lambda: func(common, *args, **kwargs))

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=own + _COMMON_PARAMETERS
        )
        app.command(name, **typer_kwargs)(wrapper)
        return func

    return decorator


def run(common: Common, body: Callable[[], Any]) -> Any:
    """Run a command body; map errors to one-line messages and exit codes."""
    renderer = common.renderer
    try:
        with renderer.log_handler(logging.DEBUG if common.debug else logging.WARNING):
            return body()
    except typer.Exit:
        raise
    except PitrdiffError as exc:
        if common.debug:
            raise
        renderer.error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if common.debug:
            raise
        renderer.error("interrupted; work done so far is kept (re-run to resume)")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pitrdiff {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Diff a DynamoDB table against its point-in-time restore."""


# The modules that define commands, imported by :func:`main` in this order.
COMMAND_MODULES: tuple[str, ...] = ("pitr", "plan", "apply", "diff", "export", "demo")


def load_commands() -> typer.Typer:
    """Import every command module (registering its commands) and return the app."""
    for module in COMMAND_MODULES:
        importlib.import_module(f"pitrdiff.cli.{module}")
    return app


def main() -> None:
    """Entry point of the ``pitrdiff`` console script."""
    load_commands()
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
