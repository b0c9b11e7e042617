"""Content hashes of a batch's inputs and outputs, with a cache so a resume does not re-read every scan.

An input's digest is the sha256 of its bytes; a folder's (a DICOM series) is the sha256 over its files'
sorted relative names and their digests, so renaming, adding, removing or editing any file changes it.
File digests are cached by (path, size, mtime_ns, inode): a file whose stat is unchanged is not re-read.
The cache is keyed by a digest of the path, so the manifest carries no input names (they may name a patient).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any

_CHUNK_BYTES = 1 << 20


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def path_key(path: Path) -> str:
    """The cache key of a path: a digest, so the manifest never spells a (possibly identifying) name."""
    return hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()[:32]


def _stat_fingerprint(stat: os.stat_result) -> dict[str, int]:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


class InputHasher:
    """Digests of input files and folders, reusing ``cache`` (a mapping kept in the manifest) where stat agrees.

    ``used`` collects the cache entries this batch touched, so the manifest keeps only those.
    """

    def __init__(self, cache: MutableMapping[str, Any] | None = None) -> None:
        self.cache: dict[str, Any] = dict(cache or {})
        self.used: dict[str, Any] = {}

    def file_digest(self, path: Path) -> str:
        stat = os.stat(path)
        key = path_key(path)
        fingerprint = _stat_fingerprint(stat)
        known = self.cache.get(key)
        if isinstance(known, dict) and all(known.get(k) == v for k, v in fingerprint.items()):
            digest = str(known["sha256"])
        else:
            digest = sha256_file(path)
        entry = {**fingerprint, "sha256": digest}
        self.cache[key] = self.used[key] = entry
        return digest

    def folder_digest(self, folder: Path) -> str:
        digest = hashlib.sha256()
        for relative in _files_below(folder):
            digest.update(relative.encode("utf-8", "surrogateescape") + b"\0")
            digest.update(self.file_digest(folder / relative).encode() + b"\n")
        return digest.hexdigest()

    def path_digest(self, path: Path) -> str:
        """A file's or folder's digest; ``"missing"``/``"unreadable"`` otherwise (the order then fails on its own,
        with its own error line, and is tried again by the next run)."""
        try:
            if path.is_dir():
                return self.folder_digest(path)
            if path.is_file():
                return self.file_digest(path)
        except OSError:
            return "unreadable"
        return "missing"

    def inputs_digest(self, paths: Iterable[Path]) -> str:
        """One digest over every input of an order, in the order's own order of inputs."""
        parts = [self.path_digest(Path(path)) for path in paths]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _files_below(folder: Path) -> list[str]:
    """Every file below ``folder`` as sorted POSIX relative names (symlinked files followed, like a reader would)."""
    names = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            full = Path(root) / name
            if full.is_file():
                names.append(full.relative_to(folder).as_posix())
    return sorted(names)
