"""What the benchmarks share: a server subprocess on a free port, percentiles, CPU accounting.

The server is `uvicorn siyu.app:create_app` (uvloop/httptools) in a subprocess, so the load
generator does not share its GIL. CPU time is read from /proc (Linux) for the server's whole
process tree, and from `time.process_time()` for the load generator itself, so a report can say
whether the client, the server or the database was the busy one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Server:
    base: str
    proc: subprocess.Popen

    def pids(self) -> list[int]:
        """The uvicorn process and its children (the workers when --workers > 1)."""
        return process_tree(self.proc.pid)

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the children when there are any, else the process."""
        children = [p for p in self.pids() if p != self.proc.pid]
        return children or [self.proc.pid]


@contextlib.contextmanager
def server(database_url: str, *, workers: int = 1, timeout: float = 60.0,
           env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """A `uvicorn siyu.app:create_app` subprocess on a free port, with the demo logins enabled."""
    port = free_port()
    full_env = {**os.environ, "SIYU_DATABASE_URL": database_url, "SIYU_DEV_LOGIN": "1", **(env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "siyu.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=full_env, stdin=subprocess.DEVNULL)
    handle = Server(base=f"http://127.0.0.1:{port}", proc=proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode}")
            try:
                if httpx.get(f"{handle.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /healthz in time")
            time.sleep(0.1)
        if workers > 1:
            # Each worker answers /healthz on its own; wait until all of them are up.
            deadline = time.monotonic() + timeout
            while len(handle.worker_pids()) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
        yield handle
    finally:
        stop(proc)


@contextlib.contextmanager
def event_worker(database_url: str, *, threads: int = 2, nice: int = 0, log_path: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """`siyu worker` (the huey consumer: events under SIYU_EVENTS_MODE=huey, and the tick) in a
    subprocess, `nice` steps below the servers when asked (handlers wait while requests need the CPU)."""
    full_env = {**os.environ, "SIYU_DATABASE_URL": database_url, **(env or {})}
    cmd = [sys.executable, "-c", "from siyu.cli import app; app()", "worker", "--workers", str(threads),
           "--log-level", "warning"]
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "ab")) if log_path else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)  # noqa: PLW1509
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Ask a subprocess to end (SIGTERM), and kill it when it has not within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def running_server(database_url: str, *, workers: int = 1, timeout: float = 60.0) -> Iterator[str]:
    """Like `server`, yielding only its base URL."""
    with server(database_url, workers=workers, timeout=timeout) as handle:
        yield handle.base


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, int(round(pct / 100 * len(sorted_values) + 0.5 - 1e-9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(seconds: list[float]) -> dict[str, float | int]:
    """count, p50/p95/p99/max in milliseconds."""
    ms = sorted(v * 1000 for v in seconds)
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2) if ms else 0.0,
    }


# ---------------------------------------------------------------- CPU from /proc (Linux)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (empty when /proc is not there)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        if not Path(f"/proc/{current}").exists():
            continue
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (0 for those gone)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def postgres_cpu_seconds() -> float | None:
    """CPU seconds of every `postgres` process on this machine (a local server only), or None."""
    proc = Path("/proc")
    if not proc.exists():
        return None
    pids = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
    return cpu_seconds(pids) if pids else None


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent not idle so far (all processes, ours and others'), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (sum(fields[:8]) - idle) / ticks


def machine_cpus() -> int:
    return os.cpu_count() or 1
