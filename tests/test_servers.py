"""The test servers themselves answer the DynamoDB protocol on loopback."""

from __future__ import annotations

from tests.helpers import Server


def test_server_round_trips_an_item(ddb: Server, table_name: str) -> None:
    ddb.create_table(table_name)
    ddb.put_items(table_name, [{"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1.50"}}])
    assert ddb.scan_canonical(table_name) == {
        '{"pk":{"S":"a"},"sk":{"S":"1"}}': '{"n":{"N":"1.5"},"pk":{"S":"a"},"sk":{"S":"1"}}'
    }
