"""One run's output files, written together or not at all.

A :class:`RunOutputs` reserves every file a run will write before the work
starts (checked, compared with each other after resolving, and locked against
another medprint run), hands each writer a temporary file beside its target,
and renames them all into place at :meth:`RunOutputs.commit`.  If anything
fails first -- an error, Ctrl-C, a signal the CLI turns into
``KeyboardInterrupt``, a full disk -- every temporary file is removed and no
existing file has been touched.

The writers (:func:`medprint.io.write_mesh`, ``write_parts_3mf``,
``write_gcode``, ``write_report``) write through :func:`medprint.io.atomic.atomic_path`,
which joins the run that is active in the current context, so a script may
use them alone (each is then its own small transaction) or inside one run::

    with RunOutputs(overwrite=False) as run:
        run.reserve(mesh_path, "-o/--output")
        run.reserve(report_path, "report")
        write_mesh(mesh, mesh_path)
        write_report(report, report_path, overwrite=False)
        run.commit()
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ..errors import OutputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded against each other
    fcntl = None  # type: ignore[assignment]

#: A file name's limit in bytes where the file system does not say (ext4, XFS, APFS, NTFS all use 255).
DEFAULT_NAME_MAX = 255

#: The write errors that mean "the disk", not a bug: one line each, never a traceback.
_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full; free space on the disk or choose another folder",
    errno.EDQUOT: "the disk quota is used up; free space on the disk or choose another folder",
    errno.EFBIG: "the file is larger than the file system allows; free space on the disk or choose another folder",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EIO: "the disk reported an input/output error; check the disk or choose another folder",
}

_ACTIVE: contextvars.ContextVar[RunOutputs | None] = contextvars.ContextVar("medprint_run_outputs", default=None)


def name_max(folder: Path) -> int:
    """The longest file name in bytes that ``folder``'s file system accepts."""
    try:
        return int(os.pathconf(folder if str(folder) else ".", "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


def short_digest(text: str) -> str:
    """Eight hex digits that tell two names apart.

    >>> short_digest("a/b")
    'c14cddc0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def fit_name(stem: str, suffix: str, limit: int = DEFAULT_NAME_MAX) -> str:
    """``stem + suffix``, shortened deterministically to at most ``limit`` bytes.

    A name that is too long keeps its start and a short hash of the whole
    stem, so two long names stay distinct and a rerun picks the same name.

    >>> fit_name("skull", ".stl")
    'skull.stl'
    >>> fit_name("x" * 300, ".stl", 20)
    'xxxxxxx-0d4e2ca9.stl'
    """
    name = stem + suffix
    if len(name.encode("utf-8")) <= limit:
        return name
    tail = f"-{short_digest(stem)}{suffix}"
    room = max(limit - len(tail.encode("utf-8")), 1)
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore") + tail


def disk_error(error: OSError, path: Path, option: str) -> OutputError | None:
    """The one-line error for a write that failed because of the disk, or None for any other failure."""
    remedy = _DISK_ERRORS.get(error.errno or 0)
    if remedy is None:
        return None
    return OutputError(f"{option}: cannot write {path}: {remedy}")


def write_error(error: OSError, path: Path, option: str) -> OutputError:
    """The one-line error for any failed write: the disk's remedy, or the system's reason.

    A folder removed or made read-only mid-run, a permission change, a name
    taken by a folder: none is a bug in medprint, so none deserves a traceback.
    """
    known = disk_error(error, path, option)
    if known is not None:
        return known
    reason = error.strerror or type(error).__name__
    if isinstance(error, FileNotFoundError) and not Path(path).parent.is_dir():
        return OutputError(f"{option}: cannot write {path}: its folder was removed while medprint was working; "
                           "recreate the folder and run again")
    return OutputError(f"{option}: cannot write {path} ({reason}); check the output folder and run again")


def check_writable(path: Path, *, overwrite: bool, option: str = "-o/--output") -> None:
    """Fail early (before any work) when ``path`` cannot or must not be written."""
    path = Path(path)
    folder = path.parent
    limit = name_max(_existing_ancestor(folder))
    try:
        size = len(path.name.encode("utf-8"))
    except UnicodeEncodeError:
        # A name of bytes that are not UTF-8 (from the shell, $'\xff.gcode') cannot go into a report or a log.
        raise OutputError(f"{option}: the file name {path.name!r} is not valid UTF-8 text; give a plain name"
                          ) from None
    # Checked first: stat() on a name over the limit raises instead of answering.
    if size > limit:
        raise OutputError(
            f"{option}: the file name is {size} bytes long, more than the {limit} the file system allows; "
            "choose a shorter name"
        )
    if path.is_dir():
        raise OutputError(f"{option}: {path} is a folder; give the name of a file in it")
    if not folder.is_dir():
        ancestor = _existing_ancestor(folder)
        if ancestor.exists() and not ancestor.is_dir():
            raise OutputError(f"{option}: {ancestor} is a file, not a folder; choose a path in an existing folder")
        raise OutputError(f"{option}: folder {folder} does not exist; create it first")
    _refuse_special(path, option)
    if path.exists() and not overwrite:
        raise OutputError(f"{option}: {path} already exists; pass --overwrite to replace it")
    _probe_writable(folder, option)


def _refuse_special(path: Path, option: str) -> None:
    """Refuse an existing output that is a symbolic link or not a regular file.

    The new file is renamed over the name.  A device node, a FIFO or a socket
    would be replaced by a regular file (as root, ``/dev/null`` would be).  A
    symbolic link would be replaced by a file, silently breaking the link;
    writing through it instead would put a patient's model wherever the link
    points, outside the folder the user chose.  So both are refused, and the
    user names the real file.
    """
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise OutputError(f"{option}: cannot check {path} ({error.strerror}); give another file name") from None
    if stat.S_ISLNK(found.st_mode):
        raise OutputError(f"{option}: {path} is a symbolic link; medprint will not replace or write through it, "
                          "give the real file's name")
    if not stat.S_ISREG(found.st_mode) and not stat.S_ISDIR(found.st_mode):
        kind = _KINDS.get(stat.S_IFMT(found.st_mode), "not a regular file")
        raise OutputError(f"{option}: {path} is {kind}, not a regular file; medprint will not replace it, "
                          "give the name of a regular file")


#: What an existing output that is not a regular file is, for the message.
_KINDS = {
    stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


def _existing_ancestor(folder: Path) -> Path:
    # The nearest folder (or file) that exists: it decides the name limit and what to tell the user.
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe_writable(folder: Path, option: str) -> None:
    # Permission bits lie for root and read-only mounts; creating a file is the only honest test.
    with _signals_deferred():
        try:
            handle, probe = tempfile.mkstemp(prefix=".medprint-probe-", dir=folder)
        except OSError as error:
            raise OutputError(
                f"{option}: folder {folder} is not writable ({error.strerror}); choose another output folder"
            ) from None
        os.close(handle)
        os.unlink(probe)


def _resolved(path: Path) -> Path:
    # Symlinks, "./x" and "x", "a/../x": one key for one file.
    return Path(os.path.realpath(path))


@dataclass
class _Lock:
    """An advisory lock on a hidden file beside an output; the file goes when the lock does."""

    path: Path
    handle: int

    @classmethod
    def acquire(cls, target: Path, option: str) -> _Lock | None:
        if fcntl is None:
            return None
        limit = name_max(target.parent)
        lock_path = target.with_name(fit_name(f".{target.name}", ".medprint.lock", limit))
        while True:
            try:
                handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise disk_error(error, target, option) or OutputError(
                    f"{option}: cannot create a lock file beside {target} ({error.strerror}); "
                    "choose a writable folder"
                ) from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                flag = option.split("/", 1)[0] if option.startswith("-") else "-o"
                raise OutputError(
                    f"{option}: another medprint run is writing {target}; wait for it or choose another {flag}"
                ) from None
            # The holder removes the file before it lets go: make sure we locked the file that is there now.
            try:
                current = os.stat(lock_path)
                mine = os.fstat(handle)
                if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                    return cls(lock_path, handle)
            except FileNotFoundError:
                pass
            os.close(handle)

    def release(self) -> None:
        # Unlink while still holding it, so no one can lock a file that is about to vanish.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.handle)


@dataclass
class _Target:
    path: Path
    key: Path
    option: str
    lock: _Lock | None
    temp: Path | None = None


class _Deferral:
    """Stops that arrive while files are being created, renamed or removed wait until that step is whole.

    Python runs signal handlers in the main thread between two bytecodes, so a
    handler that raises can land between creating a temporary file and
    recording it.  Blocking the signal (``pthread_sigmask``) does not help: it
    only blocks the calling thread and the signal goes to one of numpy's or
    VTK's.  The CLI's handlers call :func:`stop_requested`, which raises at once
    or, inside such a step, when the step ends.
    """

    depth = 0
    pending: str | None = None
    #: Every stop asked for since the run began: a library that catches BaseException (trimesh's optional
    #: imports do) can swallow the KeyboardInterrupt, so commit() looks here before it puts files in place.
    requested: str | None = None


@contextlib.contextmanager
def _signals_deferred(*, raise_pending: bool = True) -> Iterator[None]:
    _Deferral.depth += 1
    try:
        yield
    finally:
        _Deferral.depth -= 1
        if _Deferral.depth == 0 and _Deferral.pending is not None:
            reason, _Deferral.pending = _Deferral.pending, None
            if raise_pending:
                raise KeyboardInterrupt(reason)


def stop_requested(reason: str) -> None:
    """Raise ``KeyboardInterrupt(reason)`` now, or as soon as the file step under way is whole.

    For signal handlers (the CLI's SIGINT, SIGTERM and SIGHUP): a run then
    removes its temporary files and locks, never leaving one half-recorded.
    """
    _Deferral.requested = reason
    if _Deferral.depth > 0:
        _Deferral.pending = reason
        return
    raise KeyboardInterrupt(reason)


def stop_was_requested() -> str | None:
    """The reason of a stop asked for since :func:`forget_stop` (None when there was none)."""
    return _Deferral.requested


def forget_stop() -> None:
    """Start a new command with no stop on record (the CLI calls it as it installs its signal handlers)."""
    _Deferral.requested = None
    _Deferral.pending = None


@contextlib.contextmanager
def outside_run() -> Iterator[None]:
    """Write scratch files (an external engine's input) at once, not staged with the active run's outputs."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current_run() -> RunOutputs | None:
    """The :class:`RunOutputs` active in this context, if any."""
    return _ACTIVE.get()


class RunOutputs:
    """The files of one run: reserved up front, staged beside their targets, committed together.

    Parameters
    ----------
    overwrite : bool
        Existing files may be replaced -- only at :meth:`commit`, never earlier.

    Use it as a context manager; leaving the block without :meth:`commit`
    (an exception, ``KeyboardInterrupt``) removes every temporary file and
    lock and leaves the targets as they were.
    """

    def __init__(self, *, overwrite: bool) -> None:
        self.overwrite = overwrite
        self._targets: list[_Target] = []
        self._token: contextvars.Token[RunOutputs | None] | None = None
        self._closed = False

    def __enter__(self) -> RunOutputs:
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
        if not self._closed:
            self.abort()

    @property
    def paths(self) -> list[Path]:
        """The reserved targets, in the order they were reserved."""
        return [target.path for target in self._targets]

    def reserve(self, path: Path, option: str) -> Path:
        """Check ``path`` (writable, not a folder, not taken by another output of this run) and lock it.

        ``option`` names the output in messages (``-o/--output``, ``--gcode``, ``report``).
        """
        path = Path(path)
        check_writable(path, overwrite=self.overwrite, option=option)
        key = _resolved(path)
        for target in self._targets:
            if target.key == key:
                raise OutputError(
                    f"{option}: {path} is also the {target.option} file; give each output its own name"
                )
        # Held so that a signal cannot fall between creating the lock file and recording it.
        with _signals_deferred():
            self._targets.append(_Target(path, key, option, _Lock.acquire(path, option)))
        return path

    @contextlib.contextmanager
    def stage(self, path: Path) -> Iterator[Path]:
        """Yield a temporary file beside ``path`` for a writer; it is renamed into place at :meth:`commit`."""
        target = self._target(Path(path))
        if target.temp is not None:
            target.temp.unlink(missing_ok=True)
            target.temp = None
        limit = name_max(target.path.parent)
        # mkstemp adds 8 characters; the temporary name must fit the file system as the target does.
        prefix = fit_name(f".{target.path.name}", ".", limit - 8 - len(".part"))
        # A signal between creating the file and recording it would leave it behind: hold signals meanwhile.
        with _signals_deferred():
            try:
                handle, temp_name = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=target.path.parent)
            except OSError as error:
                raise write_error(error, target.path, target.option) from None
            os.close(handle)
            target.temp = Path(temp_name)
        try:
            yield target.temp
        except OSError as error:
            raise write_error(error, target.path, target.option) from None

    def staged_file(self, path: Path) -> Path | None:
        """The temporary file staged for ``path`` (what :meth:`commit` will put there), or None if none is.

        Outputs built from another output (a DICOM object that encapsulates the STL) read its exact bytes here.
        """
        key = _resolved(Path(path))
        for target in self._targets:
            if target.key == key:
                return target.temp
        return None

    def commit(self) -> None:
        """Rename every staged file into place; then release the locks.

        A stop that arrives while the files are being put in place comes too
        late to undo them: the run finishes, whole, and the stop is dropped.
        A stop that came earlier and was swallowed on its way (a library that
        catches every exception) still stops the run here, before any file is
        put in place.
        """
        if _Deferral.requested is not None:
            raise KeyboardInterrupt(_Deferral.requested)
        with _signals_deferred(raise_pending=False):
            staged = [target for target in self._targets if target.temp is not None]
            if not self.overwrite:
                for target in staged:
                    if target.path.exists():
                        raise OutputError(
                            f"{target.option}: {target.path} appeared while this run was working; "
                            "pass --overwrite to replace it"
                        )
            for target in staged:
                # A device, FIFO or link may have been put there since reserve() looked.
                _refuse_special(target.path, target.option)
            placed: list[_Target] = []
            try:
                for target in staged:
                    assert target.temp is not None
                    os.chmod(target.temp, 0o644)
                    existed = target.path.exists()
                    os.replace(target.temp, target.path)
                    target.temp = None
                    if not existed:
                        placed.append(target)
            except OSError as error:
                # Undo what this run added, so the run stays all-or-nothing for new files.
                for done in placed:
                    done.path.unlink(missing_ok=True)
                raise write_error(error, target.path, target.option) from None
            self._release()

    def abort(self) -> None:
        """Remove every temporary file and lock; targets stay as they were."""
        # A stop during the clean-up changes nothing: the run is being abandoned already.
        with _signals_deferred(raise_pending=False):
            for target in self._targets:
                if target.temp is not None:
                    target.temp.unlink(missing_ok=True)
                    target.temp = None
            self._release()

    def _release(self) -> None:
        for target in self._targets:
            if target.lock is not None:
                target.lock.release()
                target.lock = None
        self._closed = True

    def _target(self, path: Path) -> _Target:
        key = _resolved(path)
        for target in self._targets:
            if target.key == key:
                return target
        self.reserve(path, "-o/--output")
        return self._targets[-1]
