"""What the Clickpost client's unit and integration tests share: credentials, time, leak checks."""

from __future__ import annotations

import asyncio
import time

import pytest

KEY = "cp-key-5ecret-0042-ffee"
USERNAME = "acme-enterprise-user"
WRONG_KEY = "wrong-key-77aa-0000"
SECRETS = (KEY, USERNAME, WRONG_KEY)


class VirtualTime:
    """A monotonic clock that jumps forward by every sleep, which returns at once."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def clock(self) -> float:
        return time.monotonic() + sum(self.slept)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


def assert_no_secret_leaked(caplog: pytest.LogCaptureFixture, errors: list[BaseException]) -> None:
    """Neither a log record nor an error a test saw may hold a credential."""
    texts = [caplog.text]
    texts += [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    texts += [f"{e!s} {e!r}" for e in errors]
    for secret in SECRETS:
        assert not [t for t in texts if secret in t], "a credential leaked into an error or log"
