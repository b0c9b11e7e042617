"""Order ids as folder names: any text in, a name every file system takes out (or a clear refusal).

An order's ``id`` is free text ("2026-0412 skull"); a batch makes one folder per order from it.  The id may
hold path separators, ``..``, control characters, look-alike letters or Windows device names, so the folder
name is built from it by fixed rules, never used as it is:

>>> safe_folder_name("2026-0412 skull")
'2026-0412_skull'
>>> safe_folder_name("../../etc/x")
'_etc_x'
>>> safe_folder_name("CON")
'_CON'
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ParameterError

if TYPE_CHECKING:
    from .orders import Order

#: Longest folder name made from an id (a cut name ends in a digest of the whole id, so it stays unique).
MAX_FOLDER_NAME = 64
_DIGEST_CHARS = 12

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_DOTS = re.compile(r"\.{2,}")
_UNDERSCORES = re.compile("_{2,}")
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)),
                       *(f"LPT{n}" for n in range(1, 10))})


class FolderNameError(ParameterError):
    """An id no folder name can be made from (the empty id)."""


def _digest(order_id: str) -> str:
    return hashlib.sha256(order_id.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


def safe_folder_name(order_id: str) -> str:
    """The folder name of an order id: ``[A-Za-z0-9._-]`` only, at most 64 characters.

    Rules, in order: Unicode NFKC (full-width ``ＣＯＮ`` is ``CON``); every other character becomes ``_``
    (path separators, spaces, controls, look-alike letters such as Cyrillic ``а``); runs of dots become
    ``_`` (no ``..``), and runs of ``_`` one ``_``; a leading ``.`` or ``-`` becomes ``_`` (no hidden folders, no option-like names), a
    trailing ``.`` too (Windows drops it); Windows device names (``CON``, ``NUL``, ``COM1``, ``lpt9.txt``)
    get a ``_`` in front; a name with no letter or digit left is ``id-<digest>``; a name over 64 characters is
    cut and ends in ``-<digest>`` of the whole id.  Raises :class:`FolderNameError` for the empty id.

    >>> safe_folder_name("a\\nb")
    'a_b'
    >>> safe_folder_name("..")[:3], len(safe_folder_name(".."))
    ('id-', 15)
    >>> len(safe_folder_name("x" * 300))
    64
    """
    if not order_id:
        raise FolderNameError("the id is empty; give the order a name")
    name = _UNSAFE_CHARS.sub("_", unicodedata.normalize("NFKC", order_id))
    name = _UNDERSCORES.sub("_", _DOTS.sub("_", name))
    if name[0] in ".-":
        name = "_" + name[1:]
    if name.endswith("."):
        name = name[:-1] + "_"
    if not re.search("[A-Za-z0-9]", name):
        return f"id-{_digest(order_id)}"
    if name.split(".")[0].upper() in _RESERVED:
        name = "_" + name
    if len(name) > MAX_FOLDER_NAME:
        name = f"{name[:MAX_FOLDER_NAME - _DIGEST_CHARS - 1]}-{_digest(order_id)}"
    return name


def folder_names(orders: Iterable[Order]) -> dict[str, str]:
    """Each order's id -> its unique folder name; :class:`~medprint.jobs.orders.OrderError` on a clash.

    Two ids clash when they are equal, or when their folder names are equal ignoring case (macOS and
    Windows file systems do): ``A/1`` and ``a_1``.  The error names both ids and their lines.

    >>> from pathlib import Path
    >>> from medprint.jobs.orders import Order
    >>> a = Order(id="A 1", command="slice", input=Path("/data/a.stl"))
    >>> folder_names([a])
    {'A 1': 'A_1'}
    """
    from .orders import OrderError, where

    names: dict[str, str] = {}
    first: dict[str, Order] = {}
    problems: list[str] = []
    source = None
    for order in orders:
        source = source or order.source
        try:
            name = safe_folder_name(order.id)
        except FolderNameError as error:
            problems.append(f"{where(order, 'id')}: id: {error}")
            continue
        key = name.casefold()
        if key in first:
            other = first[key]
            same = "the same id as" if other.id == order.id else f"the same folder name ({name}) as"
            problems.append(f"{where(order, 'id')}: id: {order.id!r} has {same} {other.id!r} "
                            f"at {where(other, 'id')}; give each order an id of its own")
            continue
        first[key] = order
        names[order.id] = name
    if problems:
        raise OrderError(problems, source=source)
    return names
