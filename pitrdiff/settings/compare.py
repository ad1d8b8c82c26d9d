"""Compare two tables' settings and say what promoting the restored table would need.

Each difference names the setting, the live and the restored values, what a
promotion (using the restored table in place of the live one) would need, and
the AWS CLI commands that bring the restored table in line. The commands are
data (argument lists); :func:`render_script` turns them into a shell script.
Nothing here calls AWS.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pitrdiff.settings.read import ARN_PLACEHOLDER, SETTINGS, TABLE_PLACEHOLDER, TableSettings

Command = tuple[str, ...]

# Settings the table APIs cannot answer: always worth a look before a promotion.
NOT_COMPARED: tuple[tuple[str, str], ...] = (
    (
        "IAM identity policies",
        "policies of users and roles name the live table's ARN; grant the same on the "
        "restored table",
    ),
    (
        "CloudWatch alarms and dashboards",
        "they name the live table; re-create them for the restored table",
    ),
    (
        "Kinesis Data Streams destinations and AWS Backup plans",
        "configured outside the table's settings; attach them to the restored table",
    ),
)


@dataclass(frozen=True)
class SettingDifference:
    """One setting that differs between the live and the restored table.

    Attributes
    ----------
    setting
        The setting's name (see :data:`pitrdiff.settings.read.SETTINGS`).
    live, restored
        The normalised values on each side.
    promotion
        What a promotion of the restored table would need, in one sentence.
    commands
        AWS CLI commands (argument lists) that make the restored table match;
        empty when no API call can (an LSI is defined at creation only).
    """

    setting: str
    live: Any
    restored: Any
    promotion: str
    commands: tuple[Command, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The difference as plain JSON values."""
        return {
            "setting": self.setting,
            "live": self.live,
            "restored": self.restored,
            "promotion": self.promotion,
            "commands": [shlex.join(c) for c in self.commands],
        }


@dataclass(frozen=True)
class SettingsDiff:
    """Every setting difference between a live table and a restored one (or a manifest).

    Attributes
    ----------
    live, restored
        Both sides as read.
    differences
        The settings that differ, in :data:`SETTINGS` order.
    unknown
        Setting → why it could not be compared (not answered on one side).
    not_compared
        ``(what, why)`` of what no table API answers (IAM, alarms).
    region
        The region the commands are for, when known.
    """

    live: TableSettings
    restored: TableSettings
    differences: tuple[SettingDifference, ...]
    unknown: Mapping[str, str]
    not_compared: tuple[tuple[str, str], ...] = NOT_COMPARED
    region: str | None = None

    @property
    def same(self) -> bool:
        """Whether every compared setting matches."""
        return not self.differences

    @property
    def commands(self) -> tuple[Command, ...]:
        """Every command of every difference, in order."""
        return tuple(c for d in self.differences for c in d.commands)

    def difference(self, setting: str) -> SettingDifference | None:
        """The difference of one setting, if it differs."""
        return next((d for d in self.differences if d.setting == setting), None)

    def to_dict(self) -> dict[str, Any]:
        """The comparison as plain JSON values."""
        return {
            "live_table": self.live.name,
            "restored_table": self.restored.name,
            "same": self.same,
            "differences": [d.to_dict() for d in self.differences],
            "unknown": dict(self.unknown),
            "not_compared": [{"what": w, "why": y} for w, y in self.not_compared],
            "live": self.live.to_dict(),
            "restored": self.restored.to_dict(),
        }


# --------------------------------------------------------------------------- commands


def _j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class _Target:
    """The restored table the commands act on."""

    def __init__(self, settings: TableSettings) -> None:
        self.name = settings.name
        self.arn = settings.arn or f"arn:aws:dynamodb:REGION:ACCOUNT:table/{settings.name}"

    def ddb(self, operation: str, *options: str, arn: bool = False) -> Command:
        target = ("--resource-arn", self.arn) if arn else ("--table-name", self.name)
        return ("aws", "dynamodb", operation, *target, *options)

    def wait(self) -> Command:
        """Updates to one table run one at a time: wait until it is ACTIVE again."""
        return ("aws", "dynamodb", "wait", "table-exists", "--table-name", self.name)

    def resource(self, relative: str) -> str:
        return "table/" + self.name + relative[len("table") :]

    def fill(self, value: Any) -> Any:
        text = _j(value).replace(ARN_PLACEHOLDER, self.arn).replace(TABLE_PLACEHOLDER, self.name)
        return json.loads(text)


