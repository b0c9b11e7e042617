"""The one de-identification rule for everything that leaves medprint, and the helpers that apply it.

Whatever medprint writes or prints may leave the hospital (a print lab, a vendor, a bug report): the JSON
report and ``--json``, the HTML sign-off report, log lines and the error line, STL headers, OBJ/PLY/3MF
(object names, metadata), G-code, batch folders and manifests.  None of it carries patient identity:

1. **Identity is read in one place, for one file.**  :mod:`medprint.io.dicom_identity` reads patient, study
   and frame of reference (or takes them from ``--patient-*``/``--study-*``) for the DICOM object meant for
   the patient's record (``--dicom-stl``); that object is the only output that carries identity.
2. **Scan metadata is de-identified when it is read.**  :attr:`medprint.volume.Volume.metadata` holds no
   names, IDs or dates (``io/dicom.py`` copies a fixed list of technical fields); the series description
   and UID it keeps, which ``--series`` takes, stay out of every output unless ``--show-phi``
   (:data:`medprint.report.PHI_METADATA`).
3. **Names of and below the input are identity too** (hospitals name folders and files after patients).
   In files, the input path and every name below an input folder (:func:`names_below`) are replaced by
   stand-ins (``<input>``, ``<input folder>``, ``<input file>``) by the run's :class:`Scrubber` -- the
   report's choices, notes and warnings (``report.collected_warnings``) -- and reports name their files
   relative to their own folder.  On the terminal (``cli.for_terminal``) the path the user typed is shown
   as typed, and every name below it is replaced.
4. **Text written into files is medprint's or the user's, never the input's.**  Part names reduced to
   ``[A-Za-z0-9_.-]`` (:func:`safe_part_name`: STL header, 3MF objects, part file names); medprint's name,
   version, units and frame; dates without a time (3MF ``CreationDate``); and what the user typed for the
   output -- order id, ``--job-name``, label text, output names -- as typed, made one inert line
   (:func:`terminal_safe`, ``slice.gcode.sanitize_comment``).  medprint never fills these from the input.
5. **``--show-phi`` is the only exception**: the JSON report then records the input path (and the series
   description and UID) and messages show names below the input.  Patient name, ID and birth date are in no
   report even then; ``medprint info --show-phi`` shows them on the terminal only.

A new writer keeps the rule by drawing its text from the report and the run's products (already
de-identified) and by passing any other text through the run's :class:`Scrubber` -- not a scrubber of its own.

This module is kept free of numpy and the pipeline, so the command line can use it from its first line (an
error while it is still starting is cleaned like any other).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["PRIVATE_NAMES_LIMIT", "Scrubber", "names_below", "safe_part_name", "terminal_safe"]

#: At most this many names below an input folder are kept out of the report and the terminal.
PRIVATE_NAMES_LIMIT = 100_000

#: What may not reach a terminal raw: C0 and C1 controls (newline and ESC included), DEL, bidi marks,
#: overrides and isolates, and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe_part_name(name: str) -> str:
    """Reduce a part name to ``[A-Za-z0-9_.-]`` (at most 40 characters) so it cannot carry free text.

    >>> safe_part_name("Left femur (Mr. X)")
    'Left_femur_Mr._X'
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    return cleaned[:40] or "part"


def terminal_safe(text: str) -> str:
    """``text`` as one inert line: controls, escapes and bidi marks written out (``\\n``, ``\\x1b``, ``\\u202e``).

    File and label names come from outside (headers, folders); escaped, they
    cannot colour or clear the terminal, reorder what is shown, or start a
    line that looks like medprint's own (``\\nmedprint: error: ...``).
    """
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


#: Folder and file names of DICOM exports that name no one and are words of medprint's own messages
#: ("skipping 1 unreadable DICOM file"): replacing them would garble every message.
_GENERIC_NAMES = frozenset({"dicom", "dicomdir", "image", "images", "series", "study", "studies", "scan", "scans"})


def names_below(folder: Path) -> dict[str, str]:
    """Every file and folder name below ``folder`` (and its path), with a stand-in.

    A DICOM export names folders and files after the patient; these may not
    leave the hospital in a report, nor appear on a terminal, without
    ``--show-phi``.  Empty unless ``folder`` is a folder; at most
    :data:`PRIVATE_NAMES_LIMIT` entries.
    """
    private: dict[str, str] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return private
    for count, inner in enumerate(folder.rglob("*")):
        if count >= PRIVATE_NAMES_LIMIT:
            break
        stand_in = "<input folder>" if inner.is_dir() else "<input file>"
        if inner.name.lower() not in _GENERIC_NAMES:
            private.setdefault(inner.name, stand_in)
        private.setdefault(str(inner), stand_in)
    return private


class Scrubber:
    """Replaces file paths and names, which hospitals often build from patient names, by stand-ins.

    ``private`` maps each text to its stand-in.  Only whole names are replaced
    (not inside another word or number), the longest first, so a path goes
    before its file name; texts under three characters or without a letter
    are left (a folder named ``1`` or ``0004`` is no name, and the same digits
    appear in measurements).
    """

    def __init__(self, private: dict[str, str]) -> None:
        kept = {text: stand_in for text, stand_in in private.items() if len(text) >= 3 and re.search("[A-Za-z]", text)}
        self._stand_ins = kept
        alternatives = "|".join(re.escape(text) for text in sorted(kept, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])") if kept else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._stand_ins[match.group(0)], text)
