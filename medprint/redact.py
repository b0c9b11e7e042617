"""Texts that leave medprint: names below an input withheld, control characters written out.

Kept free of numpy and the pipeline, so the command line can use it from its
first line (an error while it is still starting is cleaned like any other).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["PRIVATE_NAMES_LIMIT", "Scrubber", "names_below", "terminal_safe"]

#: At most this many names below an input folder are kept out of the report and the terminal.
PRIVATE_NAMES_LIMIT = 100_000

#: What may not reach a terminal raw: C0 and C1 controls (newline and ESC included), DEL, bidi marks,
#: overrides and isolates, and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


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
