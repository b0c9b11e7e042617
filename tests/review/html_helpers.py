"""Helpers of the HTML report tests: a box mesh, the sample scan, and a sign-off page read back with the
standard library's HTML parser (its images, table rows, texts, tags)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import trimesh
from PIL import Image

PNG_PREFIX = "data:image/png;base64,"
SAMPLE_CT = Path(__file__).resolve().parents[2] / "samples" / "head_phantom_ct"


def box_stl(path: Path, size_mm: tuple[float, float, float] = (30.0, 20.0, 12.0)) -> Path:
    """A box standing on z = 0 (LPS mm), as binary STL."""
    box = trimesh.creation.box(extents=size_mm)
    box.apply_translation((0, 0, size_mm[2] / 2))
    box.export(path)
    return path


@dataclass
class Cell:
    key: str
    label: str = ""
    text: str = ""
    value: str | None = None
    classes: str = ""


@dataclass
class Page:
    html: str
    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    rows: list[Cell] = field(default_factory=list)
    text: str = ""
    section_ids: list[str] = field(default_factory=list)
    section_text: dict[str, str] = field(default_factory=dict)

    def attrs(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def images(self) -> list[Image.Image]:
        """Every <img>, decoded by PIL (fails the test on anything but a data: PNG)."""
        pictures = []
        for attrs in self.attrs("img"):
            source = attrs.get("src", "")
            assert source.startswith(PNG_PREFIX), source[:60]
            picture = Image.open(io.BytesIO(base64.b64decode(source[len(PNG_PREFIX):], validate=True)))
            picture.load()
            assert picture.format == "PNG"
            pictures.append(picture)
        return pictures

    def row(self, key: str) -> Cell:
        found = [row for row in self.rows if row.key == key]
        assert found, f"no row {key!r} in {[row.key for row in self.rows]}"
        return found[0]

    def row_keys(self) -> set[str]:
        return {row.key for row in self.rows}


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.row: Cell | None = None
        self.cell: str | None = None
        self.sections: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.page.tags.append((tag, values))
        if tag == "section":
            self.sections.append(values.get("id", ""))
            self.page.section_ids.append(values.get("id", ""))
        if tag == "tr" and "data-key" in values:
            self.row = Cell(values["data-key"], classes=values.get("class", ""))
        if self.row is not None and tag in ("th", "td"):
            self.cell = tag
            if tag == "td":
                self.row.value = values.get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self.sections:
            self.sections.pop()
        if tag in ("th", "td"):
            self.cell = None
        if tag == "tr" and self.row is not None:
            self.page.rows.append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for name in self.sections:
            self.page.section_text[name] = self.page.section_text.get(name, "") + data
        if self.row is not None and self.cell == "th":
            self.row.label += data
        elif self.row is not None and self.cell == "td":
            self.row.text += data


def read_page(source: str | Path) -> Page:
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    page = Page(text)
    reader = _Reader(page)
    reader.feed(text)
    reader.close()
    page.text = " ".join(" ".join(reader.texts).split())
    return page


def at(report: object, key: str) -> object:
    """The value at a dotted key (``parts.0.mesh.volume_mm3``) of a JSON report."""
    value = report
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]  # type: ignore[index]
    return value
