"""Shared test helpers: a server handle with table set-up and read-back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pitrdiff import codec
from pitrdiff.aws import AwsConfig, dynamodb_client
from pitrdiff.progress import SilentProgress

PK_SK = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


@dataclass(frozen=True)
class Server:
    """A DynamoDB-protocol server on loopback."""

    name: str
    endpoint: str

    @property
    def aws(self) -> AwsConfig:
        return AwsConfig(endpoint_url=self.endpoint, region="us-east-1")

    def client(self) -> Any:
        return dynamodb_client(self.aws)

    def create_table(
        self,
        name: str,
        key_schema: Sequence[Mapping[str, str]] = PK_SK,
        attribute_types: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        """Create an on-demand table and wait until it is ACTIVE."""
        types = dict(attribute_types or {})
        definitions = [
            {
                "AttributeName": k["AttributeName"],
                "AttributeType": types.get(k["AttributeName"], "S"),
            }
            for k in key_schema
        ]
        for index in extra.get("GlobalSecondaryIndexes", []):
            for k in index["KeySchema"]:
                if k["AttributeName"] not in {d["AttributeName"] for d in definitions}:
                    definitions.append(
                        {
                            "AttributeName": k["AttributeName"],
                            "AttributeType": types.get(k["AttributeName"], "S"),
                        }
                    )
        client = self.client()
        client.create_table(
            TableName=name,
            KeySchema=list(key_schema),
            AttributeDefinitions=definitions,
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200}
        )

    def put_items(self, name: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Write wire-form items (binary as base64 or bytes) with BatchWriteItem."""
        client = self.client()
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            pending: dict[str, Any] = {name: batch[:]}
            while pending:
                response = client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

        for item in items:
            batch.append({"PutRequest": {"Item": codec.to_botocore(item)}})
            if len(batch) == 25:
                flush()
                batch.clear()
        if batch:
            flush()

    def scan_canonical(self, name: str) -> dict[str, str]:
        """Every item of a table as {canonical key: canonical item}, via plain boto3."""
        client = self.client()
        table = client.describe_table(TableName=name)["Table"]
        keys = [k["AttributeName"] for k in table["KeySchema"]]
        out: dict[str, str] = {}
        for page in client.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                out[codec.canonical_key(item, keys)] = codec.canonical_json(item)
        return out


class InterruptAfter(SilentProgress):
    """A Progress that raises KeyboardInterrupt (as Ctrl-C would) after ``pages`` pages."""

    def __init__(self, pages: int) -> None:
        self.pages = pages

    def advance(self, amount: float = 1, **fields: float) -> None:
        self.pages -= 1
        if self.pages <= 0:
            raise KeyboardInterrupt
