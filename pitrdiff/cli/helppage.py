"""The help pages of ``pitrdiff``: one plain-text style for every command.

Modelled on the AWS CLI's and datacompy's help: a usage line with the
arguments first, the description, arguments, options grouped in sections,
examples, exit codes. The conventions:

- every argument and every option value is an UPPERCASE name (``TABLE``,
  ``--out DIR``); a flag shows no value;
- an option the command cannot run without says ``[required]``, whether the
  parser or the command's body enforces it;
- examples are printed as written, never wrapped (they are meant to be copied).

Only the standard library and typer's own click are used: help pages are
built without importing rich or any command's libraries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# value names for options that give none, by their Python type
_TYPE_METAVARS = {"str": "TEXT", "path": "PATH", "int": "N", "float": "N"}


def option_metavar(param: Any) -> str:
    """The UPPERCASE name of an option's value (``DIR``), or ``""`` for a flag."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return str(param.metavar).upper()
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice:
        return "|".join(str(choice) for choice in descriptor.choices or ())
    bare = param.bare_type() if hasattr(param, "bare_type") else "str"
    return _TYPE_METAVARS.get(bare, bare.upper().replace(" ", "_"))


def argument_name(param: Any) -> str:
    """An argument's UPPERCASE name (``LIVE_EXPORT``)."""
    name = str(param.metavar or param.name).upper()
    return name + ("..." if param.nargs != 1 else "")


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _option_label(param: Any) -> str:
    short = [o for o in param.opts if not o.startswith("--")]
    long = [o for o in param.opts if o.startswith("--")]
    label = ", ".join(short + long)
    if param.secondary_opts:
        label += " / " + ", ".join(param.secondary_opts)
    metavar = option_metavar(param)
    return f"{label} {metavar}" if metavar else label


def _plain(text: str | None) -> str:
    return (text or "").replace("`", "")


def _option_help(param: Any, required: bool) -> str:
    parts = [_plain(param.help)]
    flag = getattr(param, "is_flag", False)
    default = param.default
    if (
        not flag
        and not required
        and param.show_default is not False
        and default is not None
        and not callable(default)
        and default != ()
    ):
        parts.append(f"[default: {default}]")
    describe_range = getattr(param, "_get_number_range_help_str", None)
    range_text = describe_range() if describe_range is not None else None
    if range_text:
        parts.append(f"[{_range_words(range_text)}]")
    if required:
        parts.append("[required]")
    return "  ".join(p for p in parts if p)


def _range_words(text: str) -> str:
    """``x>=1`` → ``at least 1``; ``1<=x<=5`` → ``1 to 5``."""
    low, _, high = text.partition("x")
    low = low.rstrip("<=")
    high = high.lstrip("<=>")
    if low and high:
        return f"{low} to {high}"
    if text.startswith("x>"):
        return f"at least {high}" if text.startswith("x>=") else f"more than {high}"
    if text.startswith("x<"):
        return f"at most {high}" if text.startswith("x<=") else f"less than {high}"
    return text


def _is_required(command: Any, param: Any) -> bool:
    return bool(param.required) or any(
        o in getattr(command, "required_options", ()) for o in param.opts
    )


def usage_pieces(command: Any, ctx: Any) -> str:
    """``LIVE_EXPORT RESTORED_EXPORT --out DIR [OPTIONS]``: arguments, required options."""
    pieces: list[str] = []
    for param in command.params:
        if _is_argument(param):
            name = argument_name(param)
            pieces.append(name if param.required else f"[{name}]")
    for param in command.params:
        if not _is_argument(param) and _is_required(command, param) and not param.hidden:
            metavar = option_metavar(param)
            long = next((o for o in param.opts if o.startswith("--")), param.opts[0])
            pieces.append(f"{long} {metavar}" if metavar else long)
    pieces.append("[OPTIONS]")
    return " ".join(pieces)


def write_examples(formatter: Any, examples: Sequence[tuple[str, str]]) -> None:
    """An "Examples" section; command lines are written as is (never wrapped)."""
    if not examples:
        return
    with formatter.section("Examples"):
        for index, (what, line) in enumerate(examples):
            if what and index:
                formatter.write("\n")
            if what:
                formatter.write_text(what + ":")
            # a line without a description continues the example above it
            indent = formatter.current_indent + (2 if what or index else 0)
            formatter.write(f"{'':>{indent}}{line}\n")


def format_command_help(command: Any, ctx: Any, formatter: Any) -> None:
    """Write a command's help page into a click ``HelpFormatter``."""
    formatter.write_usage(ctx.command_path, usage_pieces(command, ctx))
    help_text = _plain(command.help).partition("\f")[0].strip()
    if help_text:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(help_text)
    arguments = [
        (argument_name(p), _plain(getattr(p, "help", "")))
        for p in command.params
        if _is_argument(p) and not p.hidden
    ]
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    sections: dict[str, list[tuple[str, str]]] = {"Options": []}
    common: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        if _is_argument(param) or param.hidden:
            continue
        row = (_option_label(param), _option_help(param, _is_required(command, param)))
        panel = getattr(param, "rich_help_panel", None)
        if panel == "Common options":
            common.append(row)
        else:
            sections.setdefault(panel or "Options", []).append(row)
    for title, rows in [*sections.items(), ("Common options", common)]:
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)
    write_examples(formatter, getattr(command, "examples", ()))
    if command.epilog:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(_plain(command.epilog))


def format_root_help(
    group: Any,
    ctx: Any,
    formatter: Any,
    commands: Sequence[Any],
    *,
    examples: Sequence[tuple[str, str]],
    exit_codes: str,
    options: Sequence[tuple[str, str]] = (),
) -> None:
    """Write the root help page: commands by section, options, examples, exit codes.

    ``commands`` are entries with ``name``, ``section`` and ``summary``; no
    command module is imported. ``options`` are rows for options handled
    outside the parser (``--version``).
    """
    formatter.write_usage(ctx.command_path, "COMMAND ARGS... [OPTIONS]")
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(_plain(group.help))
    sections: dict[str, list[tuple[str, str]]] = {}
    for entry in commands:
        sections.setdefault(entry.section, []).append((entry.name, entry.summary))
    for title, rows in sections.items():
        with formatter.section(title):
            formatter.write_dl(rows)
    with formatter.section("Options"):
        formatter.write_dl(
            [
                *options,
                *((_option_label(p), _option_help(p, False)) for p in group.get_params(ctx)),
            ]
        )
    with formatter.section("Common options (after the command name, as the AWS CLI takes them)"):
        formatter.write_text(
            "--endpoint-url URL, --region REGION, --profile NAME, --json, -q/--quiet, --debug. "
            f"'{ctx.command_path} COMMAND --help' describes them and each command's own options."
        )
    write_examples(formatter, examples)
    with formatter.section("Exit codes"):
        formatter.write_text(exit_codes)
