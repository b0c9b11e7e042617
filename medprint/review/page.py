"""The sign-off report as one self-contained HTML5 page: pictures embedded, styles inline, nothing from the network.

The page is built only from what is safe to show: the de-identified JSON report of a run and the pictures drawn
from its meshes and scan.  Every text that comes from a report goes through :func:`html.escape`.  What the page
says about the numbers (which rows, which units) lives in :mod:`medprint.review.page_facts`.
"""

from __future__ import annotations

import base64
import html
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .page_facts import (
    Row,
    design_rows,
    estimate_rows,
    gcode_facts,
    input_rows,
    parameter_groups,
    part_tables,
)
from .page_style import PAGE_CSS
from .types import Picture, Window

#: Nothing may be fetched: images are data: URLs, styles inline, no script, no form is ever sent anywhere.
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                           "form-action 'none'; base-uri 'none'")

#: What the letters on a picture's edges stand for (said in each letter's tooltip).
DIRECTION_NAMES = {"A": "anterior", "P": "posterior", "L": "patient's left", "R": "patient's right",
                   "S": "superior", "I": "inferior"}

#: The decisions a reviewer can sign.
DECISIONS = ("approved", "approved with changes", "rejected")


@dataclass(frozen=True)
class PageContent:
    """What one sign-off page shows.

    Parameters
    ----------
    report : mapping
        The run's JSON report (de-identified), or the facts measured for an existing output.
    command : str
        What made the output (``"convert"``, ``"design implant"``, ``"slice"``, ``"report"``).
    output_name : str
        The output's file name (never a path: folders may be named after the patient).
    version : str
        The medprint version that built the page.
    created : str
        When the page was built (ISO 8601, UTC).
    scan : sequence of Picture
        The segmentation over the scan (montage, coronal, sagittal); empty when there is no scan.
    window : Window, optional
        The display window of the scan pictures.
    scan_missing : str
        What to say instead of the scan pictures when there are none (and what to do about it).
    model, fit, layers : sequence of Picture
        The model views; the part over its anatomy (designs); the G-code's layers.
    notes : sequence of str
        What the page itself chose or could not do (numbers measured from the mesh, a report not found).
    """

    report: Mapping[str, Any]
    command: str
    output_name: str
    version: str
    created: str
    scan: Sequence[Picture] = ()
    window: Window | None = None
    scan_missing: str = ""
    model: Sequence[Picture] = ()
    fit: Sequence[Picture] = ()
    layers: Sequence[Picture] = ()
    notes: Sequence[str] = field(default=())


def render_page(content: PageContent) -> str:
    """The whole HTML document (UTF-8 text) for ``content``."""
    title = f"Sign-off report: {content.output_name}"
    body = [
        _header(content),
        _scan_section(content),
        _model_section(content),
        _fit_section(content),
        _layers_section(content),
        _numbers_section(content.report),
        _design_section(content.report),
        _parameters_section(content.report),
        _choices_section(content),
        _sign_off_section(),
        _footer(content),
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{_e(title)}</title>",
        f"<style>{PAGE_CSS}</style>",
        "</head>",
        "<body>",
        '<main class="report">',
        *(part for part in body if part),
        "</main>",
        "</body>",
        "</html>",
        "",
    ])


# ---------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------


def _header(content: PageContent) -> str:
    facts: list[tuple[str, str]] = [
        ("Output", content.output_name),
        ("Made by", f"medprint {content.command}"),
    ]
    order = content.report.get("order")
    if isinstance(order, Mapping) and order.get("id") is not None:
        facts.append(("Order", str(order["id"])))
    facts += [("medprint version", content.version), ("Report created", content.created)]
    items = "".join(f'<div><dt>{_e(k)}</dt><dd class="fact-{_slug(k)}">{_e(v)}</dd></div>' for k, v in facts)
    return (
        '<header class="report-header">'
        '<p class="kicker">medprint &middot; 3D print model review</p>'
        f"<h1>Sign-off report <span class=\"output-name\">{_e(content.output_name)}</span></h1>"
        '<p class="purpose">Check the model against the scan and the numbers below before it is printed; '
        "record the decision in the sign-off block at the end. Patient directions are marked on every "
        "picture (R/L, A/P, S/I): a left/right mistake shows here.</p>"
        f'<dl class="facts">{items}</dl>'
        "</header>"
    )


