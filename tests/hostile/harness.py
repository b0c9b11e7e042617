"""The one way every hostile case is judged: the safe outcome, asserted whole.

A refused input must give the expected exit code, exactly one line on stderr
that starts with ``medprint: error:`` and names the file or option (and, where
asked, the fix), no traceback, and no file left in the output folder -- hidden
temporary files included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from medprint.cli import cli

#: What a traceback or a raw Python error looks like on a terminal.
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"|Error: .*\n\s+at ", re.MULTILINE)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(*args: object) -> Outcome:
    """Run ``medprint ARGS`` in-process; unexpected exceptions are captured, not raised."""
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return Outcome(result.exit_code, result.stdout, result.stderr, exception)


def files_in(folder: Path) -> set[str]:
    """Every file below ``folder`` (hidden ones too), relative names."""
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()}


def assert_refused(
    outcome: Outcome,
    *,
    mentions: Sequence[str] = (),
    exit_code: int = 1,
    out_dir: Path | None = None,
    files_before: Iterable[str] = (),
) -> str:
    """Assert the safe outcome of a refused run and return its one error line.

    ``mentions``: strings the error line must contain (case-insensitive), such
    as the file name, the option and a word of the remedy.  ``out_dir``: the
    folder the run would have written to; nothing but ``files_before`` may be
    left in it.
    """
    assert outcome.exception is None, f"uncaught {type(outcome.exception).__name__}: {outcome.exception}"
    assert not _TRACEBACK.search(outcome.stderr + outcome.stdout), outcome.stderr
    assert outcome.exit_code == exit_code, (outcome.exit_code, outcome.stderr, outcome.stdout)
    errors = [line for line in outcome.error_lines if line.startswith("medprint: error:")]
    assert len(errors) == 1, f"want one error line, got: {outcome.stderr!r}"
    line = errors[0]
    for word in mentions:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    assert "\x1b" not in outcome.stderr and "\r" not in outcome.stderr, repr(outcome.stderr)
    if out_dir is not None:
        left = files_in(out_dir) - set(files_before)
        assert not left, f"files left behind: {sorted(left)}"
    return line


def assert_succeeded(outcome: Outcome) -> None:
    assert outcome.exception is None, f"uncaught {type(outcome.exception).__name__}: {outcome.exception}"
    assert outcome.exit_code == 0, (outcome.exit_code, outcome.stderr, outcome.stdout)
    assert not _TRACEBACK.search(outcome.stderr), outcome.stderr
