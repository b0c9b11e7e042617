"""The ``medprint`` command: a thin layer over the library.

Every subcommand parses options, calls the same public functions a script
would, and prints a summary.  Deliberate errors (:class:`MedprintError`)
become one line on stderr and exit code 1; tracebacks only with ``--debug``.

Ctrl-C, SIGTERM and SIGHUP all stop a run the same way: the run's temporary
files are removed, ``medprint: aborted`` is printed and the exit code is 1
(as it has always been for Ctrl-C), so a scheduler that stops a job and a
user who presses Ctrl-C see one outcome.

Whatever medprint writes to stderr (log records, the error line) passes one
net: names from below the input folder are replaced by stand-ins unless
``--show-phi`` (a subcommand registers its input under :data:`PHI_INPUT` in
``ctx.obj``), and control characters are escaped so one record is one line.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import MedprintError
from .redact import Scrubber, names_below, terminal_safe

log = logging.getLogger("medprint")

EXIT_ERROR = 1
EXIT_USAGE = 2

#: ``ctx.obj`` key under which a subcommand registers the input whose inner names stay off the terminal;
#: it leaves it unset (or None) under ``--show-phi``.
PHI_INPUT = "phi_input"
_SCRUBBER = "phi_scrubber"


class MedprintGroup(click.Group):
    """Turns library errors into one clear line instead of a traceback."""

    # click overloads main() on standalone_mode; this one always runs non-standalone and exits itself.
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        previous = _stop_signals_interrupt()
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
            if _stop_on_record():
                # The stop was swallowed on its way (a library catching every exception): still a stop.
                raise KeyboardInterrupt
            # Non-standalone click returns ctx.exit(code)'s code instead of exiting with it.
            if isinstance(result, int) and not isinstance(result, bool) and result != 0:
                sys.exit(result)
            return result
        except KeyboardInterrupt:
            # Raised outside click's own handling (e.g. while it tears the context down).
            click.echo("medprint: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("medprint: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except click.UsageError as error:
            # One line, as for every other bad input; click's usage block is noise here.
            hint = f" (see {error.ctx.command_path} --help)" if error.ctx else ""
            click.echo(terminal_safe(f"medprint: error: {error.format_message()}{hint}"), err=True)
            sys.exit(EXIT_USAGE)
        finally:
            _restore_signals(previous)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        _register_commands([cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_commands()
        return [name for name in COMMAND_MODULES if name in self.commands] + sorted(
            name for name in self.commands if name not in COMMAND_MODULES)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedprintError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"medprint: error: {for_terminal(str(error))}", err=True)
            sys.exit(EXIT_ERROR)
        except MemoryError:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("medprint: error: out of memory; crop the scan or use a machine with more RAM", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=MedprintGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medprint")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Turn CT and MRI scans into printer-ready 3D models."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug or verbose >= 2
    ctx.obj["quiet"] = quiet
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    _configure_logging(level)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, so redirections (and test runners) see the logs."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _TerminalFormatter(logging.Formatter):
    """``medprint: LEVEL: message`` on one line, through :func:`for_terminal`."""

    def format(self, record: logging.LogRecord) -> str:
        # Tracebacks of logged exceptions are left out: --debug shows them when the error is raised.
        return f"medprint: {record.levelname}: {for_terminal(record.getMessage())}"


def for_terminal(message: str) -> str:
    """A message as stderr may show it: inner input names scrubbed (unless --show-phi), control characters escaped.

    Applies at every verbosity: -v and -vv are pasted into tickets as often as
    warnings are.
    """
    return terminal_safe(_current_scrubber()(message))


def _current_scrubber() -> Callable[[str], str]:
    """The scrubber of the running command, made once, when the first message needs it."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if not isinstance(obj, dict) or obj.get(PHI_INPUT) is None:
        return _unchanged
    if _SCRUBBER not in obj:
        # The path the user typed may be named; only what lies below it is private.
        obj[_SCRUBBER] = Scrubber(names_below(Path(obj[PHI_INPUT])))
    scrub: Callable[[str], str] = obj[_SCRUBBER]
    return scrub


def _unchanged(text: str) -> str:
    return text


def _log_python_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
    line: str | None = None,
) -> None:
    """A library's Python warning as a medprint record (-v): through the net, on one line, not raw on stderr.

    pydicom and numpy word their warnings for programmers, and some quote header
    values verbatim; the user needs the record, not the source line.
    """
    log.info("%s: %s", category.__name__, message)


def _configure_logging(level: int) -> None:
    # The CLI owns the terminal: Python's own warning printer would bypass the net.
    warnings.showwarning = _log_python_warning
    logger = logging.getLogger("medprint")
    # Warnings always reach the logger, for the JSON report; stderr shows what the user asked for.
    logger.setLevel(min(level, logging.WARNING))
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        logger.addHandler(handler)
    handler.setFormatter(_TerminalFormatter())
    handler.setLevel(level)


_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _interrupt(signum: int, frame: object) -> None:
    # One stop is enough: a second signal must not cut the clean-up short.
    for stop in _STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    reason = signal.Signals(signum).name
    if _Loading.active:
        _Loading.pending = reason
        return
    # Not imported here: it would load numpy at start-up. Until a run has loaded it, no file step can be under way.
    outputs = sys.modules.get("medprint.io.outputs")
    if outputs is None:
        raise KeyboardInterrupt(reason)
    outputs.stop_requested(reason)


def _stop_on_record() -> bool:
    outputs = sys.modules.get("medprint.io.outputs")
    return outputs is not None and outputs.stop_was_requested() is not None


def _stop_signals_interrupt() -> dict[int, Any]:
    """Make Ctrl-C, SIGTERM and SIGHUP stop a run alike, so it removes its temporary files."""
    outputs = sys.modules.get("medprint.io.outputs")
    if outputs is not None:
        outputs.forget_stop()  # tests run many commands in one process
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for stop in _STOP_SIGNALS:
        # A signal the parent chose to ignore (nohup, a background job's Ctrl-C) stays ignored.
        if signal.getsignal(stop) is not signal.SIG_IGN:
            previous[stop] = signal.signal(stop, _interrupt)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for stop, handler in previous.items():
        signal.signal(stop, handler)


class _Loading:
    """While the subcommands load: an exception raised inside VTK's module set-up crashes the process
    (segmentation fault), so a stop then waits until the imports are done."""

    active = False
    pending: str | None = None


#: One module per subcommand in medprint/commands/ (the module is named as its command), in --help's order.
COMMAND_MODULES = (
    "info", "convert", "design", "check", "profiles", "slice", "run", "batch", "report", "dicom-stl", "send",
)


def _register_commands(names: Sequence[str] = COMMAND_MODULES) -> None:
    # One module per subcommand (medprint/commands/), all sharing this group's error handling.  Only the
    # command being run is imported (a resumed batch should not pay for VTK), inside cli.main, so Ctrl-C while
    # numpy and friends load is handled like any other.
    missing = [name for name in names if name in COMMAND_MODULES and name not in cli.commands]
    if not missing:
        return
    _Loading.active = True
    try:
        modules = [import_module(f"medprint.commands.{name.replace('-', '_')}") for name in missing]
    finally:
        _Loading.active = False
    if _Loading.pending is not None:
        reason, _Loading.pending = _Loading.pending, None
        raise KeyboardInterrupt(reason)
    for module in modules:
        cli.add_command(module.command)


def main(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; tests call it with a list of arguments."""
    try:
        cli.main(args=list(args) if args is not None else None, prog_name="medprint")
    except KeyboardInterrupt:
        click.echo("medprint: aborted", err=True)
        sys.exit(EXIT_ERROR)