def _scan_section(content: PageContent) -> str:
    if not content.scan:
        missing = content.scan_missing or "No scan given: the model only."
        return _section("scan", "Segmentation over the scan", f'<p class="note no-scan">{_e(missing)}</p>')
    window = ""
    if content.window is not None:
        w = content.window
        numbers = "" if "level" in w.name else f" (level {_number(w.level)}, width {_number(w.width)})"
        window = (f'<p class="window" data-level="{_e(repr(w.level))}" data-width="{_e(repr(w.width))}">'
                  f"Display window: <strong>{_e(w.name)}</strong>{_e(numbers)}</p>")
    return _section("scan", "Segmentation over the scan", window + _figures(content.scan), big=True)


def _model_section(content: PageContent) -> str:
    if not content.model:
        return ""
    return _section("model", "The model", _figures(content.model), big=True)


def _fit_section(content: PageContent) -> str:
    if not content.fit:
        return ""
    lead = '<p class="lead">The part (strong colour) over the anatomy it fits (pale).</p>'
    return _section("fit", "The part on its anatomy", lead + _figures(content.fit), big=True)


def _layers_section(content: PageContent) -> str:
    facts = gcode_facts(content.report)
    if not content.layers and facts is None:
        return ""
    estimates = "" if facts is None else _table(estimate_rows(facts), "estimates", caption="Print estimates")
    table = f'<div class="tables">{estimates}</div>' if estimates else ""
    return _section("layers", "Print: layers and estimates", table + _figures(content.layers), big=True)


def _numbers_section(report: Mapping[str, Any]) -> str:
    tables = part_tables(report)
    if not tables:
        return ""
    read = input_rows(report)
    body = "".join(_table(rows, "numbers", caption=name) for name, rows in tables)
    body += _table(read, "input-facts", caption="Input")
    return _section("numbers", "Numbers", f'<div class="tables">{body}</div>')


def _design_section(report: Mapping[str, Any]) -> str:
    rows = design_rows(report)
    if not rows:
        return ""
    return _section("design", "Design", f'<div class="tables">{_table(rows, "design-facts")}</div>')


def _parameters_section(report: Mapping[str, Any]) -> str:
    groups = parameter_groups(report)
    if not groups:
        return ""
    tables = "".join(_table(rows, "parameters", caption=name) for name, rows in groups)
    return _section("parameters", "Parameters used", f'<div class="tables">{tables}</div>')


def _choices_section(content: PageContent) -> str:
    report = content.report
    parts = [
        _list("Choices made for you", _texts(report.get("choices")), "choices"),
        _list("Warnings", _texts(report.get("warnings")), "warnings", empty="No warnings."),
        _list("Notes on this report", list(content.notes), "notes"),
    ]
    return _section("choices", "Choices, warnings and notes", "".join(part for part in parts if part))


def _sign_off_section() -> str:
    decisions = "".join(
        f'<label class="decision"><input type="radio" name="decision" value="{_e(d)}"> {_e(d.capitalize())}'
        "</label>" for d in DECISIONS)
    return _section("sign-off", "Sign-off", (
        '<div class="sign-off">'
        '<div class="field"><label for="reviewer">Reviewer</label>'
        '<input id="reviewer" name="reviewer" type="text" autocomplete="off"></div>'
        '<div class="field"><label for="role">Role</label>'
        '<input id="role" name="role" type="text" autocomplete="off"></div>'
        '<div class="field"><label for="review-date">Date</label>'
        '<input id="review-date" name="review-date" type="date"></div>'
        f'<fieldset class="field decisions"><legend>Decision</legend>{decisions}</fieldset>'
        '<div class="field wide"><label for="comments">Comments / changes asked for</label>'
        '<textarea id="comments" name="comments" rows="4"></textarea></div>'
        '<div class="field wide signature"><span class="signature-line"></span>'
        "<span>Signature</span></div>"
        "</div>"
    ))


