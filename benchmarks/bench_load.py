"""Load test of the AMFL app on loopback: small requests while large images are segmented.

Starts ``python app.py`` on 127.0.0.1 (a free port) in a subprocess with the given model,
then ``--large_users`` users each send ``--large_requests_per_user`` large images
(``--large_side`` pixels a side) and, once those are under way, ``--users`` users each send
``--requests_per_user`` small images (``--small_side``), every user its own HTTP connection
and its own image (``benchmarks/bench_memory.py``'s crossing bands, uint16 PNG). A user
makes the plain HTTP API's calls (upload, call, event stream: the API section of
``space/README.md``) and downloads the one file it checks, the label map. Not
``gradio_client``: it downloads every picture of a result as well, and its own work, 0.6
CPU-s a request here, took more of the two shared cores than the server's. Printed:

- every small request's latency (median, max, how many over the 2 s goal, how many ran while
  a large one was in flight), and the large ones' latencies (or that they were refused);
- whether every downloaded label map equals the in-process ``Segmenter`` result for the same
  image (what ``amfl.predict`` writes), computed before the server starts;
- the CPU seconds of the server and of the clients during the load, and requests a second;
- the server's resident memory (``VmRSS``) before the load (after one warm-up request), at
  its peak (sampled every 0.1 s, and ``VmHWM``) and a few seconds after the load.

    python benchmarks/bench_load.py --users 16 --large_users 2 --large_side 4096 --small_side 128 --requests_per_user 5
    python benchmarks/bench_load.py --users 4 --large_users 1 --large_side 2048 --requests_per_user 2

The goals (the project's reliability issue): every small request under 2 s, every result
identical, the server's memory back within 10 % of its start after the load. Exits 1 when
a request failed or a result differed, 0 otherwise (the latency and memory goals are
reported, not enforced: they depend on the machine and what else runs on it).
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
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from amfl.models.precision import PRECISIONS
from bench_memory import synthetic_image

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPOSITORY / "space" / "model"
SMALL_GOAL_S = 2.0
MEMORY_GOAL = 0.10
START_TIMEOUT_S = 180


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=16, help="users sending small images")
    parser.add_argument("--large_users", type=int, default=2, help="users sending large images")
    parser.add_argument("--small_side", type=int, default=128)
    parser.add_argument("--large_side", type=int, default=4096)
    parser.add_argument("--requests_per_user", type=int, default=3, help="requests of each small user")
    parser.add_argument("--large_requests_per_user", type=int, default=1, help="requests of each large user")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder or Hub id")
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[0],
                        help="number format of the network, in the app (AMFL_PRECISION) and in the reference")
    parser.add_argument("--settle_s", type=float, default=5.0, help="wait after the load before the last RSS")
    parser.add_argument("--timeout_s", type=float, default=900.0, help="longest wait for one request")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory field of /proc/PID/status, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise KeyError(field)


class Sampler(threading.Thread):
    """The server's VmRSS every 0.1 s until stopped; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (KeyError, FileNotFoundError):
                return  # the server has exited: main reports it with its log


class Cpu:
    """CPU seconds of the server process and of this one (the clients) from creation to
    :meth:`stop`, and the wall time between."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = (cpu_seconds(pid), time.process_time(), time.monotonic())

    def stop(self) -> None:
        server, clients, wall = self._start
        self.server = cpu_seconds(self.pid) - server
        self.clients = time.process_time() - clients
        self.wall = time.monotonic() - wall


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(model: str, precision: str, port: int, log: Path) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(AMFL_MODEL=model, AMFL_PRECISION=precision, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
                       GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPOSITORY, env=environment,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited at start: {log.read_text()[-2000:]}")
        with socket.socket() as connection:
            if connection.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the app did not listen on port {port} within {START_TIMEOUT_S} s")


def labels_of(content: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(content)) as image:
        return np.asarray(image)  # palette PNG: the indices are the classes 0-3


def segment_over_http(client: httpx.Client, url: str, image: Path) -> tuple[str, bytes | None]:
    """One call of the app's /segment API as curl would make it: (the status text or the
    error event's message, the downloaded ``*_labels.png`` or None)."""
    api = f"{url}/gradio_api"
    with image.open("rb") as handle:
        [uploaded] = client.post(f"{api}/upload", files=[("files", (image.name, handle))]).raise_for_status().json()
    data = [[{"path": uploaded, "meta": {"_type": "gradio.FileData"}}], None, 0.5]
    event = client.post(f"{api}/call/segment", json={"data": data}).raise_for_status().json()["event_id"]
    stream = client.get(f"{api}/call/segment/{event}").raise_for_status().text
    kind, _, payload = stream.strip().rpartition("\ndata: ")
    if not kind.endswith("event: complete"):
        return f"error event: {payload[:200]}", None
    outputs = json.loads(payload)
    status = next(value for value in outputs if isinstance(value, str) and value.startswith(("Segmented", "No image")))
    downloads = next(value for value in outputs if isinstance(value, list) and value and "path" in value[0])
    labels = next(item["url"] for item in downloads if item["path"].endswith("_labels.png"))
    return status, client.get(labels).raise_for_status().content


