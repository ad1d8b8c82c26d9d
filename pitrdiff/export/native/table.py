"""What the manifests of a native export do not say: the table's key and TTL setting.

DynamoDB's export manifests name the table (its ARN) but not its key schema
nor its time-to-live setting. Both come from the table (``DescribeTable``,
``DescribeTimeToLive``) when it can be reached, or from the user (``--key``,
``--ttl-attribute``); key attribute types left out are learned from the data.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from pitrdiff import aws as aws_module
from pitrdiff.aws import AwsConfig, translate_errors
from pitrdiff.errors import AwsError, InputError, PitrdiffError
from pitrdiff.export.dataset import KeySchema
from pitrdiff.export.native.location import Reader
from pitrdiff.export.native.manifest import ExportSummary
from pitrdiff.export.native.stream import gzip_lines

log = logging.getLogger(__name__)

TTL_FROM_TABLE = "DescribeTimeToLive"
TTL_FROM_USER = "--ttl-attribute"


def key_schema_from_spec(spec: str) -> KeySchema:
    """Parse ``pk[:TYPE][,sk[:TYPE]]`` (TYPE ``S``, ``N`` or ``B``) into a key schema.

    The first name is the partition key, the second (if any) the sort key; a
    type left out is learned from the data.

    Raises
    ------
    InputError
        When the text is not of that form.
    """
    names = [p.strip() for p in spec.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise InputError(f"--key {spec!r}: expected PK[:TYPE][,SK[:TYPE]], e.g. pk:S,sk:N")
    attributes = []
    for kind, part in zip(("HASH", "RANGE"), names, strict=False):
        name, _, type_ = part.rpartition(":") if ":" in part else (part, "", "")
        type_ = type_.upper()
        if type_ and type_ not in ("S", "N", "B"):
            raise InputError(f"--key {spec!r}: key type {type_!r} is not S, N or B")
        attributes.append({"AttributeName": name, "KeyType": kind, "AttributeType": type_ or None})
    return KeySchema.from_list(attributes)


def ttl_setting(attribute: str | None, status: str, source: str) -> dict[str, Any]:
    """The TTL setting as an export manifest records it.

    Parameters
    ----------
    attribute
        The TTL attribute's name (``None`` when TTL was never enabled).
    status
        ``ENABLED``, ``ENABLING``, ``DISABLING`` or ``DISABLED``
        (``TimeToLiveStatus`` of ``DescribeTimeToLive``).
    source
        Where it came from: ``DescribeTimeToLive`` or ``--ttl-attribute``.
    """
    return {"attribute": attribute, "status": status, "source": source}


def describe_ttl(client: Any, table: str) -> dict[str, Any]:
    """The table's TTL setting (``DescribeTimeToLive``), as :func:`ttl_setting` records it.

    Raises
    ------
    AwsError, TableNotFoundError
        When the service cannot answer.
    """
    with translate_errors(table=table, action="describing its time to live"):
        answer = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    return ttl_setting(
        answer.get("AttributeName"), str(answer.get("TimeToLiveStatus", "DISABLED")), TTL_FROM_TABLE
    )


def describe_table(table: str, aws: AwsConfig) -> tuple[str, KeySchema, dict[str, Any]]:
    """Name, key schema and facts (ARN, indexes, estimates, TTL) of ``table``.

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    AwsError
        When the service cannot answer.
    """
    client = aws_module.dynamodb_client(aws)
    with translate_errors(table=table, action="describing the table"):
        description = client.describe_table(TableName=table)["Table"]
    boto_description: Any = description  # TypedDicts are Mappings of str at run time
    schema = KeySchema.from_boto(
        boto_description["KeySchema"], boto_description.get("AttributeDefinitions")
    )
    name = str(description["TableName"])
    facts: dict[str, Any] = {
        "arn": description.get("TableArn"),
        "indexes": [
            {"name": i["IndexName"], "kind": kind, "key_schema": i["KeySchema"]}
            for kind, group in (
                ("global", description.get("GlobalSecondaryIndexes") or []),
                ("local", description.get("LocalSecondaryIndexes") or []),
            )
            for i in group
        ],
        "item_count_estimate": description.get("ItemCount", 0),
        "size_bytes_estimate": description.get("TableSizeBytes", 0),
    }
    try:
        facts["ttl"] = describe_ttl(client, name)
    except AwsError as exc:  # e.g. no dynamodb:DescribeTimeToLive permission
        log.warning("%s: TTL setting unknown (%s); pass --ttl-attribute NAME", name, exc)
        facts["ttl"] = None
    return name, schema, facts


def resolve_key_schema(
    summary: ExportSummary,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None,
    aws: AwsConfig | None,
) -> tuple[KeySchema, dict[str, Any]]:
    """The key schema: given, else from ``DescribeTable`` of the export's table.

    Returns
    -------
    tuple
        The key schema and the table's facts (``{"arn": ...}`` only, when the
        key was given and the table not asked).

    Raises
    ------
    InputError
        When no key is given and the table cannot be described.
    """
    table_facts: dict[str, Any] = {"arn": summary.table_arn}
    if isinstance(key_schema, KeySchema):
        return key_schema, table_facts
    if isinstance(key_schema, str):
        return key_schema_from_spec(key_schema), table_facts
    if key_schema is not None:
        return KeySchema.from_list(list(key_schema)), table_facts
    target = summary.table_name
    if not target:
        raise InputError(
            f"{summary.location.url}: the manifests do not name the table; pass --key PK[,SK]"
        )
    try:
        _, schema, facts = describe_table(target, _table_aws(summary, aws))
    except PitrdiffError as exc:
        raise InputError(
            f"cannot learn the key schema of {summary.table_name or target!r} ({exc}); "
            "pass --key PK[:TYPE][,SK[:TYPE]]"
        ) from exc
    return schema, {**facts, "arn": facts.get("arn") or summary.table_arn}


def _table_aws(summary: ExportSummary, aws: AwsConfig | None) -> AwsConfig:
    config = aws or AwsConfig()
    arn_parts = (summary.table_arn or "").split(":")
    if config.region is None and len(arn_parts) > 3 and arn_parts[3]:
        config = replace(config, region=arn_parts[3])  # the table's own region
    # Few attempts: a table we cannot reach should not hold up a local ingest.
    return replace(config, max_attempts=2)


def resolve_ttl(facts: Mapping[str, Any], ttl_attribute: str | None) -> dict[str, Any] | None:
    """The TTL setting to record: ``--ttl-attribute``, else the table's, else unknown.

    The table's setting is known when it was described (no ``--key`` given,
    or a native export started by pitrdiff). With ``--key`` the table is not
    asked (it may be unreachable from where an export copy is read): the
    setting is then unknown (``None``) unless ``--ttl-attribute`` says it.
    """
    if ttl_attribute:
        return ttl_setting(ttl_attribute, "ENABLED", TTL_FROM_USER)
    known = facts.get("ttl")
    return dict(known) if isinstance(known, Mapping) else None


def peek_key_types(reader: Reader, summary: ExportSummary, schema: KeySchema) -> KeySchema:
    """Fill unknown key attribute types from the first record of the export."""
    if schema.declared_types is not None:
        return schema
    for data_file in summary.files:
        if data_file.item_count == 0:
            continue
        digest = hashlib.md5(usedforsecurity=False)
        try:
            ref = reader.data_file(data_file.key)
            line = next(gzip_lines(reader.chunks(ref), digest), None)
            document = orjson.loads(line) if line else None
        except (zlib.error, orjson.JSONDecodeError, PitrdiffError):
            continue  # the full pass reports it properly
        if not isinstance(document, dict):
            continue
        image = document.get("Item") or document.get("Keys") or document.get("NewImage")
        if not isinstance(image, dict):
            continue
        attributes = []
        for a in schema.attributes:
            typed = image.get(a.name)
            tag = next(iter(typed)) if isinstance(typed, dict) and len(typed) == 1 else None
            attributes.append(replace(a, attribute_type=a.attribute_type or tag))
        return KeySchema(tuple(attributes))
    return schema