def _footer(content: PageContent) -> str:
    return ('<footer class="report-footer">'
            f"Made by medprint {_e(content.version)} on {_e(content.created)}. A review aid: the printed part "
            "must still be checked against the patient's images by a qualified person.</footer>")


# ---------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------


def _section(name: str, title: str, body: str, *, big: bool = False) -> str:
    classes = "section big" if big else "section"
    return f'<section id="{name}" class="{classes}"><h2>{_e(title)}</h2>{body}</section>'


def _figures(pictures: Iterable[Picture]) -> str:
    return '<div class="figures">' + "".join(figure_html(p) for p in pictures) + "</div>"


def figure_html(picture: Picture) -> str:
    """One picture: its title, the image, the patient direction of each edge as text, its caption."""
    letters = dict(picture.letters)
    width, height = png_size(picture.png)
    data = base64.b64encode(picture.png).decode("ascii")
    edges = "".join(
        f'<span class="orientation orientation-{edge}" title="{_e(DIRECTION_NAMES.get(letter, letter))}">'
        f"{_e(letter)}</span>" for edge, letter in letters.items() if edge in ("top", "bottom", "left", "right"))
    directions = ", ".join(f"{edge}: {DIRECTION_NAMES.get(letter, letter)}" for edge, letter in letters.items())
    alt = picture.title + (f" ({directions})" if directions else "")
    caption = f'<p class="caption">{_e(picture.caption)}</p>' if picture.caption else ""
    return (
        '<figure class="picture">'
        f'<figcaption class="picture-title">{_e(picture.title)}</figcaption>'
        f'<div class="oriented">{edges}'
        f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{_e(alt)}"></div>'
        f"{caption}</figure>"
    )


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG from its header (``IHDR``), without decoding it.

    >>> png_size(bytes.fromhex("89504e470d0a1a0a0000000d49484452") + (3).to_bytes(4, "big") + (2).to_bytes(4, "big"))
    (3, 2)
    """
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _table(rows: Sequence[Row], name: str, *, caption: str = "") -> str:
    if not rows:
        return ""
    head = f"<caption>{_e(caption)}</caption>" if caption else ""
    body = "".join(
        f'<tr data-key="{_e(row.key)}"{_flag(row.flag)}><th scope="row">{_e(row.label)}</th>'
        f'<td{_value_attribute(row.value)}>{_e(row.text)}</td></tr>' for row in rows)
    return f'<table class="facts-table {name}">{head}<tbody>{body}</tbody></table>'


def _flag(flag: str) -> str:
    return f' class="{_e(flag)}"' if flag else ""


def _value_attribute(value: Any) -> str:
    # The exact number beside its rounded text, so a reader (or a test) can take the figure as the report has it.
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return f' data-value="{_e(repr(value))}"'
    return ""


def _list(title: str, items: Sequence[str], name: str, *, empty: str = "") -> str:
    if not items and not empty:
        return ""
    inner = "".join(f"<li>{_e(item)}</li>" for item in items) if items else f'<li class="none">{_e(empty)}</li>'
    return f'<div class="{name}"><h3>{_e(title)}</h3><ul>{inner}</ul></div>'


def _texts(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [] if value is None else [str(value)]


def _number(value: float) -> str:
    return f"{value:g}"


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _e(text: Any) -> str:
    """Escaped for HTML; control and format characters (a right-to-left override that would turn a name
    round on screen) shown as their code, visibly."""
    return _INVISIBLE.sub(lambda found: f"[U+{ord(found.group()):04X}]", html.escape(str(text), quote=True))


#: C0/C1 controls but tab and newline; bidirectional overrides, isolates and marks; zero-width characters.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