class User(threading.Thread):
    """Sends its image ``count`` times, one request after the other, and records each."""

    def __init__(self, url: str, image: Path, expected: np.ndarray, count: int, kind: str, timeout: float) -> None:
        super().__init__(daemon=True)
        self.url, self.image, self.expected, self.count = url, image, expected, count
        self.kind, self.timeout = kind, timeout
        self.records: list[dict] = []

    def run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            for _ in range(self.count):
                started = time.monotonic()
                record = {"kind": self.kind, "start": started}
                try:
                    status, labels = segment_over_http(client, self.url, self.image)
                    record["identical"] = labels is not None and np.array_equal(labels_of(labels), self.expected)
                    record["status"] = status.splitlines()[0]
                except Exception as error:  # a refused or failed request is a result too
                    record["identical"], record["status"] = False, f"{type(error).__name__}: {error}"[:200]
                record["end"] = time.monotonic()
                self.records.append(record)


def main() -> int:
    args = parse_args()
    from amfl.segmentation import Segmenter, limit_threads

    limit_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        reference = Segmenter.from_pretrained(args.model, args.precision)
        jobs = [("small", index, args.small_side, args.requests_per_user) for index in range(args.users)]
        jobs += [("large", index, args.large_side, args.large_requests_per_user) for index in range(args.large_users)]
        images, expected = {}, {}
        print(f"preparing {len(jobs)} images and their in-process labels ...", flush=True)
        for kind, index, side, _ in jobs:
            grey = synthetic_image(side, seed=index + (1000 if kind == "large" else 0))
            images[kind, index] = scratch / f"{kind}_{index}.png"
            Image.fromarray(grey).save(images[kind, index])
            expected[kind, index] = reference.segment(images[kind, index]).labels
        del reference

        port = free_port()
        process = start_server(args.model, args.precision, port, scratch / "server.log")
        url = f"http://127.0.0.1:{port}"
        try:
            warm_up = User(url, images["small", 0], expected["small", 0], 1, "warm-up", args.timeout_s)
            warm_up.run()
            before = rss_mb(process.pid)
            sampler = Sampler(process.pid)
            sampler.start()
            cpu = Cpu(process.pid)
            users = {(kind, index): User(url, images[kind, index], expected[kind, index], count, kind, args.timeout_s)
                     for kind, index, _, count in jobs}
            large = [user for (kind, _), user in users.items() if kind == "large"]
            small = [user for (kind, _), user in users.items() if kind == "small"]
            for user in large:
                user.start()
            time.sleep(2.0 if large else 0)  # the large uploads reach the server first
            for user in small:
                user.start()
            for user in small + large:
                user.join()
            if process.poll() is not None:
                raise SystemExit(f"the app exited during the load with code {process.returncode}; the end of its "
                                 f"log:\n{(scratch / 'server.log').read_text()[-3000:]}")
            cpu.stop()
            time.sleep(args.settle_s)
            sampler.stop.set()
            sampler.join()
            after, high_water = rss_mb(process.pid), rss_mb(process.pid, "VmHWM")
            peak = max(sampler.peak, after)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return report(args, warm_up.records + [r for user in small + large for r in user.records],
                  before, peak, high_water, after, cpu)


def report(args, records: list[dict], before: float, peak: float, high_water: float, after: float,
           cpu: Cpu) -> int:
    small = [r for r in records if r["kind"] == "small"]
    large = [r for r in records if r["kind"] == "large"]
    windows = [(r["start"], r["end"]) for r in large]
    during = [r for r in small if any(start < r["end"] and r["start"] < end for start, end in windows)]
    latency = [r["end"] - r["start"] for r in small]
    print(f"\nload: {args.users} users x {args.requests_per_user} small ({args.small_side} px) requests, "
          f"{args.large_users} users x {args.large_requests_per_user} large ({args.large_side} px), model {args.model} ({args.precision})")
    if latency:
        over = sum(seconds >= SMALL_GOAL_S for seconds in latency)
        print(f"small: {len(small)} requests, latency median {statistics.median(latency):.2f} s, max "
              f"{max(latency):.2f} s, {over} at or over {SMALL_GOAL_S:.0f} s; {len(during)} ran while a large one did")
        print("  every small latency (s): " + " ".join(f"{seconds:.2f}" for seconds in sorted(latency)))
    for r in large:
        print(f"large: {r['end'] - r['start']:.1f} s  {r['status']}")
    failed = [r for r in records if not r["identical"]]
    print(f"results identical to the in-process labels: {len(records) - len(failed)} of {len(records)}")
    for r in failed[:10]:
        print(f"  differs or failed ({r['kind']}): {r['status']}")
    requests = len(small) + len(large)
    print(f"CPU during the load ({cpu.wall:.1f} s, {requests / cpu.wall:.1f} requests/s): server {cpu.server:.1f} s "
          f"({cpu.server / requests:.3f} s a request), clients {cpu.clients:.1f} s ({cpu.clients / requests:.3f} s a request)")
    change = (after - before) / before
    print(f"server RSS: before {before:.0f} MB, peak {peak:.0f} MB (VmHWM {high_water:.0f} MB), after "
          f"{after:.0f} MB ({100 * change:+.1f} %, goal within {100 * MEMORY_GOAL:.0f} %)")
    print(f"goals: small < {SMALL_GOAL_S:.0f} s: {'met' if latency and max(latency) < SMALL_GOAL_S else 'NOT met'}; "
          f"identical: {'met' if not failed else 'NOT met'}; memory back: "
          f"{'met' if abs(change) <= MEMORY_GOAL else 'NOT met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
