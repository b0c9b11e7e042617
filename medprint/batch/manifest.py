"""``OUTDIR/manifest.json``: what a batch has finished, and from which inputs, parameters and version.

It is rewritten whole after every finished order (temporary file, fsync, ``os.replace``), so a batch killed at
any moment leaves either the previous manifest or the next one, never a torn one.  An order counts as done
only when its folder is in place *and* the manifest says so; a folder the manifest does not list is redone.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .hashing import sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT = "medprint-batch-manifest/1"


@dataclass(frozen=True)
class OrderKey:
    """What decides whether an order must run again: its input bytes, its parameters, the medprint version."""

    inputs_sha256: str
    parameters_sha256: str
    medprint_version: str


@dataclass
class Manifest:
    """Per order id its last recorded entry (a JSON-ready dict), and the cache of input file digests."""

    path: Path
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_hashes: dict[str, Any] = field(default_factory=dict)
    #: The text last read or written: a resume that changes nothing writes nothing.
    written: str | None = None

    @classmethod
    def load(cls, output_dir: Path) -> Manifest:
        """The manifest of ``output_dir`` (empty when there is none yet)."""
        path = output_dir / MANIFEST_NAME
        if not path.exists():
            return cls(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OutputError(f"{path}: not a readable batch manifest ({error}); move it away to start the batch "
                              f"afresh") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise OutputError(f"{path}: not a medprint batch manifest (format {FORMAT!r}); is -o/--output the "
                              f"right folder?")
        return cls(path, dict(data.get("orders", {})), dict(data.get("input_hashes", {})), text)

    def record(self, order_id: str, entry: dict[str, Any]) -> None:
        """Set an order's entry and write the manifest to disk at once."""
        self.orders[order_id] = entry
        self.save()

    def save(self) -> None:
        text = as_json_text({"format": FORMAT, "orders": self.orders, "input_hashes": self.input_hashes})
        if text != self.written:
            write_text_atomically(self.path, text)
            self.written = text

    def finished_unchanged(self, order_id: str, folder: Path, key: OrderKey) -> bool:
        """True when the order is recorded done with this key and every output is in ``folder`` as recorded."""
        entry = self.orders.get(order_id)
        if not entry or entry.get("status") != "done":
            return False
        if (entry.get("inputs_sha256"), entry.get("parameters_sha256"), entry.get("medprint_version")) != (
                key.inputs_sha256, key.parameters_sha256, key.medprint_version):
            return False
        if entry.get("folder") != folder.name or not folder.is_dir():
            return False
        return all(output_intact(folder / name, recorded) for name, recorded in entry.get("outputs", {}).items())


def output_intact(path: Path, recorded: dict[str, Any]) -> bool:
    """An output is as recorded: same size and mtime (cheap), or else the same bytes (re-hashed).

    A file re-hashed to the same digest gets its new mtime recorded, so the next resume is cheap again.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if stat.st_size != recorded.get("size"):
        return False
    if stat.st_mtime_ns == recorded.get("mtime_ns"):
        return True
    if sha256_file(path) != recorded.get("sha256"):
        return False
    recorded["mtime_ns"] = stat.st_mtime_ns
    return True


def as_json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, and rename it over ``path``."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself has happened
    finally:
        os.close(handle)
