"""Peak memory added by sending a 16 MiB image, streamed vs the naive way.

Each method runs in a fresh child process; the peak resident size (VmHWM) is
reset just before the upload, so the added memory is the upload's own peak
minus the resident size it started from. It runs against a sink server in another process
that reads and drops the body, so only the sender's memory is counted:

- ``gowa multipart`` and ``wuts base64 JSON`` and ``waha base64 JSON``:
  ``wamsg.Client.send_image(to, path)`` through the real adapters and
  AiohttpTransport (design target P3: ≤ 0.10x the file size);
- ``naive base64 JSON``: read the file, base64 it, ``json.dumps``, post bytes;
- ``naive multipart``: read the file, ``aiohttp.FormData`` with the bytes.

Run: ``python benchmarks/upload_memory.py [size_mib]``; prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import asyncio, base64, json, os, re, sys, time
import aiohttp
import wamsg

method, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
to = "+5511999990000"

def peak_kib():
    # VmHWM: the peak resident size since the last reset (Linux).
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))

def reset_peak():
    # Writing 5 to clear_refs resets VmHWM to the current size (Linux >= 4.0),
    # so the peak measured next is the upload's own.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak_kib()

async def main():
    small = path + ".small"
    if method.startswith("naive"):
        async with aiohttp.ClientSession() as http:
            async def naive(p):
                data = open(p, "rb").read()
                if method == "naive base64 JSON":
                    body = json.dumps({"number": "5511999990000",
                                       "image": base64.b64encode(data).decode()}).encode()
                    async with http.post(base + "/wuts/send/image", data=body,
                                         headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                else:
                    form = aiohttp.FormData()
                    form.add_field("phone", "5511999990000@s.whatsapp.net")
                    form.add_field("image", data, filename="a.jpg", content_type="image/jpeg")
                    async with http.post(base + "/gowa/send/image", data=form) as r:
                        await r.read()
            await naive(small)
            before = reset_peak(); start = time.perf_counter()
            await naive(path)
            return before, peak_kib(), time.perf_counter() - start
    provider = method.split()[0]
    settings = {"gowa": {"base_url": base + "/gowa"},
                "wuts": {"base_url": base + "/wuts", "token": "t"},
                "waha": {"base_url": base + "/waha"}}[provider]
    async with wamsg.Client(provider, timeout=600, **settings) as client:
        await client.send_image(to, small)  # warm up: imports, pool, first-use costs
        before = reset_peak(); start = time.perf_counter()
        await client.send_image(to, path)
        return before, peak_kib(), time.perf_counter() - start

before, after, seconds = asyncio.run(main())
print(json.dumps({"before_kib": before, "after_kib": after, "seconds": seconds}))
"""

SINK = r"""
import sys
from aiohttp import web

async def sink(request):
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
    provider = request.match_info["provider"]
    if provider == "gowa":
        return web.json_response({"code": "SUCCESS", "message": "ok",
                                  "results": {"message_id": "3EB0X", "status": "ok"}})
    if provider == "wuts":
        return web.json_response({"success": True, "message_id": "3EB0X", "status": "sent",
                                  "timestamp": "2026-01-01T00:00:00Z",
                                  "chat_jid": "5511999990000@s.whatsapp.net"})
    return web.json_response({"id": {"_serialized": "true_5511999990000@c.us_X", "id": "X"},
                              "ack": 1, "timestamp": 1}, status=201)

app = web.Application(client_max_size=1 << 30)
app.router.add_route("POST", "/{provider}/{tail:.*}", sink)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""

METHODS = [
    "gowa multipart",
    "wuts base64 JSON",
    "waha base64 JSON",
    "naive multipart",
    "naive base64 JSON",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sink server did not start")


def main() -> None:
    size_mib = float(sys.argv[1]) if len(sys.argv) > 1 else 16.0
    size = int(size_mib * 1024 * 1024)
    rounds = int(os.environ.get("WAMSG_BENCH_ROUNDS", "3"))
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        wait_for(port)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "big.jpg"
            jpeg = b"\xff\xd8\xff\xe0" + os.urandom(size - 4)
            path.write_bytes(jpeg)
            Path(str(path) + ".small").write_bytes(jpeg[:4096])
            results: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
            for _ in range(rounds):  # interleaved rounds
                for method in METHODS:
                    done = subprocess.run(
                        [sys.executable, "-c", CHILD, method, str(port), str(path)],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    results[method].append(json.loads(done.stdout))
    finally:
        sink.terminate()
        sink.wait()
    print(f"{size_mib:g} MiB image, {rounds} interleaved rounds, one child process per upload\n")
    print("| method | peak RSS added (MiB, median) | ratio to file size | seconds (median) |")
    print("|---|---|---|---|")
    for method, runs in results.items():
        added = sorted((r["after_kib"] - r["before_kib"]) / 1024 for r in runs)
        secs = sorted(r["seconds"] for r in runs)
        median_added = added[len(added) // 2]
        print(
            f"| {method} | {median_added:.2f} ({added[0]:.2f}-{added[-1]:.2f}) "
            f"| {median_added / size_mib:.3f}x | {secs[len(secs) // 2]:.3f} |"
        )


if __name__ == "__main__":
    main()
