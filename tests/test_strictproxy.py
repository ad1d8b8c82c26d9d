"""The strict layer refuses what AWS refuses, with AWS's error shape, on both servers.

Each case sends one request that AWS refuses (and moto or dynalite would
accept) and one at the limit that AWS accepts; the refusal must be HTTP 400
``ValidationException`` with AWS's message, and the server must not have seen it.
Also shown here: dynalite evaluates ``=`` on a whole map or list as false
(AWS and moto compare whole documents), which pitrdiff's apply recognises.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from pitrdiff.aws import dynamodb_client
from tests.helpers import Server
from tests.strictproxy import StrictProxy, count_operators

HASH = [{"AttributeName": "pk", "KeyType": "HASH"}]


@pytest.fixture
def strict(ddb: Server, table_name: str) -> Iterator[tuple[Any, StrictProxy, Server]]:
    ddb.create_table(
        table_name,
        HASH,
        {"pk": "S", "email": "S"},
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-email",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    with StrictProxy(ddb.endpoint) as proxy:
        yield dynamodb_client(ddb.aws.with_endpoint(proxy.url)), proxy, ddb


def refused(call: Any, **request: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**request)
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationException"
    return str(error["Message"])


def nested(levels: int, container: str) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(levels):
        value = {"M": {"n": value}} if container == "M" else {"L": [value]}
    return value


def test_expression_size_limit(strict: tuple[Any, StrictProxy, Server], table_name: str) -> None:
    client, proxy, _ = strict
    names = {"#" + "a" * 4080 + "x": "v"}  # "#aaa…x = :v" is 4,087 bytes
    base = {
        "TableName": table_name,
        "Key": {"pk": {"S": "k"}},
        "ExpressionAttributeValues": {":v": {"N": "1"}},
    }
    update = f"SET {next(iter(names))} = :v"  # 4,091 bytes
    client.update_item(**base, UpdateExpression=update + "   ", ExpressionAttributeNames=names)
    message = refused(
        client.update_item,
        **base,
        UpdateExpression=update + "      ",
        ExpressionAttributeNames=names,
    )
    assert message == (
        "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size; "
        "expression size: 4097"
    )
    assert proxy.counts["refused"] == 1


def test_operator_limit(strict: tuple[Any, StrictProxy, Server], table_name: str) -> None:
    client, _, _ = strict
    client.put_item(TableName=table_name, Item={"pk": {"S": "k"}, "a": {"N": "1"}})

    def condition(comparisons: int) -> dict[str, Any]:
        return {
            "TableName": table_name,
            "Key": {"pk": {"S": "k"}},
            "ConditionExpression": " AND ".join(["#a = :v"] * comparisons),
            "ExpressionAttributeNames": {"#a": "a"},
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        }

    assert count_operators(condition(150)["ConditionExpression"]) == 299
    client.delete_item(**condition(150))  # 150 '=' and 149 AND: accepted
    message = refused(client.delete_item, **condition(151))
    assert message == (
        "Invalid ConditionExpression: The expression contains too many operators; "
        "operator count: 301"
    )


def test_unused_placeholders(strict: tuple[Any, StrictProxy, Server], table_name: str) -> None:
    client, _, _ = strict
    message = refused(
        client.put_item,
        TableName=table_name,
        Item={"pk": {"S": "k"}},
        ConditionExpression="attribute_not_exists(#a)",
        ExpressionAttributeNames={"#a": "pk", "#b": "x"},
    )
    assert message == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"


@pytest.mark.parametrize("container", ["M", "L"])
def test_nesting_limit(
    strict: tuple[Any, StrictProxy, Server], table_name: str, container: str
) -> None:
    client, _, server = strict
    client.put_item(TableName=table_name, Item={"pk": {"S": "ok"}, "d": nested(31, container)})
    message = refused(
        client.put_item, TableName=table_name, Item={"pk": {"S": "no"}, "d": nested(32, container)}
    )
    assert message.startswith("Nesting Levels have exceeded supported limits")
    message = refused(
        client.update_item,
        TableName=table_name,
        Key={"pk": {"S": "ok"}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "d"},
        ExpressionAttributeValues={":d": nested(32, container)},
    )
    assert message.startswith("Nesting Levels have exceeded supported limits")
    keys = {i["pk"]["S"] for i in dynamodb_client(server.aws).scan(TableName=table_name)["Items"]}
    assert keys == {"ok"}


def test_item_size_limit(strict: tuple[Any, StrictProxy, Server], table_name: str) -> None:
    client, _, server = strict
    # size = name bytes + value bytes: pk (2 + 1) + "v" (1 + n); AWS takes 409,600 bytes,
    # moto refuses over 405,000 itself (stricter than AWS), dynalite takes AWS's limit
    limit = 405_000 - 100 if server.name == "moto" else 400 * 1024
    client.put_item(TableName=table_name, Item={"pk": {"S": "k"}, "v": {"S": "x" * (limit - 4)}})
    over = 400 * 1024 - 4 + 1
    message = refused(
        client.put_item, TableName=table_name, Item={"pk": {"S": "o"}, "v": {"S": "x" * over}}
    )
    assert message == "Item size has exceeded the maximum allowed size"
    message = refused(
        client.update_item,
        TableName=table_name,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET #w = :w",
        ExpressionAttributeNames={"#w": "w"},
        ExpressionAttributeValues={":w": {"S": "y" * 5000}},
    )
    assert message == "Item size to update has exceeded the maximum allowed size"
    client.update_item(  # removing an attribute shrinks it: accepted
        TableName=table_name,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET #w = :w REMOVE #v",
        ExpressionAttributeNames={"#w": "w", "#v": "v"},
        ExpressionAttributeValues={":w": {"S": "y"}},
    )
    keys = {i["pk"]["S"] for i in dynamodb_client(server.aws).scan(TableName=table_name)["Items"]}
    assert keys == {"k"}


def test_index_key_values(strict: tuple[Any, StrictProxy, Server], table_name: str) -> None:
    client, _, _ = strict
    message = refused(
        client.put_item, TableName=table_name, Item={"pk": {"S": "k"}, "email": {"S": ""}}
    )
    assert message == (
        "One or more parameter values are not valid. A value specified for a secondary index "
        "key is not supported. The AttributeValue for a key attribute cannot contain an empty "
        "string value. IndexName: by-email, IndexKey: email"
    )
    message = refused(
        client.put_item, TableName=table_name, Item={"pk": {"S": "k"}, "email": {"N": "1"}}
    )
    assert message == (
        "One or more parameter values were invalid: Type mismatch for Index Key email "
        "Expected: S Actual: N IndexName: by-email"
    )
    message = refused(
        client.update_item,
        TableName=table_name,
        Key={"pk": {"S": "k"}},
        UpdateExpression="SET #e = :e",
        ExpressionAttributeNames={"#e": "email"},
        ExpressionAttributeValues={":e": {"S": ""}},
    )
    assert message.startswith(
        "One or more parameter values are not valid. The update expression attempted to "
        "update a secondary index key to a value that is not supported."
    )
    client.put_item(TableName=table_name, Item={"pk": {"S": "k"}, "email": {"S": "a@b"}})


def test_key_sizes(strict: tuple[Any, StrictProxy, Server], table_name: str) -> None:
    client, _, _ = strict
    client.put_item(TableName=table_name, Item={"pk": {"S": "é" * 1024}})  # 2,048 bytes
    message = refused(client.put_item, TableName=table_name, Item={"pk": {"S": "é" * 1024 + "x"}})
    assert message == (
        "One or more parameter values were invalid: "
        "Size of hashkey has exceeded the maximum size limit of2048 bytes"
    )


def test_the_server_answers_when_the_layer_cannot_read_the_item(
    strict: tuple[Any, StrictProxy, Server], table_name: str
) -> None:
    """The layer reads the item to judge an update's size; when the server refuses
    that read (here the table is gone behind the layer's cached description;
    dynalite also refuses some long keys), the update goes through and the
    server's own error comes back (was: the connection closed)."""
    client, proxy, ddb = strict
    client.put_item(TableName=table_name, Item={"pk": {"S": "k"}})  # the layer describes it
    dynamodb_client(ddb.aws).delete_table(TableName=table_name)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.update_item(
            TableName=table_name,
            Key={"pk": {"S": "k"}},
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
        )
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert proxy.refusals == []


def test_dynalite_compares_documents_with_equals_as_false(ddb: Server, table_name: str) -> None:
    """AWS and moto compare whole maps and lists with '='; dynalite answers false."""
    ddb.create_table(table_name, HASH, {"pk": "S"})
    client = dynamodb_client(ddb.aws)
    document = {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}}
    client.put_item(TableName=table_name, Item={"pk": {"S": "k"}, "d": document})
    request = {
        "TableName": table_name,
        "Key": {"pk": {"S": "k"}},
        "ConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "d"},
        "ExpressionAttributeValues": {":d": document},
    }
    if ddb.name == "dynalite":
        with pytest.raises(client.exceptions.ConditionalCheckFailedException):
            client.delete_item(**request)
    else:
        client.delete_item(**request)
        assert "Item" not in client.get_item(TableName=table_name, Key={"pk": {"S": "k"}})
