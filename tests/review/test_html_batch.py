"""`medprint batch --report html`: each order's folder holds its HTML sign-off report, unless the order sets its
own report; the page is one of the order's recorded outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from html_helpers import box_stl, read_page

from medprint.jobs.order_batch import with_report_format
from medprint.jobs.orders import load_batch

REPO_ROOT = Path(__file__).resolve().parents[2]


def _batch(path: Path, orders: list[dict[str, object]]) -> Path:
    lines = ['[defaults]', 'command = "slice"', 'printer = "prusa-mk4"', 'material = "pla"']
    for order in orders:
        lines.append("[[order]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in order.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def batch_file(tmp_path: Path) -> Path:
    box_stl(tmp_path / "low.stl", (10.0, 10.0, 2.0))
    return _batch(tmp_path / "week.toml", [
        {"id": "B-1", "input": "low.stl", "output": "low.gcode"},
        {"id": "B-2", "input": "low.stl", "output": "plain.gcode", "report": "json"},
    ])


def test_batch_report_html_puts_a_page_in_every_order_folder(batch_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "medprint", "batch", batch_file, "-o", out, "--workers", "2",
                          "--report", "html", "--json"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    folder = out / "B-1"
    page = read_page(folder / "low.report.html")
    assert page.row("layer_count").value is not None and page.images()
    assert "Order B-1" in page.text
    result = json.loads((folder / "result.json").read_text())
    assert {"low.gcode", "low.report.html"} <= set(result["outputs"])
    assert 'report = "html"' in (folder / "order.toml").read_text()
    # The order that chose its report keeps it.
    assert not [p.name for p in (out / "B-2").iterdir() if p.name.endswith(".html")]
    assert (out / "B-2" / "plain.gcode").is_file()


def test_with_report_format_leaves_orders_that_chose(batch_file: Path) -> None:
    orders = with_report_format(load_batch(batch_file), "html")
    assert [order.values.get("report_format") for order in orders] == ["html", "json"]
    again = with_report_format(orders, "json")
    assert [order.values.get("report_format") for order in again] == ["html", "json"]
