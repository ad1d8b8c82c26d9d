"""Read a table's settings — everything a point-in-time restore does not carry.

A restore brings back the data, the indexes, the provisioned capacity and the
encryption settings; the rest must be set up again by hand (the DynamoDB API
Reference, ``RestoreTableToPointInTime``, and the developer guide's page
"Restore a table in DynamoDB"): auto scaling policies, IAM policies, CloudWatch
metrics and alarms, tags, stream settings, TTL settings and point-in-time
recovery settings. Deletion protection, the resource policy and contributor
insights are per-table settings too and are not restored either.

:func:`read_table_settings` asks the API for each of them and normalises the
answers into plain JSON values that compare equal when the settings are the
same: names and ARNs of the table itself are replaced by ``${table}`` and
``${table_arn}`` so that a policy naming the live table matches the same
policy naming the restored one. A setting the endpoint cannot answer (a local
server without contributor insights, an access-denied auto scaling call) is
recorded as unavailable with the reason, never guessed.

:func:`read_manifest_settings` reads what an export manifest recorded (TTL at
least) for comparing a table against an export.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import botocore.config
import orjson

from pitrdiff import aws as aws_mod
from pitrdiff.aws import AwsConfig, translate_errors
from pitrdiff.errors import AwsError, CredentialsError, ExportError, InputError

TABLE_PLACEHOLDER = "${table}"
OPTIONAL_ATTEMPTS = 1  # no retries: an unanswered optional setting is "not compared"
ARN_PLACEHOLDER = "${table_arn}"

# Display order; every name is a key of TableSettings.values or .unavailable.
SETTINGS: tuple[str, ...] = (
    "ttl",
    "stream",
    "point_in_time_recovery",
    "deletion_protection",
    "tags",
    "billing_mode",
    "provisioned_throughput",
    "on_demand_throughput",
    "auto_scaling",
    "resource_policy",
    "table_class",
    "encryption",
    "global_secondary_indexes",
    "local_secondary_indexes",
    "contributor_insights",
    "warm_throughput",
    "replicas",
)


@dataclass(frozen=True)
class TableSettings:
    """One side of a settings comparison: a table (or an export manifest).

    Attributes
    ----------
    name
        The table's name (for a manifest: the table it recorded).
    arn
        The table's ARN (``None`` for a manifest without one).
    source
        ``table`` (read from the API) or ``manifest`` (read from an export).
    values
        Setting name → normalised JSON value (see :data:`SETTINGS`).
    unavailable
        Setting name → why it could not be read.
    """

    name: str
    arn: str | None
    source: str
    values: Mapping[str, Any]
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        return {
            "name": self.name,
            "arn": self.arn,
            "source": self.source,
            "values": dict(self.values),
            "unavailable": dict(self.unavailable),
        }


def is_loopback(url: str | None) -> bool:
    """Whether ``url`` points at this machine (a local server serving every service)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def autoscaling_client(aws: AwsConfig) -> Any:
    """An Application Auto Scaling client.

    The DynamoDB endpoint of ``aws`` is reused only when it is a loopback
    address (a local server such as moto's answers every service); otherwise
    boto3's own resolution applies (``AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING``).
    """
    sess = aws_mod.session(aws)
    endpoint = aws.endpoint_url if is_loopback(aws.endpoint_url) else None
    retries: Any = {"total_max_attempts": aws_mod.max_attempts(aws), "mode": aws.retry_mode}
    config = botocore.config.Config(retries=retries)
    return sess.client(
        "application-autoscaling",
        region_name=aws.region or sess.region_name or aws_mod.DEFAULT_REGION,
        endpoint_url=endpoint,
        config=config,
    )


def _placeholders(value: Any, name: str, arn: str | None) -> Any:
    """Replace the table's ARN and name in every string of ``value``."""
    if isinstance(value, str):
        if arn:
            value = value.replace(arn, ARN_PLACEHOLDER)
        return value.replace(name, TABLE_PLACEHOLDER) if name else value
    if isinstance(value, list):
        return [_placeholders(v, name, arn) for v in value]
    if isinstance(value, dict):
        return {k: _placeholders(v, name, arn) for k, v in value.items()}
    return value


