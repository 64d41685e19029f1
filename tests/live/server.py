"""Real `upstack` processes for the live suites and `make conformance`: start one, wait until it answers,
keep its log in a file, stop it (and kill it if it does not stop).

`python -m tests.live.server [--port P] -- CMD ...` starts a throwaway `upstack serve` on a fresh SQLite data
dir, runs CMD once the server is healthy, stops the server and exits with CMD's status.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

HEALTH = "/_upstack/health"
# Every process started and not yet stopped, so a failing test can show their logs.
RUNNING: list[UpstackProcess] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**settings: object) -> dict[str, str]:
    """This process's environment without any UPSTACK_* setting, plus `settings` (e.g. workers=1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSTACK_")}
    env.update({f"UPSTACK_{k.upper()}": str(v) for k, v in settings.items()})
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM when the process that started us dies, so a killed
    test run or `make conformance` never leaves a server behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class UpstackProcess:
    """One `python -m upstack.cli ...` subprocess whose stdout and stderr go to `log_path`."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.args = [sys.executable, "-m", "upstack.cli", *args]
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(self.args, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process dies mid-work, as on a crash or an OOM kill."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, grace: float = 15.0) -> int | None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        if self in RUNNING:
            RUNNING.remove(self)
        return self.proc.returncode

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until true; fail with the log's tail if the process dies or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before {what}:\n{self.tail()}")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name}: no {what} within {timeout:.0f} s:\n{self.tail()}")


def health(base_url: str) -> dict:
    return httpx.get(base_url + HEALTH, timeout=5).json()


def start_server(name: str, data_dir: Path, env: dict[str, str], *extra: str, port: int | None = None,
                 timeout: float = 60.0) -> tuple[UpstackProcess, str]:
    """`upstack serve` on a free port; returns it and its base URL once /_upstack/health answers 200."""
    port = port or free_port()
    proc = UpstackProcess(name, ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
                                 *extra], env, data_dir.parent / f"{name}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        proc.wait_until(lambda: httpx.get(base + HEALTH, timeout=2).status_code == 200, timeout, "healthy answer")
    except BaseException:
        proc.stop()
        raise
    return proc, base


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run against the server")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, after --")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", args.port)) == 0:
            print(f"port {args.port} is already in use: stop that server or choose another port", file=sys.stderr)
            return 2
    # A SIGTERM (timeout, CI cancel) unwinds through the `finally` below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="upstack-live-") as tmp:
        data_dir = Path(tmp) / "data"
        server, base = start_server("upstack-serve", data_dir, server_env(workers=1), port=args.port)
        print(f"upstack serving on {base} (data dir {data_dir}, log {server.log_path})", flush=True)
        try:
            code = subprocess.call(command)
        finally:
            server.stop()
        if code:
            print(f"--- last lines of the server's log ---\n{server.tail(40)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
