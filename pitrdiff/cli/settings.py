"""Command ``settings``: what a restore does not carry, and the commands to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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


def settings_rows(diff: SettingsDiff) -> list[list[str]]:
    """One row per difference: setting, live, restored, what a promotion needs."""
    from pitrdiff.settings import describe_value

    return [
        [d.setting, describe_value(d.live), describe_value(d.restored), d.promotion]
        for d in diff.differences
    ]


def show_settings_diff(renderer: Renderer, diff: SettingsDiff, *, as_json: bool = True) -> None:
    """Render a settings diff: a table of differences, then what could not be compared.

    ``as_json=False`` renders nothing in JSON mode (a caller embeds the diff in its document).
    """
    if renderer.json_mode:
        if as_json:
            renderer.json(diff)
        return
    title = f"Settings: {diff.live.name} (live) vs {diff.restored.name} (restored)"
    if diff.same:
        renderer.print(f"{title}: every compared setting matches")
    else:
        renderer.print(
            renderer.records_table(
                title,
                ["setting", "live", "restored", "a promotion would need"],
                settings_rows(diff),
            )
        )
    for setting, reason in diff.unknown.items():
        renderer.info(f"not compared: {setting} ({reason})")
    for what, why in diff.not_compared:
        renderer.info(f"check by hand: {what}: {why}")
