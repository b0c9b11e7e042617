"""A click command built from a :class:`~medprint.jobs.spec.JobSpec`: the options an order file also takes.

The command only reads the options, asks the job for conflicts (usage errors, exit 2), runs it with a
progress bar, and prints its summary or report.  ``--json`` and ``--save-order`` are the CLI's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..jobs.spec import (
    Choice,
    Custom,
    FilePath,
    Flag,
    JobSpec,
    Number,
    Opt,
    Text,
    ValueProblem,
    Whole,
)
from ..redact import terminal_safe
from ..report import to_json
from .options import BoundedInt, FiniteFloat, given, progress_reporter


def job_command(spec: JobSpec, *, name: str | None = None) -> click.Command:
    """The click command for ``spec`` (named ``name``, default the spec's last word)."""
    params: list[click.Parameter] = [
        click.Argument([spec.argument.dest], metavar=spec.argument.metavar, type=click.Path(path_type=Path)),
    ]
    params += [_click_option(opt) for opt in spec.options]
    params += [
        click.Option(["--json", "as_json"], is_flag=True, help="Print the report as JSON to stdout."),
        click.Option(["--save-order", "save_order_path"], type=click.Path(path_type=Path), default=None,
                     metavar="FILE",
                     help="Also write the order (TOML) that reproduces this run: `medprint run FILE`."),
    ]

    def callback(**values: Any) -> None:
        _run(click.get_current_context(), spec, values)

    return click.Command(name or spec.name.split()[-1], params=params, callback=callback, help=spec.help)


def _run(ctx: click.Context, spec: JobSpec, values: dict[str, Any]) -> None:
    as_json = values.pop("as_json")
    save_order_path = values.pop("save_order_path")
    ctx.ensure_object(dict)
    show_phi = bool(values.get("show_phi"))
    # Names below the input folder stay off the terminal unless --show-phi (see medprint.cli.PHI_INPUT).
    ctx.obj["phi_input"] = None if show_phi else values[spec.argument.dest]
    quiet = bool(ctx.obj.get("quiet"))
    chosen = frozenset(dest for dest in values if dest == spec.argument.dest or given(ctx, dest))
    request = spec.request(values, given=chosen)
    conflict = spec.first_conflict(request)
    if conflict is not None:
        raise click.UsageError(conflict.message, ctx=ctx)
    saved = _staged_order(spec, request, save_order_path, overwrite=bool(values.get("overwrite")))
    try:
        with progress_reporter(enabled=not as_json and not quiet) as progress:
            result = spec.run(spec.request(values, given=chosen, progress=progress))
        if saved is not None:
            _commit_order(saved, result.outputs)
    finally:
        if saved is not None:
            saved.abort()
    if as_json:
        click.echo(to_json(result.report))
        return
    if not quiet:
        for line in result.summary:
            click.echo(terminal_safe(line))
        if save_order_path is not None:
            click.echo(terminal_safe(f"order: {save_order_path}"))


def _staged_order(spec: JobSpec, request: Any, path: Path | None, *, overwrite: bool) -> Any:
    """The ``--save-order`` file, checked and written to a temporary name before the run (None: not asked).

    It is renamed into place only after the run succeeded, so a run writes its outputs and its order or
    neither (:func:`_commit_order`).
    """
    if path is None:
        return None
    from ..errors import ParameterError
    from ..io.outputs import RunOutputs
    from ..jobs.order_save import check_order_path, order_file_text

    try:
        check_order_path(path, overwrite=overwrite, spec=spec, request=request)
    except ParameterError as error:
        raise click.UsageError(str(error)) from None
    _, text = order_file_text(spec, request, path)
    saved = RunOutputs(overwrite=overwrite)
    try:
        saved.reserve(path, "--save-order")
        with saved.stage(path) as temp:
            Path(temp).write_text(text, encoding="utf-8")
    except BaseException:
        saved.abort()
        raise
    return saved


def _commit_order(saved: Any, outputs: Any) -> None:
    """Put the order file in place; if that fails, remove the run's outputs too (all or nothing)."""
    try:
        saved.commit()
    except BaseException:
        for output in outputs:
            Path(output).unlink(missing_ok=True)
        raise


def _click_option(opt: Opt) -> click.Option:
    decls = [f"-{opt.short}"] if opt.short else []
    decls.append(f"--{opt.name}/--{opt.secondary}" if opt.secondary else f"--{opt.name}")
    decls.append(opt.dest)
    common: dict[str, Any] = {"help": opt.help, "required": opt.required, "show_default": opt.show_default}
    kind = opt.kind
    if isinstance(kind, Flag):
        if opt.secondary:
            return click.Option(decls, default=bool(opt.default), **common)
        return click.Option(decls, is_flag=True, default=bool(opt.default), **common)
    common["multiple"] = opt.multiple
    # click (8.2+) takes an explicit default=None as a value: a required option would never be missing.
    if opt.default is not None:
        common["default"] = opt.default
    if opt.metavar:
        common["metavar"] = opt.metavar
    if isinstance(kind, Number):
        return click.Option(decls, type=FiniteFloat(kind.low, kind.high, low_open=kind.low_open,
                                                    high_open=kind.high_open, why=kind.why), **common)
    if isinstance(kind, Whole):
        return click.Option(decls, type=BoundedInt(kind.low, kind.high, why=kind.why), **common)
    if isinstance(kind, Choice):
        return click.Option(decls, type=click.Choice(kind.choices, case_sensitive=kind.case_sensitive), **common)
    if isinstance(kind, FilePath):
        return click.Option(decls, type=click.Path(path_type=Path), **common)
    if isinstance(kind, Text):
        return click.Option(decls, type=str, **common)
    if isinstance(kind, Custom):
        common.setdefault("metavar", kind.metavar)
        return click.Option(decls, type=str, callback=_custom_callback(opt), **common)
    raise TypeError(f"no click type for {kind!r}")


def _custom_callback(opt: Opt) -> Any:
    def parse(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or (opt.multiple and not value):
            return () if opt.multiple else None
        try:
            if opt.multiple:
                return tuple(opt.kind.parse(item) for item in value)
            return opt.kind.parse(value)
        except ValueProblem as problem:
            raise click.BadParameter(str(problem), ctx=ctx, param=param) from None

    return parse
