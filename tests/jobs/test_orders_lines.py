"""The TOML line index: keys found at their lines, also past multi-line strings and arrays."""

from __future__ import annotations

import tomllib

from medprint.jobs.order_lines import TomlLines

TEXT = '''\
id = "a"              # line 1
notes = """
smooth = 99
"""
seed = [
  [1, 2, 3],
  [4, 5, 6],
]
"quoted key" = 1
provenance.ward = "b"
'literal' = 2

[defaults]
printer = "x"

[[order]]
id = "first"

[[order]]
id = "second"
[order.provenance]
indication = "c"
'''


def test_keys_are_found_at_their_lines_and_not_inside_multi_line_values():
    tomllib.loads(TEXT)  # the text is valid TOML
    index = TomlLines.of(TEXT)
    assert index.line("id") == 1 and index.line("notes") == 2 and index.line("seed") == 5
    assert ("smooth",) not in index.lines  # inside the notes string
    assert index.line("quoted key") == 9 and index.line("provenance", "ward") == 10 and index.line("literal") == 11
    assert index.line("defaults", "printer") == 14
    assert index.line("order", 0, "id") == 17 and index.line("order", 1, "id") == 20
    assert index.line("order", 1, "provenance", "indication") == 22


def test_a_key_not_in_the_text_falls_back_to_its_table():
    index = TomlLines.of(TEXT)
    assert index.line("order", 1, "output") == 19
    assert index.line("defaults", "material") == 13
    assert index.line("nowhere") == 1


def test_an_array_element_on_a_line_of_its_own_is_no_table_header():
    text = 'labels = [\n  ["a"],\n  ["b"]\n]\npreset = "bone"  # a [comment]\nseed = "[" \nsmooth = 3\n'
    tomllib.loads(text)
    index = TomlLines.of(text)
    assert index.line("preset") == 5 and index.line("seed") == 6 and index.line("smooth") == 7
    assert ("b",) not in index.lines
