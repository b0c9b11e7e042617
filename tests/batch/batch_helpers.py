"""Quick real orders for batch tests (slice jobs of small boxes) and checks of a batch's folders."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trimesh


def box_stl(path: Path, size_mm: tuple[float, float, float] = (10.0, 10.0, 4.0)) -> Path:
    """A box standing on z = 0, as binary STL."""
    box = trimesh.creation.box(extents=size_mm)
    box.apply_translation((0, 0, size_mm[2] / 2))
    box.export(path)
    return path


def slice_batch(path: Path, orders: list[dict[str, Any]]) -> Path:
    """A TOML batch of slice orders (prusa-mk4, PLA); each order a dict of keys (id, input, output, ...)."""
    lines = ['[defaults]', 'command = "slice"', 'printer = "prusa-mk4"', 'material = "pla"']
    for order in orders:
        lines.append("[[order]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in order.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def quick_orders(folder: Path, count: int) -> list[dict[str, Any]]:
    """``count`` slice orders of boxes of different heights (so their G-code differs)."""
    orders = []
    for index in range(count):
        mesh = box_stl(folder / f"box{index}.stl", (10.0, 10.0, 2.0 + index))
        orders.append({"id": f"B-{index}", "input": mesh.name, "output": f"box{index}.gcode"})
    return orders


def medprint(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medprint", *map(str, args)], capture_output=True, text=True,
                          check=False, timeout=timeout)


def start_medprint(*args: str | Path, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "medprint", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_orders(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "manifest.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text())["orders"])


def check_folders_whole(output_dir: Path) -> dict[str, str]:
    """Every order folder is whole: done ones hold exactly their recorded outputs (hashes match) and records,
    failed ones only their records.  Returns folder name -> status from each folder's result.json."""
    statuses = {}
    for folder in sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        result = json.loads((folder / "result.json").read_text())
        names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        records = {"order.toml", "log.txt", "result.json"}
        if result["status"] == "done":
            assert names == records | set(result["outputs"]), folder
            for name, recorded in result["outputs"].items():
                assert sha256(folder / name) == recorded["sha256"], (folder, name)
        else:
            assert names == records, folder
        statuses[folder.name] = result["status"]
    return statuses


def check_manifest_matches_folders(output_dir: Path) -> list[str]:
    """Every order the manifest records done has its folder, with every output at the recorded hash."""
    done = []
    for order_id, entry in manifest_orders(output_dir).items():
        if entry["status"] != "done":
            continue
        folder = output_dir / entry["folder"]
        for name, recorded in entry["outputs"].items():
            assert sha256(folder / name) == recorded["sha256"], (order_id, name)
        done.append(order_id)
    return sorted(done)


def processes_in(folder: Path) -> list[int]:
    """Pids of processes whose working folder is below ``folder`` (the orders' subprocesses run in staging)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(folder) + os.sep):
            pids.append(int(entry.name))
    return pids


def order_processes(staging: Path) -> dict[int, str]:
    """Pid -> staging folder name of every order subprocess running in ``staging``."""
    found = {}
    for pid in processes_in(staging):
        try:
            found[pid] = Path(os.readlink(f"/proc/{pid}/cwd")).relative_to(staging).parts[0]
        except (OSError, ValueError):
            continue
    return found


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """The process runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
