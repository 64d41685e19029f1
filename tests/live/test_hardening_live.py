"""Hardening findings that need real processes: a deep request against a live server, an upload still
streaming when COMPLETE arrives, what kill -9 leaves behind, the database cut at runtime, a full disk."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.live import aep
from tests.live.server import server_env, start_server

pytestmark = pytest.mark.live

TOKEN = "live-test-token"


def test_a_deep_request_neither_stalls_the_server_nor_leaks_into_its_log(live_server, api):
    stop = threading.Event()
    slowest = []

    def probe():
        with httpx.Client(base_url=live_server, timeout=10) as c:
            while not stop.is_set():
                started = time.perf_counter()
                assert c.get("/_upstack/health").status_code == 200
                slowest.append(time.perf_counter() - started)

    prober = threading.Thread(target=probe)
    prober.start()
    _wait_for(lambda: slowest, 30, "first health answer")
    try:
        body = b'{"name":"n","description":' + b'{"a":' * 1000 + b'"x"' + b"}" * 1000 + b"}"
        for _ in range(20):
            r = api.post(f"{aep.CATALOG}/dataSets", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and "nested" in r.json()["detail"]
    finally:
        stop.set()
        prober.join()
    assert slowest and max(slowest) < 2.0


def test_upload_still_streaming_at_complete_is_refused_and_leaves_nothing(tmp_path, org):
    server, base = start_server("upstack-upload-race", tmp_path / "data", server_env(workers=1))
    try:
        with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=60) as api:
            ds = aep.create_dataset(api, "race")
            batch = aep.start_batch(api, ds)
            aep.upload(api, batch, ds, "first.json", aep.json_lines([aep.profile_record(1)]))
            first_chunk_sent, complete_done = threading.Event(), threading.Event()

            def slow_body():
                yield aep.json_lines([aep.profile_record(2)])
                first_chunk_sent.set()
                complete_done.wait(30)
                yield aep.json_lines([aep.profile_record(3)])

            late = {}

            def put_late():
                late["r"] = api.put(f"{aep.IMPORT}/batches/{batch}/datasets/{ds}/files/late.json",
                                    content=slow_body(), headers={"Content-Type": "application/octet-stream"})

            uploader = threading.Thread(target=put_late)
            uploader.start()
            assert first_chunk_sent.wait(30)
            time.sleep(0.3)  # the first chunk is in the server's temp file by now
            aep.complete(api, batch)
            complete_done.set()
            uploader.join(60)
            assert late["r"].status_code == 400, late["r"].text
            assert "processing" in late["r"].json()["detail"]
            done = aep.wait_batch(api, batch)
            assert done["status"] == "success" and done["metrics"]["recordsRead"] == 1
        data = tmp_path / "data"
        assert list((data / "tmp").glob("upload-*")) == []
        assert not any((data / "uploads").rglob("*.json"))
    finally:
        server.stop()


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {timeout} s")


def test_kill_9_leftovers_are_swept_and_the_work_finishes(tmp_path, org):
    data = tmp_path / "data"
    env = server_env(workers=1, worker_lease_seconds=2, sweep_interval_seconds=0.5, worker_poll_seconds=0.1)
    server, base = start_server("upstack-killed", data, env)
    records = aep.json_lines(aep.profile_record(i, note="x" * 200) for i in range(60_000))
    with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=120) as api:
        ds = aep.create_dataset(api, "killed")
        big = aep.start_batch(api, ds)
        aep.upload(api, big, ds, "big.json", records)
        aep.complete(api, big)
        # Kill the server while the ingest job writes its staging directory...
        _wait_for(lambda: list((data / "lake" / "_staging").glob("j*")), 60, "ingest staging directory")
        server.kill()
    assert list((data / "lake" / "_staging").glob("j*"))
    # ... and a second one while an upload streams into tmp/.
    server, base = start_server("upstack-killed-2", data, server_env(workers=0))
    with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=120) as api:
        half = aep.start_batch(api, ds)

        def endless():
            while True:
                yield b'{"identityMap":{"email":[{"id":"a@b"}]}}\n' * 1000

        def put():
            try:
                api.put(f"{aep.IMPORT}/batches/{half}/datasets/{ds}/files/half.json", content=endless(),
                        headers={"Content-Type": "application/octet-stream"})
            except httpx.HTTPError:
                pass

        threading.Thread(target=put, daemon=True).start()
        _wait_for(lambda: [p for p in (data / "tmp").glob("upload-*") if p.stat().st_size > 100_000], 30,
                  "half-written upload")
        server.kill()
    assert list((data / "tmp").glob("upload-*"))
    # A new server sweeps at start and re-runs the killed ingest once its lease expires.
    server, base = start_server("upstack-after-kill", data, env)
    try:
        with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=60) as api:
            assert aep.wait_batch(api, big, timeout=120)["metrics"]["recordsWritten"] == 60_000
            _wait_for(lambda: not list((data / "tmp").glob("upload-*"))
                      and not any((data / "lake" / "_staging").iterdir()), 30, "sweep of the leftovers")
    finally:
        server.stop()


class TcpProxy:
    """A TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones refused) and restore."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                try:  # wakes the thread blocked in accept(); close() alone leaves the port listening
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.mark.postgres
def test_database_cut_at_runtime_answers_503_and_recovers(tmp_path, org, empty_postgres_database):
    from sqlalchemy.engine import make_url

    real = make_url(empty_postgres_database)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432)).start()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server, base = start_server("upstack-db-cut", tmp_path / "data", server_env(workers=1, database_url=url))
    try:
        with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=30) as api:
            ds = aep.create_dataset(api, "before the cut")
            proxy.cut()
            for _ in range(3):
                started = time.perf_counter()
                r = api.get(f"{aep.CATALOG}/dataSets/{ds}")
                assert r.status_code == 503, r.text
                assert r.json()["title"] == "ServiceUnavailableError" and r.headers["retry-after"]
                assert time.perf_counter() - started < 15
                r = api.post(f"{aep.UPS}/export/jobs", json={})
                assert r.status_code in (400, 503), r.text
                if r.status_code == 503:
                    assert r.json()["errors"]["503"][0]["code"] == "UPAPI-113503-503"
            health = httpx.get(base + "/_upstack/health", timeout=30)
            assert health.status_code == 503 and health.json()["database"] == "unavailable"
            proxy.start()
            _wait_for(lambda: api.get(f"{aep.CATALOG}/dataSets/{ds}").status_code == 200, 30, "recovery")
            assert aep.create_dataset(api, "after the cut")
        assert "Traceback" not in server.log_path.read_text()
    finally:
        server.stop()
        proxy.cut()


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_answers_507_and_recovers_once_space_is_freed(tmp_path, org):
    """A real small file system (tmpfs) under the data dir; tests/test_hardening.py injects ENOSPC instead
    where mounting is not allowed."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "12m"):
        pytest.skip("mounting a tmpfs needs root (the injected ENOSPC test covers this path)")
    try:
        server, base = start_server("upstack-disk-full", disk / "data", server_env(workers=1))
        try:
            with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=60) as api:
                ds = aep.create_dataset(api, "full")
                batch = aep.start_batch(api, ds)
                url = f"{aep.IMPORT}/batches/{batch}/datasets/{ds}/files/"
                r = api.put(url + "huge.json", content=b"x" * (16 * 1024 * 1024),
                            headers={"Content-Type": "application/octet-stream"})
                assert r.status_code == 507, r.text
                assert r.json()["title"] == "InsufficientStorageError"
                assert list((disk / "data" / "tmp").glob("upload-*")) == []
                aep.upload(api, batch, ds, "small.json", aep.json_lines([aep.profile_record(1)]))
                aep.complete(api, batch)
                assert aep.wait_batch(api, batch)["status"] == "success"
                assert httpx.get(base + "/_upstack/health").status_code == 200
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_stalled_uploads_hold_no_threads_and_time_out(tmp_path, org):
    """60 uploads that stop sending (more than the 40 threads serving synchronous routes) leave every other
    request answered; each stalled one is a 408 after the idle timeout, and leaves no file."""
    server, base = start_server("upstack-stalled", tmp_path / "data",
                                server_env(workers=0, request_idle_timeout_seconds=3))
    try:
        with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=60) as api:
            ds = aep.create_dataset(api, "stalled")
            batch = aep.start_batch(api, ds)
            release = threading.Event()  # never set: every body stalls
            answers: list[int] = []

            def stalled(i: int) -> None:
                def body():
                    yield b'{"identityMap":{"email":[{"id":"a@b"}]}}\n'
                    release.wait(5)  # past the server's 3 s idle timeout

                with httpx.Client(base_url=base, headers=aep.aep_headers(org), timeout=60) as c:
                    try:
                        r = c.put(f"{aep.IMPORT}/batches/{batch}/datasets/{ds}/files/s{i}.json", content=body(),
                                  headers={"Content-Type": "application/octet-stream"})
                        answers.append(r.status_code)
                    except httpx.HTTPError:
                        answers.append(0)

            threads = [threading.Thread(target=stalled, args=(i,)) for i in range(60)]
            for t in threads:
                t.start()
            time.sleep(1)
            started = time.perf_counter()
            assert api.get(f"{aep.CATALOG}/dataSets/{ds}").status_code == 200  # a synchronous route
            assert aep.get_batch(api, batch)["status"] == "loading"
            assert time.perf_counter() - started < 2
            for t in threads:
                t.join(60)
            assert answers.count(408) >= 55, answers  # a few may see the connection closed after the 408
        assert list((tmp_path / "data" / "tmp").glob("upload-*")) == []
        assert not (tmp_path / "data" / "uploads").exists() or not any((tmp_path / "data" / "uploads").rglob("*.json"))
    finally:
        server.stop()
