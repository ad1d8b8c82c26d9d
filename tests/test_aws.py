"""pitrdiff.aws: sessions share botocore's data loader, never credentials."""

from __future__ import annotations

import pytest

from pitrdiff import aws
from pitrdiff.aws import AwsConfig, session
from pitrdiff.errors import CredentialsError


def test_sessions_share_the_data_loader_and_its_search_paths_do_not_grow() -> None:
    first = session(AwsConfig(region="us-east-1"))
    paths = list(aws._loader.search_paths)
    for _ in range(5):
        other = session(AwsConfig(region="eu-west-1"))
    assert other._session.get_component("data_loader") is aws._loader
    assert first._session.get_component("data_loader") is aws._loader
    assert aws._loader.search_paths == paths
    assert other is not first and other._session is not first._session


def test_credentials_are_read_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first-secret")
    first = session(AwsConfig(region="us-east-1")).get_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECOND")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "second-secret")
    second = session(AwsConfig(region="us-east-1")).get_credentials()
    assert first is not None and second is not None
    assert (first.access_key, second.access_key) == ("AKIAFIRST", "AKIASECOND")


def test_a_missing_profile_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session(AwsConfig(region="us-east-1"))  # the loader is shared from here on
    with pytest.raises(CredentialsError, match=r"^AWS profile 'nosuch-a' is not configured$"):
        session(AwsConfig(profile="nosuch-a"))
    monkeypatch.setenv("AWS_PROFILE", "nosuch-b")
    with pytest.raises(CredentialsError, match=r"^AWS profile 'nosuch-b' is not configured$"):
        session(AwsConfig(region="us-east-1"))
