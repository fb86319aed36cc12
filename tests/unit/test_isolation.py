"""What the local runtime gives each invocation's thread to itself (isolation.py)."""

from __future__ import annotations

import json
import logging
import threading

from trackwatch.observability import logger
from trackwatch_cli.isolation import PerThreadDict, isolate_logger_keys


def test_a_per_thread_dict_starts_each_thread_from_its_initial_contents() -> None:
    shared = PerThreadDict({"service": "trackwatch"})
    shared["function_name"] = "main"
    seen: dict[str, object] = {}

    def other() -> None:
        seen.update(shared)
        shared["function_name"] = "other"

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()

    assert seen == {"service": "trackwatch"}
    assert dict(shared) == {"service": "trackwatch", "function_name": "main"}


def test_two_invocations_at_once_each_log_their_own_function() -> None:
    isolate_logger_keys()
    formatter = logger.registered_formatter
    before = dict(logger.get_current_keys())
    both_appended = threading.Barrier(2)
    lines: dict[str, dict[str, object]] = {}

    def invocation(function_name: str) -> None:
        # What inject_lambda_context does on each invocation.
        logger.append_keys(function_name=function_name)
        both_appended.wait(5)
        record = logging.LogRecord("trackwatch", logging.INFO, __file__, 1, "batch", None, None)
        lines[function_name] = json.loads(formatter.format(record))

    threads = [
        threading.Thread(target=invocation, args=(name,))
        for name in ("PollShipmentsFunction", "PublishEventsFunction")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert lines["PollShipmentsFunction"]["function_name"] == "PollShipmentsFunction"
    assert lines["PublishEventsFunction"]["function_name"] == "PublishEventsFunction"
    # Each thread starts from the logger's own keys.
    assert lines["PollShipmentsFunction"]["service"] == "trackwatch"
    assert dict(logger.get_current_keys()) == before
