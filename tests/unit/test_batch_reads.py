"""BatchGetItem to the end, over a scripted client: unprocessed keys asked again, errors named."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from trackwatch.adapters.batch_reads import BATCH_GET_ATTEMPTS, batch_get
from trackwatch.errors import StorageError


class Scripted:
    """Answers each BatchGetItem with the next answer of its script, and keeps the requests."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(RequestItems)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def named(action: str, exc: Exception) -> StorageError:
    return StorageError(f"{action} on the test table failed: {type(exc).__name__}")


def test_unprocessed_keys_are_asked_for_again_and_every_item_is_returned() -> None:
    later = {"t": {"Keys": [key("b")], "ConsistentRead": True}}
    client = Scripted(
        {"Responses": {"t": [key("a")], "u": []}, "UnprocessedKeys": later},
        {"Responses": {"t": [key("b")]}, "UnprocessedKeys": {}},
    )
    request = {
        "t": {"Keys": [key("a"), key("b")], "ConsistentRead": True},
        "u": {"Keys": [key("c")]},
    }

    found = batch_get(client, request, named)  # type: ignore[arg-type]

    assert found == {"t": [key("a"), key("b")], "u": []}
    assert client.requests == [request, later]


def test_keys_left_unprocessed_for_ever_are_an_error_not_a_silent_miss() -> None:
    stuck = {"t": {"Keys": [key("a")]}}
    client = Scripted({"Responses": {}, "UnprocessedKeys": stuck})

    with pytest.raises(StorageError, match=f"unprocessed after {BATCH_GET_ATTEMPTS} attempts"):
        batch_get(client, stuck, named)  # type: ignore[arg-type]
    assert len(client.requests) == BATCH_GET_ATTEMPTS


def test_a_failed_request_is_named_by_the_caller() -> None:
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "BatchGetItem"
    )
    client = Scripted(throttled)

    with pytest.raises(StorageError, match="BatchGetItem on the test table failed: ClientError"):
        batch_get(client, {"t": {"Keys": [key("a")]}}, named)  # type: ignore[arg-type]
