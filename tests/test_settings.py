"""The settings diff against moto's server: what a restore does not carry.

The live table (provisioned, 5 RCU / 5 WCU, one GSI ``by_status``) has:
TTL on ``expires``; a NEW_AND_OLD_IMAGES stream; tags ``team=payments`` and
``env=prod``; PITR on; deletion protection on; a scalable target (reads 5..50)
with a target-tracking policy (70 %), and the GSI's writes 5..20; a resource policy naming its ARN.
Restored (moto copies the data, the key schema, the indexes and the capacity,
like AWS), none of those settings come along. Expected differences, in order:
ttl, stream, point_in_time_recovery, deletion_protection, tags, auto_scaling,
resource_policy. Everything else (billing, capacity, class, encryption, GSIs,
LSIs, replicas) is the same.
"""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from typer.testing import CliRunner

from pitrdiff import pitr
from pitrdiff.cli.app import load_commands
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_OK, InputError, RefusedError
from pitrdiff.settings import compare_settings, read_table_settings, render_script, write_script
from pitrdiff.settings.read import autoscaling_client
from tests.helpers import Server

EXPECTED = (
    "ttl",
    "stream",
    "point_in_time_recovery",
    "deletion_protection",
    "tags",
    "auto_scaling",
    "resource_policy",
)


def make_live_table(server: Server, name: str) -> dict[str, Any]:
    client = server.client()
    table = client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        Tags=[{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}],
        DeletionProtectionEnabled=True,
    )["TableDescription"]
    arn = table["TableArn"]
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )
    pitr.enable_pitr(name, aws=server.aws)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/reader"},
                "Action": "dynamodb:GetItem",
                "Resource": arn,
            }
        ],
    }
    client.put_resource_policy(ResourceArn=arn, Policy=json.dumps(policy))
    scaling = autoscaling_client(server.aws)
    scaling.register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId=f"table/{name}",
        ScalableDimension="dynamodb:table:ReadCapacityUnits",
        MinCapacity=5,
        MaxCapacity=50,
    )
    scaling.register_scalable_target(
        ServiceNamespace="dynamodb",
        ResourceId=f"table/{name}/index/by_status",
        ScalableDimension="dynamodb:index:WriteCapacityUnits",
        MinCapacity=5,
        MaxCapacity=20,
    )
    scaling.put_scaling_policy(
        PolicyName=f"{name}-read-scaling",
        ServiceNamespace="dynamodb",
        ResourceId=f"table/{name}",
        ScalableDimension="dynamodb:table:ReadCapacityUnits",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "DynamoDBReadCapacityUtilization"
            },
        },
    )
    return {"arn": arn, "policy": policy}


@pytest.fixture
def restored_pair(moto_server: Server, table_name: str) -> tuple[str, str, dict[str, Any]]:
    facts = make_live_table(moto_server, table_name)
    restored = pitr.restore(table_name, latest=True, aws=moto_server.aws).target
    return table_name, restored, facts


def test_every_difference_is_listed(
    moto_server: Server, restored_pair: tuple[str, str, dict[str, Any]]
) -> None:
    live, restored, _ = restored_pair
    before = read_table_settings(restored, aws=moto_server.aws)
    diff = compare_settings(live, restored, aws=moto_server.aws)
    assert tuple(d.setting for d in diff.differences) == EXPECTED
    d = {x.setting: x for x in diff.differences}
    assert d["ttl"].live == {"enabled": True, "attribute": "expires"}
    assert d["ttl"].restored == {"enabled": False, "attribute": None}
    assert d["stream"].live == {"enabled": True, "view_type": "NEW_AND_OLD_IMAGES"}
    assert d["stream"].restored == {"enabled": False, "view_type": None}
    assert d["point_in_time_recovery"].live["enabled"] is True
    assert d["point_in_time_recovery"].restored == {"enabled": False, "recovery_period_days": None}
    assert (d["deletion_protection"].live, d["deletion_protection"].restored) == (True, False)
    assert d["tags"].live == {"env": "prod", "team": "payments"} and d["tags"].restored == {}
    assert d["auto_scaling"].live["targets"] == [
        {"resource": "table", "dimension": "dynamodb:table:ReadCapacityUnits", "min": 5, "max": 50},
        {
            "resource": "table/index/by_status",
            "dimension": "dynamodb:index:WriteCapacityUnits",
            "min": 5,
            "max": 20,
        },
    ]
    assert d["auto_scaling"].live["policies"][0]["name"] == "${table}-read-scaling"
    assert d["auto_scaling"].restored == {"targets": [], "policies": []}
    # the policy names the live table's ARN; normalised to a placeholder
    assert d["resource_policy"].live["Statement"][0]["Resource"] == "${table_arn}"
    assert d["resource_policy"].restored is None
    # what the restore carried matches
    same = diff.live.values
    assert same["billing_mode"] == diff.restored.values["billing_mode"] == "PROVISIONED"
    assert same["provisioned_throughput"] == {"read": 5, "write": 5}
    assert list(same["global_secondary_indexes"]) == ["by_status"]
    # moto has no contributor insights: unknown, with the reason, not a difference
    assert "contributor_insights" in diff.unknown
    # the comparison changed nothing
    assert read_table_settings(restored, aws=moto_server.aws) == before
    assert diff.to_dict()["differences"][0]["setting"] == "ttl"