def _capacity(throughput: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not throughput:
        return None
    read, write = throughput.get("ReadCapacityUnits"), throughput.get("WriteCapacityUnits")
    if not read and not write:  # on-demand tables and indexes report 0 / 0
        return None
    return {"read": int(read or 0), "write": int(write or 0)}


def _on_demand(throughput: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not throughput:
        return None
    read = throughput.get("MaxReadRequestUnits")
    write = throughput.get("MaxWriteRequestUnits")
    if read in (None, -1) and write in (None, -1):
        return None
    return {
        "max_read": -1 if read is None else int(read),
        "max_write": -1 if write is None else int(write),
    }


def _warm(throughput: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not throughput:
        return None
    return {
        "read_units_per_second": int(throughput.get("ReadUnitsPerSecond") or 0),
        "write_units_per_second": int(throughput.get("WriteUnitsPerSecond") or 0),
    }


def _index(index: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    projection = index.get("Projection") or {}
    value: dict[str, Any] = {
        "keys": [
            {
                "name": k["AttributeName"],
                "key_type": k["KeyType"],
                "type": types.get(k["AttributeName"]),
            }
            for k in index.get("KeySchema") or ()
        ],
        "projection": {
            "type": projection.get("ProjectionType", "ALL"),
            "non_key_attributes": sorted(projection.get("NonKeyAttributes") or ()),
        },
    }
    if "ProvisionedThroughput" in index or "OnDemandThroughput" in index:
        value["provisioned_throughput"] = _capacity(index.get("ProvisionedThroughput"))
        value["on_demand_throughput"] = _on_demand(index.get("OnDemandThroughput"))
    return value


def settings_from_description(description: Mapping[str, Any]) -> dict[str, Any]:
    """The settings ``DescribeTable`` answers, normalised.

    Facts: a table without ``BillingModeSummary`` is provisioned; without
    ``SSEDescription`` it is encrypted with an AWS owned key; without
    ``TableClassSummary`` its class is ``STANDARD`` (the API Reference,
    ``TableDescription``).
    """
    name = str(description.get("TableName", ""))
    types = {
        d["AttributeName"]: d["AttributeType"]
        for d in description.get("AttributeDefinitions") or ()
    }
    stream = description.get("StreamSpecification") or {}
    billing = (description.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    sse = description.get("SSEDescription") or {}
    sse_status = sse.get("Status")
    encryption = (
        {"type": str(sse.get("SSEType") or "KMS"), "kms_key": sse.get("KMSMasterKeyArn")}
        if sse_status in ("ENABLED", "ENABLING", "UPDATING")
        else {"type": "AWS_OWNED", "kms_key": None}
    )
    return {
        "stream": {
            "enabled": bool(stream.get("StreamEnabled")),
            "view_type": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        },
        "deletion_protection": bool(description.get("DeletionProtectionEnabled")),
        "billing_mode": billing,
        "provisioned_throughput": (
            _capacity(description.get("ProvisionedThroughput"))
            if billing == "PROVISIONED"
            else None
        ),
        "on_demand_throughput": _on_demand(description.get("OnDemandThroughput")),
        "table_class": (description.get("TableClassSummary") or {}).get("TableClass") or "STANDARD",
        "encryption": encryption,
        "global_secondary_indexes": {
            str(i["IndexName"]): _index(i, types)
            for i in description.get("GlobalSecondaryIndexes") or ()
        },
        "local_secondary_indexes": {
            str(i["IndexName"]): _index(i, types)
            for i in description.get("LocalSecondaryIndexes") or ()
        },
        "warm_throughput": _warm(description.get("WarmThroughput")),
        "replicas": sorted(str(r.get("RegionName")) for r in description.get("Replicas") or ()),
        "_name": name,
    }


def _ttl(client: Any, table: str) -> dict[str, Any]:
    answer = client.describe_time_to_live(TableName=table).get("TimeToLiveDescription") or {}
    status = str(answer.get("TimeToLiveStatus", "DISABLED"))
    enabled = status in ("ENABLED", "ENABLING")
    return {"enabled": enabled, "attribute": answer.get("AttributeName") if enabled else None}


def _pitr(client: Any, table: str) -> dict[str, Any]:
    answer = client.describe_continuous_backups(TableName=table)
    pitr = (answer.get("ContinuousBackupsDescription") or {}).get(
        "PointInTimeRecoveryDescription"
    ) or {}
    enabled = pitr.get("PointInTimeRecoveryStatus") == "ENABLED"
    days = pitr.get("RecoveryPeriodInDays")
    return {"enabled": enabled, "recovery_period_days": int(days) if enabled and days else None}


def _tags(client: Any, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    kwargs: dict[str, Any] = {"ResourceArn": arn}
    while True:
        answer = client.list_tags_of_resource(**kwargs)
        tags.update({str(t["Key"]): str(t["Value"]) for t in answer.get("Tags") or ()})
        token = answer.get("NextToken")
        if not token:
            return dict(sorted(tags.items()))
        kwargs["NextToken"] = token


def _resource_policy(client: Any, arn: str) -> Any:
    try:
        answer = client.get_resource_policy(ResourceArn=arn)
    except Exception as exc:
        if aws_mod.client_error_code(exc) == "PolicyNotFoundException":
            return None
        raise
    text = answer.get("Policy")
    return json.loads(text) if text else None


def _contributor_insights(client: Any, table: str) -> str:
    answer = client.describe_contributor_insights(TableName=table)
    status = str(answer.get("ContributorInsightsStatus", "DISABLED"))
    return "ENABLED" if status in ("ENABLED", "ENABLING") else "DISABLED"


def _paged(call: Callable[..., Any], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        answer = call(**kwargs)
        rows.extend(answer.get(key) or ())
        token = answer.get("NextToken")
        if not token:
            return rows
        kwargs["NextToken"] = token


def _auto_scaling(client: Any, table: str, indexes: Sequence[str]) -> dict[str, Any]:
    """Scalable targets and scaling policies of the table and its global secondary indexes.

    Resource ids are ``table/NAME`` and ``table/NAME/index/INDEX`` (Application
    Auto Scaling, "Amazon DynamoDB and Application Auto Scaling"); only those
    are asked for, not every table's.
    """
    prefix = f"table/{table}"
    ids = [prefix, *(f"{prefix}/index/{index}" for index in indexes)]

    def ours(resource: str) -> bool:
        return resource == prefix or resource.startswith(prefix + "/index/")

    def relative(resource: str) -> str:
        return "table" + resource[len(prefix) :]

    targets = [
        {
            "resource": relative(t["ResourceId"]),
            "dimension": t["ScalableDimension"],
            "min": int(t["MinCapacity"]),
            "max": int(t["MaxCapacity"]),
        }
        for t in _paged(
            client.describe_scalable_targets,
            "ScalableTargets",
            ServiceNamespace="dynamodb",
            ResourceIds=ids,
        )
        if ours(str(t["ResourceId"]))
    ]
    policies = []
    found = [
        p
        for resource in ids
        for p in _paged(
            client.describe_scaling_policies,
            "ScalingPolicies",
            ServiceNamespace="dynamodb",
            ResourceId=resource,
        )
        if p.get("ResourceId") == resource  # (moto ignores the filter)
    ]
    for p in found:
        if not ours(str(p["ResourceId"])):
            continue
        configuration = p.get("TargetTrackingScalingPolicyConfiguration") or p.get(
            "StepScalingPolicyConfiguration"
        )
        policies.append(
            {
                "resource": relative(p["ResourceId"]),
                "dimension": p["ScalableDimension"],
                "name": str(p["PolicyName"]).replace(table, TABLE_PLACEHOLDER),
                "type": p["PolicyType"],
                "configuration": orjson.loads(orjson.dumps(configuration, default=str)),
            }
        )
    order = lambda row: (row["resource"], row["dimension"], row.get("name", ""))  # noqa: E731
    return {"targets": sorted(targets, key=order), "policies": sorted(policies, key=order)}


def _attempt(
    values: dict[str, Any], unavailable: dict[str, str], name: str, read: Callable[[], Any]
) -> None:
    """Read one setting; an endpoint that cannot answer makes it unavailable, not an error."""
    try:
        values[name] = read()
    except (AwsError, CredentialsError, InputError) as exc:
        code = getattr(exc, "code", None)
        if code is not None and str(code).isdigit():  # a plain HTTP error: not implemented here
            unavailable[name] = f"HTTP {code}: this endpoint does not answer it"
        else:
            unavailable[name] = str(exc) if len(str(exc)) <= 160 else str(exc)[:157] + "..."
    except Exception as exc:
        # Local servers answer unimplemented operations with plain HTTP errors.
        code = aws_mod.client_error_code(exc)
        if code is None:
            raise
        unavailable[name] = f"{code}: the endpoint does not answer"


class SettingsClients:
    """The clients the settings reads use: made once, shared by both sides of a comparison.

    ``optional`` and ``autoscaling`` make :data:`OPTIONAL_ATTEMPTS` attempts:
    settings some endpoints do not implement (local servers answer HTTP 500)
    become "not compared" at once instead of after minutes of retries.
    """

    def __init__(self, aws: AwsConfig) -> None:
        self.aws = aws
        self.optional_aws = replace(
            aws, max_attempts=min(aws_mod.max_attempts(aws), OPTIONAL_ATTEMPTS)
        )

    @functools.cached_property
    def dynamodb(self) -> Any:
        """DynamoDB, with the configured retries."""
        return aws_mod.dynamodb_client(self.aws)

    @functools.cached_property
    def optional(self) -> Any:
        """DynamoDB, for the settings an endpoint may not answer."""
        return aws_mod.dynamodb_client(self.optional_aws)

    @functools.cached_property
    def autoscaling(self) -> Any:
        """Application Auto Scaling."""
        return autoscaling_client(self.optional_aws)


def read_table_settings(
    table: str, *, aws: AwsConfig | None = None, clients: SettingsClients | None = None
) -> TableSettings:
    """Read every setting of a table that a restore does not carry (and the ones it does).

    Calls ``DescribeTable``, ``DescribeTimeToLive``, ``DescribeContinuousBackups``,
    ``ListTagsOfResource``, ``GetResourcePolicy``, ``DescribeContributorInsights``
    and Application Auto Scaling's ``DescribeScalableTargets`` and
    ``DescribeScalingPolicies``. Read-only.

    Parameters
    ----------
    table
        The table name.
    aws
        Where to talk to AWS.
    clients
        Clients to reuse (a comparison reads two tables with the same ones).

    Returns
    -------
    TableSettings
        Normalised values, with the table's own name and ARN replaced by
        placeholders wherever a setting mentions them.

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    AwsError
        When ``DescribeTable`` itself fails.
    """
    c = clients or SettingsClients(aws or AwsConfig())
    with translate_errors(table=table, action="describing the table"):
        description = c.dynamodb.describe_table(TableName=table)["Table"]
    arn = str(description.get("TableArn") or "") or None
    name = str(description.get("TableName") or table)
    values = settings_from_description(description)
    values.pop("_name")
    unavailable: dict[str, str] = {}
    gsis = list(values["global_secondary_indexes"])
    reads: list[tuple[str, str, Callable[[], Any]]] = [
        ("ttl", "reading TTL", lambda: _ttl(c.dynamodb, name)),
        ("point_in_time_recovery", "reading PITR", lambda: _pitr(c.dynamodb, name)),
        ("contributor_insights", "reading contributor insights",
         lambda: _contributor_insights(c.optional, name)),
        ("auto_scaling", "reading auto scaling",
         lambda: _auto_scaling(c.autoscaling, name, gsis)),
    ]  # fmt: skip
    if arn:
        reads += [
            ("tags", "listing tags", lambda: _tags(c.dynamodb, arn)),
            ("resource_policy", "reading the resource policy",
             lambda: _resource_policy(c.optional, arn)),
        ]  # fmt: skip
    else:
        unavailable["tags"] = unavailable["resource_policy"] = "DescribeTable gave no ARN"
    for setting, action, read in reads:
        _attempt(values, unavailable, setting, _translated(action, read))
    if values.get("resource_policy") is not None:
        values["resource_policy"] = _placeholders(values["resource_policy"], name, arn)
    ordered = {k: values[k] for k in SETTINGS if k in values}
    return TableSettings(
        name=name, arn=arn, source="table", values=ordered, unavailable=unavailable
    )


def _translated(action: str, read: Callable[[], Any]) -> Callable[[], Any]:
    """``read`` with botocore errors turned into pitrdiff's (named by ``action``)."""

    def body() -> Any:
        with translate_errors(action=action):
            return read()

    return body


def _manifest_ttl(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The TTL setting an export manifest recorded, in any of its spellings."""
    table = doc.get("table") or {}
    for candidate in (
        doc.get("ttl"),
        table.get("ttl") if isinstance(table, Mapping) else None,
        table.get("time_to_live") if isinstance(table, Mapping) else None,
    ):
        if isinstance(candidate, Mapping):
            status = str(
                candidate.get("status") or candidate.get("TimeToLiveStatus") or "DISABLED"
            ).upper()
            attribute = candidate.get("attribute") or candidate.get("AttributeName")
            enabled = (
                bool(candidate["enabled"])
                if "enabled" in candidate
                else status in ("ENABLED", "ENABLING")
            )
            return {"enabled": enabled, "attribute": attribute if enabled else None}
    return None


def read_manifest_settings(path: str | os.PathLike[str]) -> TableSettings:
    """The settings an export manifest recorded (TTL at least; billing mode; index names).

    Parameters
    ----------
    path
        An export directory (holding ``manifest.json``) or the manifest file.

    Raises
    ------
    ExportError
        When the path holds no readable export manifest.
    """
    root = Path(path)
    file = root / "manifest.json" if root.is_dir() else root
    try:
        doc = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ExportError(
            f"cannot read an export manifest at {file}: {exc}", path=str(file)
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != "pitrdiff-export":
        raise ExportError(f"{file} is not a pitrdiff export manifest", path=str(file))
    name = str(doc.get("table_name", ""))
    table = doc.get("table") or {}
    arn = table.get("arn")
    values: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    ttl = _manifest_ttl(doc)
    if ttl is not None:
        values["ttl"] = ttl
    if table.get("billing_mode"):
        values["billing_mode"] = table["billing_mode"]
    for setting in SETTINGS:
        if setting not in values:
            unavailable[setting] = "not recorded in the export manifest"
    return TableSettings(
        name=name,
        arn=str(arn) if arn else None,
        source="manifest",
        values=values,
        unavailable=unavailable,
    )
