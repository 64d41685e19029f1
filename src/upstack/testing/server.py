"""`UpstackServer`: a real `upstack serve` process for a test session (or an already running server by URL)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from upstack.testing.client import Upstack

HEALTH = "/_upstack/health"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UpstackServer:
    """Start `upstack serve` on a free port with a temporary data dir (SQLite), or use a running one (`url`).

    Use as a context manager (unittest, scripts) or through the pytest plugin's session fixture. `settings` are
    extra `UPSTACK_*` settings for a started server, e.g. `UpstackServer(worker_poll_seconds=0.05)`.
    """

    def __init__(self, url: str | None = None, *, data_dir: str | Path | None = None, workers: int = 1,
                 startup_timeout: float = 60.0, log_path: str | Path | None = None, **settings: object):
        self.url = url.rstrip("/") if url else None
        self.started = url is None
        self._data_dir = Path(data_dir) if data_dir else None
        self._own_dir: str | None = None
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.settings = settings
        self.log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen | None = None
        self._log = None

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> UpstackServer:
        if not self.started:
            self._wait_healthy()
            return self
        if self._data_dir is None:
            self._own_dir = tempfile.mkdtemp(prefix="upstack-test-")
            self._data_dir = Path(self._own_dir) / "data"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("UPSTACK_")}
        env.update({f"UPSTACK_{k.upper()}": str(v) for k, v in self.settings.items()})
        env.setdefault("UPSTACK_LOG_LEVEL", "WARNING")
        self.log_path = self.log_path or self._data_dir.parent / f"upstack-{port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "upstack.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(self._data_dir), "--workers", str(self.workers)],
            env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(15)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> UpstackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"upstack serve exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + HEALTH, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.1)
        raise TimeoutError(f"upstack at {self.url} not healthy after {self.startup_timeout:.0f} s ({last})\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- tenants --------------------------------------------------------------------------------------------

    def tenant(self, org: str | None = None, sandbox: str | None = None) -> Upstack:
        """A client for a tenant of its own (a fresh org and sandbox unless given): tests that use different
        tenants never see each other's data, jobs, controls or journaled requests."""
        if self.url is None:
            raise RuntimeError("the server is not started: use `with UpstackServer() as server:`")
        tag = uuid.uuid4().hex[:12].upper()
        client = Upstack(self.url, org or f"T{tag}@AdobeOrg", sandbox or f"sb-{tag.lower()}")
        client.create_sandbox()  # a sandbox a test asked for is no typo: no warning, and strict mode lets it pass
        return client