def _cli_parts(command: list[str]) -> tuple[str, str, dict[str, str | None]]:
    assert command[0] == "aws"
    service, operation = command[1], command[2]
    options: dict[str, str | None] = {}
    rest = command[3:]
    i = 0
    while i < len(rest):
        assert rest[i].startswith("--"), command
        name = rest[i][2:]
        values = []
        i += 1
        while i < len(rest) and not rest[i].startswith("--"):
            values.append(rest[i])
            i += 1
        options[name] = " ".join(values) if values else None
    return service, operation, options


GLOBAL_OPTIONS = {"region", "endpoint-url", "profile", "output"}


def check_against_service_models(script: str) -> int:
    """Every command's operation and option names exist in botocore's models; count them."""
    session = botocore.session.get_session()
    checked = 0
    for line in script.splitlines():
        if not line or line.startswith("#") or line in ("set -eu",):
            continue
        words = shlex.split(line)
        if words[2] == "wait":  # aws SERVICE wait WAITER --options: the waiter's operation
            service = words[1]
            model = session.get_service_model(service)
            waiter = session.get_waiter_model(service)
            names = {botocore.xform_name(n, "-"): n for n in waiter.waiter_names}
            assert words[3] in names, line
            op = model.operation_model(waiter.get_waiter(names[words[3]]).operation)
            options = _cli_parts(["aws", service, "wait", *words[4:]])[2]
        else:
            service, operation, options = _cli_parts(words)
            model = session.get_service_model(service)
            by_cli = {botocore.xform_name(n, "-"): n for n in model.operation_names}
            assert operation in by_cli, f"{service} has no operation {operation}"
            op = model.operation_model(by_cli[operation])
        members = {botocore.xform_name(m, "-"): m for m in op.input_shape.members}
        for option, value in options.items():
            if option in GLOBAL_OPTIONS:
                continue
            name = option[3:] if option.startswith("no-") else option
            assert name in members, f"{line}: {op.name} has no --{name}"
            shape = op.input_shape.members[members[name]]
            if value is None:
                assert shape.type_name == "boolean", f"{line}: --{option} needs a value"
            elif shape.type_name in ("structure", "list") and value.startswith(("{", "[")):
                json.loads(value)
        missing = [
            m for m in op.input_shape.required_members if botocore.xform_name(m, "-") not in options
        ]
        assert not missing, f"{line}: missing {missing}"
        checked += 1
    return checked


def test_script_commands_exist_in_the_service_models(
    moto_server: Server, restored_pair: tuple[str, str, dict[str, Any]], tmp_path: Path
) -> None:
    live, restored, _ = restored_pair
    diff = compare_settings(live, restored, aws=moto_server.aws)
    script = render_script(diff)
    assert check_against_service_models(script) == len(diff.commands) == 11
    restored_arn = diff.restored.arn
    for command in diff.commands:  # every command acts on the restored table, never the live
        options = _cli_parts(list(command))[2] if command[2] != "wait" else {}
        if command[2] == "wait":
            assert command[3:] == (
                "table-exists",
                "--table-name",
                restored,
                "--region",
                "us-east-1",
            )
        assert options.get("table-name", restored) == restored
        assert options.get("resource-arn", restored_arn) == restored_arn
        assert options.get("resource-id", f"table/{restored}") in (
            f"table/{restored}",
            f"table/{restored}/index/by_status",
        )
    assert f'"Resource":"{restored_arn}"' in script  # the policy names the restored table
    assert f"--policy-name {restored}-read-scaling" in script
    path = write_script(diff, tmp_path / "promote.sh")
    assert path.read_text() == script
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # never replaces a file (the user's or an earlier script), never makes directories
    with pytest.raises(RefusedError, match="already exists"):
        write_script(diff, path)
    assert path.read_text() == script
    with pytest.raises(InputError, match="is not a directory"):
        write_script(diff, tmp_path / "no-such-dir" / "promote.sh")
    assert not (tmp_path / "no-such-dir").exists()


def test_names_from_the_tables_cannot_inject_commands_into_the_script(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    """A TTL attribute named ``exp\\ntouch PWNED`` stays inside its comment and its quotes."""
    hostile = "exp\ntouch PWNED; echo $(id)"
    moto_server.create_table(table_name)
    other = f"{table_name}-other"
    moto_server.create_table(other)
    moto_server.client().update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": hostile},
    )
    script = render_script(compare_settings(table_name, other, aws=moto_server.aws))
    assert "touch PWNED" in script  # the name is shown ...
    for line in script.splitlines():  # ... but never as a command of its own
        assert not line.startswith("touch")
        if "touch PWNED" in line and not line.startswith("#"):  # one quoted JSON argument
            arguments = shlex.split(line)
            spec = arguments[arguments.index("--time-to-live-specification") + 1]
            assert json.loads(spec) == {"AttributeName": hostile, "Enabled": True}


