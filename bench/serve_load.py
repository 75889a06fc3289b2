"""Throughput and latency of ``kstyle serve`` under concurrent clients, beside one-at-a-time
``kstyle.stylize`` calls in one process.

Usage:

    python bench/serve_load.py [--clients 1 4 16] [--sizes 256 512] [--requests 24]
                               [--model FILE_OR_NAME] [--json FILE]

The model (default: CycleGAN's ResNet generator, 9 blocks, 64 filters, instance norm,
seeded random weights, saved as a ``.keras`` file: the time does not depend on the
weights) is served by ``kstyle serve`` in its own process, once with batching
(``--max-batch 4``) and once without (``--max-batch 1``), a fresh server for each image
size. For each size and number of concurrent clients, the clients (threads of this
process, each with its own HTTP connection) post ``--requests`` PNG photos in all to
``:stylize`` and wait for each result. The figures: images per second over the whole
run, and the median and 95th percentile of each request's latency (upload, queue, run,
PNG encoding, download). The baseline is ``kstyle.load(model)`` and ``stylize_array``
one image after the other in
one process: what a script does without a server.

This script prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def cpu_name() -> str:
    if not os.path.exists("/proc/cpuinfo"):
        return "?"
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                 if line.startswith("model name")), "?")


def make_model(folder: Path) -> Path:
    import keras

    from kstyle.nets import resnet_generator

    keras.utils.set_random_seed(0)
    path = folder / "resnet9.keras"
    resnet_generator(base_filters=64, num_blocks=9, norm="instance").save(path)
    return path


def photos(size: int, count: int) -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(size)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def baseline(model: str, size: int, requests: int) -> dict:
    import numpy as np

    import kstyle

    stylizer = kstyle.load(model)
    images = [np.asarray(__import__("PIL.Image").Image.open(io.BytesIO(p)).convert("RGB"))
              for p in photos(size, requests)]
    stylizer.stylize_array(images[0])  # traced once, as the server warms up
    latencies = []
    start = time.perf_counter()
    for image in images:
        t = time.perf_counter()
        stylizer.stylize_array(image)
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - start
    return {"images_per_s": requests / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * percentile(latencies, 0.95)}


def load_run(url: str, name: str, size: int, clients: int, requests: int) -> dict:
    import httpx

    bodies = photos(size, requests)
    latencies, codes = [], []

    def client(indices):
        with httpx.Client(timeout=600) as session:
            for i in indices:
                t = time.perf_counter()
                r = session.post(f"{url}/v1/models/{name}:stylize",
                                 files={"image": ("p.png", bodies[i], "image/png")})
                latencies.append(time.perf_counter() - t)
                codes.append(r.status_code)

    shares = [list(range(requests))[k::clients] for k in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, shares))
    seconds = time.perf_counter() - start
    ok = codes.count(200)
    return {"images_per_s": ok / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p95_ms": 1000 * percentile(latencies, 0.95), "ok": ok,
            "refused_503": codes.count(503), "other": len(codes) - ok - codes.count(503)}


def start_server(model: str, batch: int, port: int, queue: int):
    import httpx

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kstyle.cli", "serve", f"m={model}", "--port", str(port),
         "--max-batch", str(batch), "--max-queue", str(queue)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError("kstyle serve exited while starting")
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("kstyle serve did not become ready")


def warm(url: str, sizes, clients) -> None:
    """Every batch shape traced once before timing (the first call of a shape traces)."""
    for size in sizes:
        for k in sorted({1, *[min(4, c) for c in clients]}):
            load_run(url, "m", size, k, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--requests", type=int, default=24,
                        help="requests per (size, clients) run; half of it at 512 px and up")
    parser.add_argument("--model", help="a model kstyle.load takes (default: a ResNet-9)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"kstyle serve load: {os.cpu_count()} CPUs ({cpu_name()})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or str(make_model(Path(folder)))
        queue = 2 * max(args.clients)
        for size in args.sizes:
            n = args.requests if size < 512 else max(4, args.requests // 2)
            row = {"setting": "kstyle.stylize, one at a time", "size": size, "clients": 1,
                   **baseline(model, size, n)}
            rows.append(row)
            print(f"{size:4d} px  {row['setting']:34s}: {row['images_per_s']:5.2f} images/s, "
                  f"p50 {row['p50_ms']:6.0f} ms, p95 {row['p95_ms']:6.0f} ms", flush=True)
        for batch in (4, 1):
            for size in args.sizes:
                # A server per image size: one that has seen several sizes runs them all
                # on a shape-generic graph (see the README's serving section).
                process, url = start_server(model, batch, port, queue)
                try:
                    warm(url, [size], args.clients)
                    n = args.requests if size < 512 else max(4, args.requests // 2)
                    for clients in args.clients:
                        setting = f"serve, batching {'on (4)' if batch > 1 else 'off'}"
                        row = {"setting": setting, "size": size, "clients": clients,
                               **load_run(url, "m", size, clients, n)}
                        rows.append(row)
                        print(f"{size:4d} px  {setting + f', {clients} clients':34s}: "
                              f"{row['images_per_s']:5.2f} images/s, p50 "
                              f"{row['p50_ms']:6.0f} ms, p95 {row['p95_ms']:6.0f} ms"
                              + (f" ({row['refused_503']} refused with 503)"
                                 if row["refused_503"] else ""), flush=True)
                finally:
                    process.terminate()
                    process.wait(120)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
