"""Where each key of a TOML file is: ``tomllib`` gives values, not positions, and an order's errors need lines.

The index is built from the text alone: ``[table]`` and ``[[array]]`` headers and ``key =`` lines (keys
bare, quoted or dotted), skipping the inside of multi-line strings.  A key is found by its path from the
top of the document, the n-th ``[[order]]`` table counted from 0:

>>> index = TomlLines.of('id = "a"\\n[[order]]\\ninput = "x"\\n[[order]]\\n[order.provenance]\\nward = "b"\\n')
>>> index.line("id"), index.line("order", 0, "input"), index.line("order", 1, "provenance", "ward")
(1, 3, 6)
>>> index.line("order", 1, "output")     # not there: the line of the nearest table that is
4
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|' r"'[^']*'"
_KEY_PART = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY_PART)
_TRIPLE = re.compile(r'"""|\'\'\'')

Path = tuple[str | int, ...]


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\]|\\.)*"|' r"'[^']*'|#.*")


def _bracket_balance(text: str) -> int:
    """``[`` minus ``]`` outside strings and comments."""
    bare = _STRING_OR_COMMENT.sub("", text)
    return bare.count("[") - bare.count("]")


def _parts(dotted: str) -> list[str]:
    parts = []
    for match in _PART.finditer(dotted):
        text = match.group(0)
        parts.append(text[1:-1] if text[0] in "\"'" else text)
    return parts


def key_of_line(line: str) -> str | None:
    """The (dotted) key a ``key = value`` line sets, or None."""
    found = _KEY.match(line)
    return ".".join(_parts(found.group(1))) if found else None


@dataclass
class TomlLines:
    """Line numbers (from 1) of a TOML text's keys and tables, by path."""

    lines: dict[Path, int] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str) -> TomlLines:
        index = cls()
        counts: dict[tuple[str, ...], int] = {}
        table: Path = ()
        in_string: str | None = None
        depth = 0  # open brackets of a multi-line array: its lines are values, not headers
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if depth > 0:
                depth += _bracket_balance(line)
                continue
            header = _HEADER.match(line)
            if header is not None:
                names = _parts(header.group(2))
                if header.group(1) == "[[":
                    counts[tuple(names)] = counts.get(tuple(names), -1) + 1
                table = index._table_path(names, counts)
                index.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key is not None:
                index.lines.setdefault(table + tuple(_parts(key.group(1))), number)
                rest = line[key.end():]
                triples = _TRIPLE.findall(rest)
                if len(triples) % 2 == 1:
                    in_string = triples[0]
                else:
                    depth = max(0, _bracket_balance(rest))
        return index

    @staticmethod
    def _table_path(names: list[str], counts: dict[tuple[str, ...], int]) -> Path:
        # [order.provenance] after [[order]] belongs to the last order table: insert its index.
        path: list[str | int] = []
        for depth, name in enumerate(names, start=1):
            path.append(name)
            count = counts.get(tuple(names[:depth]))
            if count is not None:
                path.append(count)
        return tuple(path)

    def line(self, *path: str | int) -> int:
        """The line of ``path``; else the first line of a key below it (``a.b = 1`` or ``[a.b]`` for ``a``);
        else of its nearest enclosing table that has one; else 1."""
        found = self.lines.get(tuple(path))
        if found is not None:
            return found
        below = [line for key, line in self.lines.items() if len(key) > len(path) and key[:len(path)] == path]
        if below:
            return min(below)
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return 1
