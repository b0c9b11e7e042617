"""A real Orthanc (Debian ``orthanc``, /usr/sbin/Orthanc) on 127.0.0.1 for tests and benchmarks.

Started with its own JSON configuration and storage folder in a temporary folder, free DICOM and HTTP ports
picked at start, waited for by polling its REST API, and stopped by terminate + wait.  Checked through its REST
API with urllib (no extra dependency).  Used by tests/pacs/conftest.py and benchmarks/bench_send.py.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ORTHANC = "/usr/sbin/Orthanc"
START_TIMEOUT_S = 30.0


def orthanc_program() -> str | None:
    """The Orthanc program, or None where it is not installed."""
    return shutil.which("Orthanc") or (ORTHANC if Path(ORTHANC).is_file() else None)


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Orthanc:
    """One Orthanc process: ``aet``, ``dicom_port``, ``http_port``; ``get``/``put``/``delete`` on its REST API.

    ``settings`` are added to (and override) the base configuration: localhost only, no authentication,
    the called AE title checked.
    """

    def __init__(self, folder: Path, *, aet: str = "ORTHANC", settings: Mapping[str, Any] | None = None) -> None:
        program = orthanc_program()
        if program is None:
            raise FileNotFoundError("Orthanc is not installed (Debian package orthanc)")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.aet = aet
        self.dicom_port, self.http_port = free_port(), free_port()
        storage = self.folder / "storage"
        config = {
            "Name": "medprint-test", "DicomAet": aet, "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": True,
            "Plugins": [], "LuaScripts": [], "ConcurrentJobs": 1,
            **(settings or {}),
        }
        self.config_path = self.folder / "orthanc.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = self.folder / "orthanc.log"
        self._stopping = False
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([program, str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> str:
        """``AET@127.0.0.1:PORT`` as medprint's --send and --to take it."""
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc stopped at start (exit {self.process.returncode}): {self.log_tail()}")
            try:
                self.get("/system")
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
                continue
            if self._dicom_port_open():
                return
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {START_TIMEOUT_S:g} s: {self.log_tail()}")

    def _dicom_port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 8) -> str:
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _request(self, method: str, path: str, data: bytes | None = None) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())

    def get(self, path: str) -> Any:
        """GET a JSON resource."""
        return json.loads(self._request("GET", path))

    def get_bytes(self, path: str) -> bytes:
        return self._request("GET", path)

    def put(self, path: str, data: bytes) -> bytes:
        return self._request("PUT", path, data)

    def delete(self, path: str) -> None:
        self._request("DELETE", path)

    def instances(self) -> list[str]:
        return list(self.get("/instances"))

    def clear(self) -> None:
        """Remove every patient (and so everything) Orthanc holds, so a test starts from an empty store."""
        for patient in self.get("/patients"):
            self.put(f"/patients/{patient}/protected", b"0")
            self.delete(f"/patients/{patient}")

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM) without waiting: several servers then stop side by side."""
        if self.process.poll() is None and not self._stopping:
            self._stopping = True
            self.process.terminate()

    def stop(self) -> None:
        """Stop it and wait until it has (killed if it takes more than 20 s)."""
        self.terminate()
        if self.process.returncode is None:
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