def _update(t: _Target, *options: str) -> tuple[Command, ...]:
    return (t.ddb("update-table", *options), t.wait())


def _ttl(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    if live["enabled"]:
        spec = {"Enabled": True, "AttributeName": live["attribute"]}
        steps: list[Command] = []
        if restored["enabled"]:  # another attribute: off first (one change per hour allowed)
            off = {"Enabled": False, "AttributeName": restored["attribute"]}
            steps.append(t.ddb("update-time-to-live", "--time-to-live-specification", _j(off)))
        steps.append(t.ddb("update-time-to-live", "--time-to-live-specification", _j(spec)))
        return (
            f"turn TTL on for `{live['attribute']}` (until then expired items stay)",
            tuple(steps),
        )
    off = {"Enabled": False, "AttributeName": restored["attribute"]}
    return "turn TTL off", (t.ddb("update-time-to-live", "--time-to-live-specification", _j(off)),)


def _stream(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    steps: list[Command] = []
    if restored["enabled"]:
        steps += _update(t, "--stream-specification", _j({"StreamEnabled": False}))
    if live["enabled"]:
        spec = {"StreamEnabled": True, "StreamViewType": live["view_type"]}
        steps += _update(t, "--stream-specification", _j(spec))
        return (
            f"enable a {live['view_type']} stream and point its consumers (Lambda triggers, "
            "pipes) at the new stream ARN",
            tuple(steps),
        )
    return "disable the stream", tuple(steps)


def _pitr(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": bool(live["enabled"])}
    if live["enabled"] and live.get("recovery_period_days"):
        spec["RecoveryPeriodInDays"] = live["recovery_period_days"]
    command = t.ddb("update-continuous-backups", "--point-in-time-recovery-specification", _j(spec))
    if live["enabled"]:
        return (
            "turn point-in-time recovery on (its window starts then: earlier times stay "
            "restorable only from the live table)",
            (command,),
        )
    return "turn point-in-time recovery off", (command,)


def _deletion_protection(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    flag = "--deletion-protection-enabled" if live else "--no-deletion-protection-enabled"
    return f"turn deletion protection {'on' if live else 'off'}", _update(t, flag)


def _tags(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    missing = {k: v for k, v in live.items() if restored.get(k) != v}
    extra = sorted(k for k in restored if k not in live)
    steps: list[Command] = []
    if missing:
        tags = [{"Key": k, "Value": v} for k, v in sorted(missing.items())]
        steps.append(t.ddb("tag-resource", "--tags", _j(tags), arn=True))
    if extra:
        steps.append(t.ddb("untag-resource", "--tag-keys", *extra, arn=True))
    parts = []
    if missing:
        parts.append(f"tag {', '.join(sorted(missing))}")
    if extra:
        parts.append(f"remove {', '.join(extra)}")
    return " and ".join(parts) + " (cost allocation and tag-based access depend on them)", tuple(
        steps
    )


def _capacity(
    live: Any, restored: Any, t: _Target, billing: str
) -> tuple[str, tuple[Command, ...]]:
    if billing == "PAY_PER_REQUEST":
        return "switch to on-demand capacity", _update(t, "--billing-mode", "PAY_PER_REQUEST")
    options = ["--billing-mode", "PROVISIONED"]
    if live:
        throughput = {"ReadCapacityUnits": live["read"], "WriteCapacityUnits": live["write"]}
        options += ["--provisioned-throughput", _j(throughput)]
    what = f"{live['read']} RCU / {live['write']} WCU" if live else "provisioned capacity"
    return f"provision {what}", _update(t, *options)


def _billing(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    return (
        _capacity(None, None, t, live)
        if live == "PAY_PER_REQUEST"
        else (
            "switch to provisioned capacity (see provisioned_throughput)",
            (),
        )
    )


def _auto_scaling(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    steps: list[Command] = []
    for target in live["targets"]:
        if target in restored["targets"]:
            continue
        steps.append(
            (
                "aws", "application-autoscaling", "register-scalable-target",
                "--service-namespace", "dynamodb",
                "--resource-id", t.resource(target["resource"]),
                "--scalable-dimension", target["dimension"],
                "--min-capacity", str(target["min"]),
                "--max-capacity", str(target["max"]),
            )
        )  # fmt: skip
    for policy in live["policies"]:
        if policy in restored["policies"]:
            continue
        option = (
            "--target-tracking-scaling-policy-configuration"
            if policy["type"] == "TargetTrackingScaling"
            else "--step-scaling-policy-configuration"
        )
        steps.append(
            (
                "aws", "application-autoscaling", "put-scaling-policy",
                "--policy-name", str(t.fill(policy["name"])),
                "--service-namespace", "dynamodb",
                "--resource-id", t.resource(policy["resource"]),
                "--scalable-dimension", policy["dimension"],
                "--policy-type", policy["type"],
                option, _j(t.fill(policy["configuration"])),
            )
        )  # fmt: skip
    targets, policies = len(live["targets"]), len(live["policies"])
    return (
        f"register {targets} scalable target(s) and {policies} scaling policy(ies) like the "
        "live table's (a restore brings none)",
        tuple(steps),
    )


def _resource_policy(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    if live is None:
        return "delete the resource policy", (t.ddb("delete-resource-policy", arn=True),)
    policy = _j(t.fill(live))
    return (
        "attach the live table's resource policy (its ARNs rewritten to the restored table)",
        (t.ddb("put-resource-policy", "--policy", policy, arn=True),),
    )


def _table_class(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    return f"switch the table class to {live}", _update(t, "--table-class", str(live))


def _encryption(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    if live["type"] == "AWS_OWNED":
        spec: dict[str, Any] = {"Enabled": False}
        what = "an AWS owned key"
    else:
        spec = {"Enabled": True, "SSEType": "KMS"}
        if live.get("kms_key"):
            spec["KMSMasterKeyId"] = live["kms_key"]
        what = f"the KMS key {live.get('kms_key') or '(AWS managed)'}"
    return f"encrypt with {what}", _update(t, "--sse-specification", _j(spec))


def _gsi(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    steps: list[Command] = []
    missing = sorted(n for n in live if n not in restored)
    for name in missing:
        index = live[name]
        create: dict[str, Any] = {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": k["name"], "KeyType": k["key_type"]} for k in index["keys"]
            ],
            "Projection": {"ProjectionType": index["projection"]["type"]},
        }
        if index["projection"]["non_key_attributes"]:
            create["Projection"]["NonKeyAttributes"] = index["projection"]["non_key_attributes"]
        capacity = index.get("provisioned_throughput")
        if capacity:
            create["ProvisionedThroughput"] = {
                "ReadCapacityUnits": capacity["read"],
                "WriteCapacityUnits": capacity["write"],
            }
        definitions = [
            {"AttributeName": k["name"], "AttributeType": k["type"] or "S"} for k in index["keys"]
        ]
        steps += _update(
            t,
            "--attribute-definitions", _j(definitions),
            "--global-secondary-index-updates", _j([{"Create": create}]),
        )  # fmt: skip
    other = sorted(n for n in live if n in restored and live[n] != restored[n])
    extra = sorted(n for n in restored if n not in live)
    parts = []
    if missing:
        parts.append(f"create {', '.join(missing)} (backfilling takes time)")
    if other:
        parts.append(f"{', '.join(other)} differ: recreate or update them by hand")
    if extra:
        parts.append(f"{', '.join(extra)} exist only on the restored table")
    return "; ".join(parts), tuple(steps)


def _lsi(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    return (
        "local secondary indexes are defined only when a table is created: restore again "
        "with its indexes (without --no-indexes)",
        (),
    )


def _insights(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    action = "ENABLE" if live == "ENABLED" else "DISABLE"
    return (
        f"{action.lower()} contributor insights",
        (t.ddb("update-contributor-insights", "--contributor-insights-action", action),),
    )


def _warm(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    spec = {
        "ReadUnitsPerSecond": live["read_units_per_second"],
        "WriteUnitsPerSecond": live["write_units_per_second"],
    }
    return "pre-warm to the live table's throughput", _update(t, "--warm-throughput", _j(spec))


def _on_demand(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    spec = (
        {"MaxReadRequestUnits": live["max_read"], "MaxWriteRequestUnits": live["max_write"]}
        if live
        else {"MaxReadRequestUnits": -1, "MaxWriteRequestUnits": -1}
    )
    return "set the on-demand maximum throughput", _update(t, "--on-demand-throughput", _j(spec))


def _replicas(live: Any, restored: Any, t: _Target) -> tuple[str, tuple[Command, ...]]:
    steps: list[Command] = []
    for region in live:
        if region not in restored:
            steps += _update(t, "--replica-updates", _j([{"Create": {"RegionName": region}}]))
    return "add the global table replicas (a restore is a single-region table)", tuple(steps)


_Fix = Callable[[Any, Any, _Target], tuple[str, tuple[Command, ...]]]
FIXES: dict[str, _Fix] = {
    "ttl": _ttl,
    "stream": _stream,
    "point_in_time_recovery": _pitr,
    "deletion_protection": _deletion_protection,
    "tags": _tags,
    "billing_mode": _billing,
    "auto_scaling": _auto_scaling,
    "resource_policy": _resource_policy,
    "table_class": _table_class,
    "encryption": _encryption,
    "global_secondary_indexes": _gsi,
    "local_secondary_indexes": _lsi,
    "contributor_insights": _insights,
    "warm_throughput": _warm,
    "on_demand_throughput": _on_demand,
    "replicas": _replicas,
}


def _differs(setting: str, live: Any, restored: Any) -> bool:
    if setting == "warm_throughput":  # only a lower warm throughput needs anything
        if not live:
            return False
        if not restored:
            return True
        return any(live[k] > restored.get(k, 0) for k in live)
    return bool(live != restored)


def compare(
    live: TableSettings, restored: TableSettings, *, region: str | None = None
) -> SettingsDiff:
    """Compare two sides' settings.

    Parameters
    ----------
    live, restored
        The settings read from the live table and from the restored table (or
        an export manifest).
    region
        Added to every command as ``--region`` when given.

    Returns
    -------
    SettingsDiff
    """
    target = _Target(restored)
    differences: list[SettingDifference] = []
    unknown: dict[str, str] = {}
    for setting in SETTINGS:
        if setting not in live.values or setting not in restored.values:
            reason = live.unavailable.get(setting) or restored.unavailable.get(setting)
            side = live.name if setting in live.unavailable else restored.name
            unknown[setting] = f"{side}: {reason or 'not answered'}"
            continue
        a, b = live.values[setting], restored.values[setting]
        if not _differs(setting, a, b):
            continue
        if setting == "provisioned_throughput":
            promotion, commands = _capacity(a, b, target, "PROVISIONED")
        else:
            promotion, commands = FIXES[setting](a, b, target)
        if restored.source != "table":
            commands = ()
        if region:
            commands = tuple(_with_region(c, region) for c in commands)
        differences.append(SettingDifference(setting, a, b, promotion, commands))
    return SettingsDiff(live, restored, tuple(differences), unknown, region=region)


def _with_region(command: Command, region: str) -> Command:
    return (*command, "--region", region)


def render_script(diff: SettingsDiff) -> str:
    """The AWS CLI commands that bring the restored table in line, as a shell script.

    The script is for a user who promotes the restored table instead of
    re-putting items; review it before running it. Updates to one table are
    separated by ``aws dynamodb wait table-exists`` (one update at a time).
    """
    lines = [
        "#!/bin/sh",
        _comment(f"pitrdiff settings: bring {diff.restored.name} in line with {diff.live.name}"),
        "# Review before running: each block changes the restored table.",
        "set -eu",
    ]
    for difference in diff.differences:
        lines += ["", _comment(f"{difference.setting}: {difference.promotion}")]
        if not difference.commands:
            lines.append("# (no API call can do this)")
        lines += [shlex.join(c) for c in difference.commands]  # every argument quoted
    for what, why in diff.not_compared:
        lines += ["", _comment(f"not compared: {what}: {why}")]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    """A shell comment of one line whatever ``text`` holds.

    Names and values come from the tables (a TTL attribute or tag may hold a
    newline): control characters are written escaped, so nothing ends the
    comment and becomes a command.
    """
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return f"# {safe}"


def describe_value(value: Any) -> str:
    """A setting value in one short line for people."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"enabled", "attribute"}:
        return f"on ({value['attribute']})" if value["enabled"] else "off"
    if isinstance(value, Mapping) and set(value) == {"enabled", "view_type"}:
        return f"on ({value['view_type']})" if value["enabled"] else "off"
    if isinstance(value, Mapping) and set(value) == {"enabled", "recovery_period_days"}:
        days = value["recovery_period_days"]
        return (f"on ({days} days)" if days else "on") if value["enabled"] else "off"
    if isinstance(value, Mapping) and set(value) == {"targets", "policies"}:
        return f"{len(value['targets'])} targets, {len(value['policies'])} policies"
    if isinstance(value, Mapping) and not value:
        return "none"
    if isinstance(value, Sequence) and not value:
        return "none"
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))
