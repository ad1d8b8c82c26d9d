"""Command ``settings``: what a restore does not carry, and the commands to fix it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitrdiff.cli.app import Common, command

if TYPE_CHECKING:
    from pitrdiff.output import Renderer
    from pitrdiff.settings import SettingsDiff

PANEL = "Point-in-time recovery"


@command(
    "settings",
    rich_help_panel=PANEL,
    help=(
        "Compare the settings of the live and the restored table; change nothing.\n\n"
        "A restore carries the data, indexes, capacity and encryption, not TTL, streams, "
        "PITR, deletion protection, tags, auto scaling, the resource policy or contributor "
        "insights. Lists every difference with what a promotion of the restored table would "
        "need; --script writes the AWS CLI commands.\n\n"
        "Exit codes: 0 compared (differences or not); 2 bad input (a table that does not "
        "exist); 3 AWS or I/O failure; 130 interrupted."
    ),
    examples=[
        ("What the restore left behind", "pitrdiff settings orders orders-pitr-20261027T140000Z"),
        (
            "The commands that would bring the restored table in line",
            "pitrdiff settings orders orders-pitr-20261027T140000Z --script promote.sh",
        ),
        ("A table against an export's recorded TTL", "pitrdiff settings orders incident/restored"),
    ],
)
def settings_command(
    common: Common,
    live: Annotated[
        str, typer.Argument(help="The live table (or an export directory).", metavar="LIVE")
    ],
    restored: Annotated[
        str,
        typer.Argument(
            help="The restored table, or an export directory whose manifest to compare.",
            metavar="RESTORED",
        ),
    ],
    script: Annotated[
        Path | None,
        typer.Option(
            "--script",
            metavar="FILE",
            help="Write the AWS CLI commands that bring the restored table in line to FILE.",
        ),
    ] = None,
) -> None:
    """Compare the settings of the live and the restored table; change nothing."""
    from pitrdiff.settings import compare_settings, write_script

    diff = compare_settings(live, restored, aws=common.aws)
    if script is not None:
        write_script(diff, script)
    renderer = common.renderer
    show_settings_diff(renderer, diff)
    if script is not None:
        renderer.info(
            f"wrote {len(diff.commands)} commands to {script}: review it before running it"
        )


def settings_rows(document: Mapping[str, Any]) -> list[list[str]]:
    """One row per difference of a settings document: setting, live, restored, promotion."""
    from pitrdiff.settings import describe_value

    return [
        [str(d["setting"]), describe_value(d["live"]), describe_value(d["restored"]),
         str(d["promotion"])]
        for d in document.get("differences") or ()
    ]  # fmt: skip


def show_settings_document(renderer: Renderer, document: Mapping[str, Any]) -> None:
    """Render a settings diff document (``SettingsDiff.to_dict()``, or ``RecoverResult.settings``).

    A table of the differences, then what could not be compared (stderr). Renders
    nothing in JSON mode: the caller's JSON document holds it.
    """
    if renderer.json_mode or not document:
        return
    live, restored = document.get("live_table"), document.get("restored_table")
    title = f"Settings: {live} (live) vs {restored} (restored)"
    rows = settings_rows(document)
    if not rows:
        renderer.print(f"{title}: every compared setting matches")
    else:
        columns = ["setting", "live", "restored", "a promotion would need"]
        renderer.print(renderer.records_table(title, columns, rows))
    for setting, reason in (document.get("unknown") or {}).items():
        renderer.info(f"not compared: {setting} ({reason})")
    for entry in document.get("not_compared") or ():
        renderer.info(f"check by hand: {entry['what']}: {entry['why']}")


def show_settings_diff(renderer: Renderer, diff: SettingsDiff) -> None:
    """Render a settings diff: the JSON document with --json, else the table."""
    if renderer.json_mode:
        renderer.json(diff)
        return
    show_settings_document(renderer, diff.to_dict())
