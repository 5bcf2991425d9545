"""A real Dask cluster on loopback for the flow tests: `dask scheduler` and `dask worker` processes
(no nanny, so killing a worker's pid kills the worker)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DaskCluster:
    log_dir: Path
    n_workers: int = 2
    address: str = ""
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> DaskCluster:
        from distributed import Client

        bin_dir = Path(sys.executable).parent
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=(self.log_dir / "scheduler.log").open("wb"))
        for i in range(self.n_workers):
            self.workers.append(subprocess.Popen(
                [str(bin_dir / "dask"), "worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
                stdout=subprocess.DEVNULL, stderr=(self.log_dir / f"worker{i}.log").open("wb")))
        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(self.n_workers, timeout=120)
        return self

    def worker_pids(self) -> dict[str, int]:
        """Worker address → pid, as the scheduler knows them."""
        import os

        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            return client.run(os.getpid)

    def processing(self) -> dict[str, list[str]]:
        """Worker address → keys of the tasks it is running now."""
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            return {k: list(v) for k, v in client.processing().items()}

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
