"""Order ids as folder names: hostile ids give safe, unique names, or a refusal that names both lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medprint.jobs.order_ids import FolderNameError
from medprint.jobs.orders import Order, OrderError, folder_names, safe_folder_name

SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}

HOSTILE = [
    "../../etc/x", "/abs", "a\nb", "CON", "con.txt", "..", ".", ".hidden", "-rf", "x" * 300, "ａｂｃ",  # full width
    "ＣＯＮ", "аbc",  # Cyrillic а
    "a\x00b", "trailing.", "a b\tc", "\u202egnp.exe", "C:\\Windows", "日本語", "LPT9",
]


def order(order_id: str, line: int) -> Order:
    return Order(id=order_id, command="slice", input=Path("/data/a.stl"), source=Path("batch.toml"),
                 lines={"id": line, "": line - 1})


@pytest.mark.parametrize("order_id", HOSTILE)
def test_a_hostile_id_gives_a_name_every_file_system_takes(order_id):
    name = safe_folder_name(order_id)
    assert SAFE.fullmatch(name), name
    assert ".." not in name and not name.endswith(".")
    assert len(name) <= 64
    assert name.split(".")[0].upper() not in RESERVED
    assert name not in (".", "..")


def test_hostile_ids_get_unique_names_or_a_refusal_for_those_that_share_one():
    orders = [order(order_id, line) for line, order_id in enumerate(HOSTILE, start=2)]
    with pytest.raises(OrderError) as refused:
        folder_names(orders)
    # "a\x00b" and "a\nb" are both a_b; "ＣＯＮ" is "CON" once normalised: refused, naming the first's line.
    assert len(refused.value.problems) == 2
    assert all("has the same folder name" in problem for problem in refused.value.problems)
    rest = [o for o in orders if o.id not in ("a\x00b", "ＣＯＮ")]
    names = folder_names(rest)
    assert len({name.casefold() for name in names.values()}) == len(rest)


def test_a_plain_id_keeps_its_readable_shape():
    assert safe_folder_name("2026-0412 skull") == "2026-0412_skull"
    assert safe_folder_name("A-1.v2") == "A-1.v2"
    assert safe_folder_name("../../etc/x") == "_etc_x"
    assert safe_folder_name("ＣＯＮ") == "_CON"      # NFKC first: the look-alike is the device name
    assert safe_folder_name("con.txt") == "_con.txt"


def test_a_long_id_is_cut_with_a_digest_of_the_whole_id():
    one, other = "x" * 300, "x" * 299 + "y"
    assert len(safe_folder_name(one)) == 64
    assert safe_folder_name(one) != safe_folder_name(other)
    assert safe_folder_name(one).startswith("x" * 51 + "-")


def test_the_empty_id_is_refused():
    with pytest.raises(FolderNameError, match="empty"):
        safe_folder_name("")


def test_folder_names_maps_each_id_to_its_name():
    assert folder_names([order("A 1", 3), order("B/2", 7)]) == {"A 1": "A_1", "B/2": "B_2"}


@pytest.mark.parametrize("first, second", [
    ("A-1", "A-1"),            # the same id
    ("a/b", "a b"),            # the same name after sanitising
    ("Case-1", "case-1"),      # names that differ only in case share a folder on macOS and Windows
    ("ｃａｓｅ", "case"),       # a full-width look-alike
])
def test_ids_that_would_share_a_folder_are_refused_naming_both_lines(first, second):
    with pytest.raises(OrderError) as refused:
        folder_names([order(first, 3), order("other", 9), order(second, 12)])
    [problem] = refused.value.problems
    assert problem.startswith("batch.toml:12: id: ") and "batch.toml:3" in problem
    assert repr(first) in problem and repr(second) in problem
