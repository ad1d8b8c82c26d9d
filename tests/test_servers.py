"""The test servers themselves answer the DynamoDB protocol on loopback."""

from __future__ import annotations

from tests.helpers import Server


def test_server_round_trips_an_item(ddb: Server, table_name: str) -> None:
    ddb.create_table(table_name)
    ddb.put_items(table_name, [{"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1.50"}}])
    assert ddb.scan_canonical(table_name) == {
        '{"pk":{"S":"a"},"sk":{"S":"1"}}': '{"n":{"N":"1.5"},"pk":{"S":"a"},"sk":{"S":"1"}}'
    }


def test_dynalite_survives_a_client_killed_mid_request(dynalite_server: Server) -> None:
    """The kill -9 tests abort requests half sent; dynalite itself would crash on that."""
    import socket
    import struct
    import time
    from urllib.parse import urlparse

    port = urlparse(dynalite_server.endpoint).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n"
            b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n\r\n{"
        )
        # linger 0: close sends a reset, as the kernel does for a killed process
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.3)  # let the server see the reset before asking it anything
    assert "TableNames" in dynalite_server.client().list_tables()
