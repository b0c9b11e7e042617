"""G-code text to one row per line: the command's kind and its X, Y, Z, E words, read in numpy.

The text is scanned as bytes: line ends, comments (``;`` to the end of the line), the command at the start of
each line (after blanks and an optional ``N`` line number) and the position of every axis letter are found by
array operations, and all the numbers of one letter are converted by a single ``numpy.fromstring`` call.
A 50 MB file reads in about a second where a regular expression with a Python tuple per line takes ten.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError

MOVE, SET, ABSOLUTE_E, RELATIVE_E, ABSOLUTE_XYZ, RELATIVE_XYZ, OTHER = 0, 1, 2, 3, 4, 5, 9
#: (letter, number) of the commands the toolpath depends on, and the kind each one is.
_KINDS = {(ord("G"), 0): MOVE, (ord("G"), 1): MOVE, (ord("G"), 92): SET, (ord("M"), 82): ABSOLUTE_E,
          (ord("M"), 83): RELATIVE_E, (ord("G"), 90): ABSOLUTE_XYZ, (ord("G"), 91): RELATIVE_XYZ}
_NUMBER_BYTES = np.zeros(256, dtype=bool)
_NUMBER_BYTES[[ord(c) for c in "0123456789.+-e"]] = True
_BLANK = np.zeros(256, dtype=bool)
_BLANK[[ord(" "), ord("\t"), ord("\r")]] = True
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[[ord(c) for c in "0123456789"]] = True
_LONGEST_NUMBER = 16  # bytes looked at after a letter; longer words are refused
_MOST_BLANKS = 200  # leading blanks skipped before a line's command


@dataclass(frozen=True)
class GcodeLines:
    """One entry per line of the text: its kind (see the constants) and its X, Y, Z, E words (NaN if absent)."""

    kind: NDArray[np.int8]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    z: NDArray[np.float64]
    e: NDArray[np.float64]


def read_lines(gcode_text: str) -> GcodeLines:
    """Every line's command kind and axis words (upper-case letters, as slicers write them)."""
    text = np.frombuffer(gcode_text.encode("ascii", errors="replace") + b"\n", dtype=np.uint8)
    # A tail of zeros lets every look-ahead below index past the last byte.
    padded = np.concatenate([text, np.zeros(_LONGEST_NUMBER + 4, dtype=np.uint8)])
    line_ends = np.flatnonzero(text == ord("\n"))
    line_starts = np.concatenate([[0], line_ends[:-1] + 1])
    comment_at = _comment_starts(text, line_ends)
    command_at = _first_word(padded, line_starts)
    command_at = _skip_line_number(padded, command_at)
    kind = _command_kinds(padded, command_at, comment_at)
    words = {letter: _words(padded, letter, line_ends, comment_at, command_at, kind) for letter in "XYZE"}
    return GcodeLines(kind, words["X"], words["Y"], words["Z"], words["E"])


def _comment_starts(text: NDArray[np.uint8], line_ends: NDArray[np.intp]) -> NDArray[np.intp]:
    """Per line, where its comment begins (its end when it has none)."""
    comment_at = line_ends.copy()
    semicolons = np.flatnonzero(text == ord(";"))
    lines = np.searchsorted(line_ends, semicolons)
    first_lines, first = np.unique(lines, return_index=True)
    comment_at[first_lines] = semicolons[first]
    return comment_at


def _first_word(padded: NDArray[np.uint8], starts: NDArray[np.intp]) -> NDArray[np.intp]:
    """Per line, the first byte after its leading blanks (slicers write none; hand-edited files a few)."""
    first = starts.copy()
    indented = np.flatnonzero(_BLANK[padded[first]])
    for _ in range(_MOST_BLANKS):
        if len(indented) == 0:
            break
        first[indented] += 1
        indented = indented[_BLANK[padded[first[indented]]]]
    return first


def _skip_line_number(padded: NDArray[np.uint8], command_at: NDArray[np.intp]) -> NDArray[np.intp]:
    numbered = np.flatnonzero(padded[command_at] == ord("N"))
    if len(numbered) == 0:
        return command_at
    # The number's digits, then the blanks before the command.
    window = padded[command_at[numbered, None] + np.arange(1, _LONGEST_NUMBER + 1)]
    digits = np.logical_and.accumulate(_DIGIT[window], axis=1).sum(axis=1)
    moved = command_at.copy()
    moved[numbered] = _first_word(padded, command_at[numbered] + 1 + digits)
    return moved


def _command_kinds(padded: NDArray[np.uint8], command_at: NDArray[np.intp],
                   comment_at: NDArray[np.intp]) -> NDArray[np.int8]:
    """Per line, the kind of its command: a letter and one to three digits (G1, G01, G92, M83), nothing after
    them but a blank, a word or the line's end (G1.5 and G100 are other commands)."""
    count = np.zeros(len(command_at), dtype=np.int64)
    number = np.zeros(len(command_at), dtype=np.int64)
    going = np.ones(len(command_at), dtype=bool)
    for offset in range(1, 5):
        byte = padded[command_at + offset]
        going &= _DIGIT[byte]
        count += going
        number = np.where(going, number * 10 + (byte.astype(np.int64) - ord("0")), number)
    plain = (count >= 1) & (count <= 3) & (padded[command_at + count + 1] != ord(".")) & (command_at < comment_at)
    letter = padded[command_at]
    kind = np.full(len(command_at), OTHER, dtype=np.int8)
    for (code_letter, code_number), code_kind in _KINDS.items():
        kind[plain & (letter == code_letter) & (number == code_number)] = code_kind
    return kind


def _words(padded: NDArray[np.uint8], letter: str, line_ends: NDArray[np.intp], comment_at: NDArray[np.intp],
           command_at: NDArray[np.intp], kind: NDArray[np.int8]) -> NDArray[np.float64]:
    """Per line, the number after ``letter`` on a G0/G1/G92 line (NaN where it has none; the last if twice)."""
    values = np.full(len(line_ends), np.nan)
    at = np.flatnonzero(padded == ord(letter))
    lines = np.searchsorted(line_ends, at)
    valid = lines < len(line_ends)
    at, lines = at[valid], lines[valid]
    wanted = (kind[lines] <= SET) & (at > command_at[lines]) & (at < comment_at[lines])
    at, lines = at[wanted], lines[wanted]
    if len(at) == 0:
        return values
    window = padded[at[:, None] + np.arange(1, _LONGEST_NUMBER + 1)]
    in_number = np.logical_and.accumulate(_NUMBER_BYTES[window], axis=1)
    length = in_number.sum(axis=1)
    if np.any(length == _LONGEST_NUMBER):
        raise InputError(f"the G-code has a {letter} word longer than {_LONGEST_NUMBER - 1} characters "
                         f"(line {int(lines[length == _LONGEST_NUMBER][0]) + 1}); is this G-code text?")
    numbered = length > 0
    at, lines, window, in_number = at[numbered], lines[numbered], window[numbered], in_number[numbered]
    # One text of the numbers alone, blank-separated, converted by numpy's C reader in one call.
    # Every number is shorter than the window, so each row ends in at least one blank: the separator.
    characters = np.where(in_number, window, np.uint8(ord(" ")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            numbers = np.fromstring(characters.tobytes().decode("ascii"), sep=" ")
        except (ValueError, DeprecationWarning) as error:
            raise InputError(f"the G-code has a malformed {letter} number ({error}); is this G-code text?") from None
    if len(numbers) != len(at):
        raise InputError(f"the G-code has a malformed {letter} number; is this G-code text?")
    values[lines] = numbers
    return values
