"""The fault proxy injects what it is asked to, counts it, and forwards the rest."""

from __future__ import annotations

import botocore.exceptions
import pytest

from pitrdiff.aws import AwsConfig, count_retries, dynamodb_client
from tests.faultproxy import FaultProxy, fast_backoff
from tests.helpers import Server


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    fast_backoff(monkeypatch)


def _client(url: str, attempts: int = 10):  # type: ignore[no-untyped-def]
    return dynamodb_client(AwsConfig(endpoint_url=url, region="us-east-1", max_attempts=attempts))


def test_forwards_untouched_without_faults(dynalite_server: Server, table_name: str) -> None:
    dynalite_server.create_table(table_name)
    with FaultProxy(dynalite_server.endpoint) as proxy:
        client = _client(proxy.url)
        client.put_item(TableName=table_name, Item={"pk": {"S": "a"}, "sk": {"S": "1"}})
        items = client.scan(TableName=table_name)["Items"]
    assert items == [{"pk": {"S": "a"}, "sk": {"S": "1"}}]
    counts = proxy.counts
    assert counts["requests"] == counts["forwarded"] == 2
    assert proxy.injected == 0


@pytest.mark.parametrize(
    ("rate", "kinds", "throttles"),
    [
        ("throttle_rate", ("throttle",), 3),
        ("throttling_rate", ("throttling",), 3),
        ("error_rate", ("http500", "http503"), 0),
        ("reset_rate", ("reset",), 0),
    ],
)
def test_injected_faults_are_retried_and_counted(
    dynalite_server: Server, rate: str, kinds: tuple[str, ...], throttles: int
) -> None:
    with FaultProxy(dynalite_server.endpoint, seed=3, max_faults=3, **{rate: 1.0}) as proxy:
        client = _client(proxy.url)
        counter = count_retries(client)
        client.list_tables()
    counts = proxy.counts
    assert sum(counts[k] for k in kinds) == proxy.injected == 3
    assert counts["forwarded"] == 1
    assert counter.retries == 3
    assert counter.throttles == throttles


def test_throttle_body_is_dynamodb_error(dynalite_server: Server) -> None:
    with FaultProxy(dynalite_server.endpoint, throttle_rate=1.0) as proxy:
        client = _client(proxy.url, attempts=1)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            client.list_tables()
    assert caught.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_dropped_response_was_applied_upstream(dynalite_server: Server, table_name: str) -> None:
    """The server applies the request; the client sees a reset and retries it."""
    dynalite_server.create_table(table_name)
    with FaultProxy(
        dynalite_server.endpoint, drop_response_rate=1.0, max_faults=1, operations={"PutItem"}
    ) as proxy:
        _client(proxy.url).put_item(TableName=table_name, Item={"pk": {"S": "a"}, "sk": {"S": "1"}})
    assert proxy.counts["drop_response"] == 1
    assert proxy.counts["forwarded"] == 2  # the dropped attempt and its retry
    assert len(dynalite_server.scan_canonical(table_name)) == 1


def test_operations_filter_and_skip_first(dynalite_server: Server) -> None:
    with FaultProxy(
        dynalite_server.endpoint, throttle_rate=1.0, operations={"Scan"}, skip_first=1
    ) as proxy:
        client = _client(proxy.url, attempts=1)
        client.list_tables()  # not eligible
        client.list_tables()
    assert proxy.injected == 0
    assert proxy.counts["requests"] == 2


def test_same_seed_same_faults(dynalite_server: Server) -> None:
    def run() -> dict[str, int]:
        with FaultProxy(dynalite_server.endpoint, seed=7, throttle_rate=0.3, error_rate=0.2) as p:
            client = _client(p.url, attempts=30)
            for _ in range(5):
                client.list_tables()
            return p.counts

    assert run() == run()


def test_rejects_bad_configuration(dynalite_server: Server) -> None:
    with pytest.raises(ValueError):
        FaultProxy(dynalite_server.endpoint, throttle_rate=2.0)
    with pytest.raises(ValueError):
        FaultProxy("ftp://example")
    proxy = FaultProxy(dynalite_server.endpoint)
    with pytest.raises(TypeError):
        proxy.configure(bogus_rate=0.1)