def test_the_script_brings_the_restored_table_in_line(
    moto_server: Server, restored_pair: tuple[str, str, dict[str, Any]]
) -> None:
    """Run each command's API call (the CLI's JSON options map 1:1 onto them) on moto."""
    live, restored, _ = restored_pair
    diff = compare_settings(live, restored, aws=moto_server.aws)
    session = botocore.session.get_session()
    for command in diff.commands:
        if command[2] in ("wait", "update-contributor-insights"):  # moto has neither
            continue
        service, operation, options = _cli_parts(list(command))
        model = session.get_service_model(service)
        op = {botocore.xform_name(n, "-"): n for n in model.operation_names}[operation]
        members = {
            botocore.xform_name(m, "-"): m for m in model.operation_model(op).input_shape.members
        }
        kwargs: dict[str, Any] = {}
        for option, value in options.items():
            if option in GLOBAL_OPTIONS:
                continue
            if value is None:
                kwargs[members[option.removeprefix("no-")]] = not option.startswith("no-")
                continue
            shape = model.operation_model(op).input_shape.members[members[option]]
            if shape.type_name in ("structure",) or value.startswith("["):
                kwargs[members[option]] = json.loads(value)
            elif shape.type_name == "list":
                kwargs[members[option]] = value.split(" ")
            elif shape.type_name == "integer":
                kwargs[members[option]] = int(value)
            else:
                kwargs[members[option]] = value
        client = (
            moto_server.client() if service == "dynamodb" else autoscaling_client(moto_server.aws)
        )
        getattr(client, botocore.xform_name(op))(**kwargs)
    after = compare_settings(live, restored, aws=moto_server.aws)
    assert after.same, [d.to_dict() for d in after.differences]


def test_against_an_export_manifest(moto_server: Server, table_name: str, tmp_path: Path) -> None:
    """A manifest that recorded TTL off, against a table with TTL on."""
    make_live_table(moto_server, table_name)
    export = tmp_path / "export"
    export.mkdir()
    manifest = {
        "format": "pitrdiff-export",
        "table_name": table_name,
        "table": {"billing_mode": "PROVISIONED"},
        "ttl": {"attribute": None, "status": "DISABLED"},
    }
    (export / "manifest.json").write_text(json.dumps(manifest))
    diff = compare_settings(table_name, export, aws=moto_server.aws)
    assert [d.setting for d in diff.differences] == ["ttl"]
    assert diff.differences[0].commands == ()  # no table to change
    assert diff.unknown["stream"].endswith("not recorded in the export manifest")
    with pytest.raises(InputError, match="needs a restored table"):
        write_script(diff, tmp_path / "s.sh")
    assert not (tmp_path / "s.sh").exists()


def test_settings_command(
    moto_server: Server, restored_pair: tuple[str, str, dict[str, Any]], tmp_path: Path
) -> None:
    live, restored, _ = restored_pair
    runner = CliRunner()
    base = ["settings", live, restored, "--endpoint-url", moto_server.endpoint]
    shown = runner.invoke(load_commands(), base, env={"COLUMNS": "200"})  # no wrapped names
    assert shown.exit_code == EXIT_OK, shown.output
    for setting in EXPECTED:
        assert setting in shown.stdout
    as_json = runner.invoke(load_commands(), [*base, "--json"])
    assert as_json.exit_code == EXIT_OK, as_json.output
    document = json.loads(as_json.stdout)
    assert [d["setting"] for d in document["differences"]] == list(EXPECTED)
    assert not (tmp_path / "promote.sh").exists()
    scripted = runner.invoke(load_commands(), [*base, "--script", str(tmp_path / "promote.sh")])
    assert scripted.exit_code == EXIT_OK, scripted.output
    assert check_against_service_models((tmp_path / "promote.sh").read_text()) == 11
    missing = runner.invoke(
        load_commands(), ["settings", live, "nope-no-table", "--endpoint-url", moto_server.endpoint]
    )
    assert missing.exit_code == EXIT_BAD_INPUT
    assert "nope-no-table" in missing.stderr and "Traceback" not in missing.output


def test_an_export_of_the_live_table_against_the_restored_table(
    moto_server: Server, restored_pair: tuple[str, str, dict[str, Any]], tmp_path: Path
) -> None:
    """The live export recorded TTL on `expires` (DescribeTimeToLive); the restore lacks it."""
    from pitrdiff.export.scan import export_table

    live, restored, _ = restored_pair
    export_table(live, tmp_path / "live", aws=moto_server.aws)
    diff = compare_settings(tmp_path / "live", restored, aws=moto_server.aws)
    assert [d.setting for d in diff.differences] == ["ttl"]
    ttl = diff.differences[0]
    assert ttl.live == {"enabled": True, "attribute": "expires"}
    assert ttl.restored == {"enabled": False, "attribute": None}
    assert check_against_service_models(render_script(diff)) == 1  # update-time-to-live
