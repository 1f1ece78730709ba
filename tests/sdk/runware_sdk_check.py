"""Runware's official Python SDK (PyPI: runware-sdk) against `reelay runware-sim`.

The SDK is used unchanged, over its REST transport, with only the base URL
swapped. Faults are asked for through the simulator's test header, sent by an
aiohttp session handed to the SDK.

    python tests/sdk/runware_sdk_check.py --url http://127.0.0.1:PORT/v1 --key KEY

Exits non-zero on the first check that fails; prints one line per check.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

import aiohttp
from runware import Runware
from runware.errors import RunwareError
from runware.types.sdk import RuntimeDependencies

MODEL = "klingai:kling-video@o3-4k"
FAULT_HEADER = "X-Reelay-Sim-Fault"


def task(**overrides: object) -> dict[str, object]:
    # taskType given explicitly: the SDK then needs no model registry lookup.
    t: dict[str, object] = {
        "taskType": "videoInference",
        "model": MODEL,
        "positivePrompt": "a lighthouse on a cliff at dusk, slow dolly in",
        "width": 3840,
        "height": 2160,
        "duration": 3,
        "outputFormat": "MP4",
        "includeCost": True,
    }
    t.update(overrides)
    return t


def client(url: str, key: str, session: aiohttp.ClientSession | None = None) -> Runware:
    deps = RuntimeDependencies(session=session) if session else None
    return Runware(
        api_key=key,
        transport="rest",
        http_base_url=url,
        poll_timeout=300_000,
        dependencies=deps,
    )


async def expect_error(url: str, key: str, params: dict[str, object], fault: str | None = None) -> RunwareError:
    headers = {FAULT_HEADER: fault} if fault else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with client(url, key, session) as rw:
            try:
                results = await rw.run(params)
            except RunwareError as e:
                return e
    raise AssertionError(f"expected an error, got {results!r}")


def check(name: str, ok: bool, detail: object) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        sys.exit(1)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the simulator's REST endpoint, e.g. http://127.0.0.1:9100/v1")
    ap.add_argument("--key", required=True)
    args = ap.parse_args()

    # A whole task: two 503s first (the SDK retries them), then the ack,
    # getResponse polls, and the result with its cost and a playable URL.
    task_uuid = str(uuid.uuid4())
    async with aiohttp.ClientSession(headers={FAULT_HEADER: "burst_status=503, burst_count=2"}) as session:
        async with client(args.url, args.key, session) as rw:
            results = await rw.run(task(taskUUID=task_uuid))
            check("one result", len(results) == 1, len(results))
            r = results[0]
            check("result for our task", r.get("taskUUID") == task_uuid, r.get("taskUUID"))
            check("status success", r.get("status") == "success", r)
            check("cost 3 s x 0.42 USD", abs(float(r.get("cost", 0)) - 1.26) < 1e-9, r.get("cost"))
            async with session.get(r["videoURL"]) as res:
                body = await res.read()
            check("videoURL serves an MP4", res.status == 200 and body[4:8] == b"ftyp", (res.status, len(body)))

    e = await expect_error(args.url, args.key, task(duration=2))
    check("validation error", e.code == "validation" and e.parameter == "duration" and e.status_code == 400, repr(e))

    e = await expect_error(args.url, "not-the-key", task())
    check("wrong key", e.code == "auth" and e.status_code == 401, repr(e))

    e = await expect_error(args.url, args.key, task(), "insufficient_credits=true")
    check("insufficient credits", e.code == "quota" and e.status_code == 402, repr(e))

    # The SDK files `timeoutProvider` under "unknown" (its matcher wants "Timeout"):
    # the message shows it came through as this task's failure.
    e = await expect_error(args.url, args.key, task(), "fail_code=timeoutProvider")
    check(
        "task failure in errors[]",
        e.task_type == "videoInference" and "did not respond within the timeout window" in e.message,
        repr(e),
    )

    e = await expect_error(args.url, args.key, task(), "fail_code=contentPolicyViolation, error_shape=data")
    check("task failure as a data item", e.code == "safety", repr(e))

    print("runware-sdk: all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
