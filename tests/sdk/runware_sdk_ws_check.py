"""Runware's official Python SDK (PyPI: runware-sdk) against `reelay runware-sim`
over its default transport, the WebSocket API.

The SDK is built with its defaults and only `ws_base_url` swapped. The fault
for the dropped-connection check rides in the URL's `fault` query parameter,
so even there nothing but the URL changes.

    python tests/sdk/runware_sdk_ws_check.py --url ws://127.0.0.1:PORT/v1 --key KEY

Exits non-zero on the first check that fails; prints one line per check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import uuid

import aiohttp
from runware import Runware
from runware.logger import LogEntry

MODEL = "klingai:kling-video@o3-4k"


def task(**overrides: object) -> dict[str, object]:
    t: dict[str, object] = {
        "taskType": "videoInference",
        "model": MODEL,
        "positivePrompt": "a lighthouse on a cliff at dusk, slow dolly in",
        "width": 3840,
        "height": 2160,
        "duration": 3,
        "outputFormat": "MP4",
        "includeCost": True,
        "providerSettings": {"klingai": {"sound": True}},
    }
    t.update(overrides)
    return t


def check(name: str, ok: bool, detail: object) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        sys.exit(1)


def probe(path: str) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


async def fetch_and_probe(url: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as res:
            check("videoURL answers 200", res.status == 200, res.status)
            body = await res.read()
    fd, path = tempfile.mkstemp(suffix=".mp4")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return probe(path)
    finally:
        os.unlink(path)


def check_clip(info: dict[str, object], width: int, height: int, duration: float) -> None:
    streams = info["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    check("clip is 3840x2160", (video["width"], video["height"]) == (width, height), (video["width"], video["height"]))
    got = float(info["format"]["duration"])
    check(f"clip lasts {duration:g} s", abs(got - duration) < 0.2, got)
    check("clip has sound", any(s["codec_type"] == "audio" for s in streams), [s["codec_type"] for s in streams])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the simulator's WebSocket endpoint, e.g. ws://127.0.0.1:9100/v1")
    ap.add_argument("--key", required=True)
    args = ap.parse_args()

    # Defaults everywhere (transport="websocket"), only the URL swapped.
    task_uuid = str(uuid.uuid4())
    async with Runware(api_key=args.key, ws_base_url=args.url) as rw:
        check("default transport is websocket", rw._config.transport == "websocket", rw._config.transport)
        results = await rw.run(task(taskUUID=task_uuid))
        check("one result", len(results) == 1, len(results))
        r = results[0]
        check("result for our task", r.get("taskUUID") == task_uuid, r.get("taskUUID"))
        check("status success", r.get("status") == "success", r)
        check("cost 3 s x 0.42 USD", abs(float(r.get("cost", 0)) - 1.26) < 1e-9, r.get("cost"))
        check_clip(await fetch_and_probe(r["videoURL"]), 3840, 2160, 3.0)

    # The simulator drops the socket 300 ms after the ack; the SDK reconnects,
    # resumes its session and still gets the result.
    logs: list[LogEntry] = []
    fault = urllib.parse.quote("drop_connection_ms=300")
    task_uuid = str(uuid.uuid4())
    async with Runware(
        api_key=args.key,
        ws_base_url=f"{args.url}?fault={fault}",
        debug=True,
        log_sink=logs.append,
    ) as rw:
        results = await rw.run(task(taskUUID=task_uuid))
        session = rw._ws_transport.session_id
        reconnects = [e.message for e in logs if e.category == "connection" and e.message.startswith("Reconnected")]
        auths = [e.message for e in logs if e.category == "auth"]
        check("the connection dropped and the SDK reconnected", len(reconnects) >= 1, reconnects)
        check(
            "the reconnect resumed the session",
            any(session and session in m for m in auths[1:]),
            auths,
        )
        r = results[0]
        check("result after reconnect", r.get("taskUUID") == task_uuid and r.get("status") == "success", r)
        check_clip(await fetch_and_probe(r["videoURL"]), 3840, 2160, 3.0)

    print("runware-sdk (websocket): all checks passed")


if __name__ == "__main__":
    asyncio.run(main())
