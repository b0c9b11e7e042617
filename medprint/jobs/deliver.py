"""Options every job shares for what goes to people and systems: the HTML sign-off report, the DICOM
Encapsulated STL with its identity, and sending it to a PACS.

The options are defined once here and added to each job's options; :func:`extra_outputs` turns a request's
values into the :class:`~medprint.deliver.ExtraOutput` objects the run writes with its other files, and
:func:`send_written` sends the DICOM objects once the run has committed them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..deliver.products import ExtraOutput
from ..io.dicom_identity import IdentityOptions, IdentitySource
from ..io.pacs import (
    DEFAULT_CALLING_AET,
    PacsAddress,
    check_ae_title,
    parse_pacs_address,
)
from .spec import (
    Choice,
    Conflict,
    Custom,
    FilePath,
    JobRequest,
    Opt,
    Text,
    ValueProblem,
)

REPORT_FORMATS = ("json", "html")


def _address(text: str) -> PacsAddress:
    try:
        return parse_pacs_address(text)
    except ValueError as error:
        raise ValueProblem(str(error)) from None


def _address_value(value: Any) -> PacsAddress:
    # A script's value (or one read back while an order is saved) may already be an address.
    if isinstance(value, PacsAddress):
        return value
    raise ValueProblem(f"{value!r}: write it as text, AET@HOST:PORT")


def _ae_title(text: str) -> str:
    # Checked with the other options, before the run: not only at the send, after the work.
    try:
        return check_ae_title(text)
    except ValueError as error:
        raise ValueProblem(str(error)) from None


REPORT_FORMAT = Opt("report", "report_format", Choice(REPORT_FORMATS),
                    "json: the JSON report beside the output; html: also a self-contained HTML sign-off report "
                    "(<stem>.report.html) with pictures of the scan, the model and the layers.",
                    default="json", show_default=True)
DICOM_STL = Opt("dicom-stl", "dicom_stl_path", FilePath("output"),
                "Also write the part as a DICOM Encapsulated STL object (.dcm) for the patient's record, "
                "with the source series' patient, study and frame of reference.")
SOURCE = Opt("source", "source_path", FilePath("input"),
             "The DICOM series the input was made from: identity and frame of reference for --dicom-stl, "
             "and the scan under the model in --report html.")
SOURCE_SERIES = Opt("source-series", "source_series", Text(),
                    "With --source: which series of the folder (number or UID, as medprint info lists them).")
IDENTITY_OPTIONS = (
    Opt("patient-name", "patient_name", Text(), "With --dicom-stl: Patient's Name (DICOM PN, e.g. DOE^JANE) "
        "when the input carries none (NIfTI, NRRD), or to override it."),
    Opt("patient-id", "patient_id", Text(), "With --dicom-stl: Patient ID."),
    Opt("patient-birth-date", "patient_birth_date", Text(), "With --dicom-stl: Patient's Birth Date, YYYYMMDD."),
    Opt("patient-sex", "patient_sex", Choice(("M", "F", "O")), "With --dicom-stl: Patient's Sex."),
    Opt("study-uid", "study_uid", Text(), "With --dicom-stl: Study Instance UID of the study it belongs to."),
    Opt("accession-number", "accession_number", Text(), "With --dicom-stl: Accession Number."),
    Opt("study-description", "study_description", Text(), "With --dicom-stl: Study Description."),
)
# format_value: an order (--save-order) keeps the address as the text it was given in.
SEND = Opt("send", "send_to", Custom(_address, metavar="AET@HOST:PORT", parse_value=_address_value,
                                     format_value=str),
           "After the run, send the DICOM objects it wrote (--dicom-stl) to this PACS by C-STORE.")
CALLING_AET = Opt("calling-aet", "calling_aet", Custom(_ae_title, metavar="AET"),
                  "With --send: medprint's own AE title, as the PACS knows it.",
                  default=DEFAULT_CALLING_AET, show_default=True)

#: For jobs whose input is the scan (convert, design implant): its DICOM series gives the identity.
SCAN_DELIVERY = (REPORT_FORMAT, DICOM_STL, *IDENTITY_OPTIONS, SEND, CALLING_AET)
#: For jobs whose input may be a mesh (the other designs): --source names the series.
PART_DELIVERY = (REPORT_FORMAT, DICOM_STL, SOURCE, SOURCE_SERIES, *IDENTITY_OPTIONS, SEND, CALLING_AET)
#: For slice: the G-code's report.
GCODE_DELIVERY = (REPORT_FORMAT,)


def identity_options(v: Any) -> IdentityOptions:
    return IdentityOptions(**{opt.dest: v.get(opt.dest) for opt in IDENTITY_OPTIONS})


def delivery_conflicts(request: JobRequest) -> list[Conflict]:
    """What the delivery options refuse together (checked with the job's own conflicts)."""
    v, conflicts = request.values, []
    if v.get("report_format") == "html" and v.get("no_report"):
        conflicts.append(Conflict("--report html and --no-report: the HTML report shows the JSON report's "
                                  "numbers; drop one of them", ("report", "no-report")))
    if v.get("send_to") is not None and v.get("dicom_stl_path") is None:
        conflicts.append(Conflict("--send sends the DICOM objects this run writes; add --dicom-stl OUT.dcm",
                                  ("send",)))
    if request.was_given("calling_aet") and v.get("send_to") is None:
        conflicts.append(Conflict("--calling-aet is used only with --send; add --send AET@HOST:PORT",
                                  ("calling-aet",)))
    # --source also names the scan an HTML report shows under a part designed on a mesh.
    needs_dicom = IDENTITY_OPTIONS if v.get("report_format") == "html" else (*IDENTITY_OPTIONS, SOURCE, SOURCE_SERIES)
    named = [opt for opt in needs_dicom if v.get(opt.dest) is not None]
    if named and v.get("dicom_stl_path") is None:
        flags = ", ".join(f"--{opt.name}" for opt in named)
        conflicts.append(Conflict(f"{flags}: only with --dicom-stl (the DICOM object is the only file that "
                                  "carries identity); add --dicom-stl OUT.dcm", tuple(opt.name for opt in named)))
    if v.get("source_series") is not None and v.get("source_path") is None:
        conflicts.append(Conflict("--source-series needs --source FOLDER", ("source-series",)))
    return conflicts


def extra_outputs(v: Any, main_output: Path, *, scan_input: Path | None = None) -> tuple[ExtraOutput, ...]:
    """The extra outputs a request asks for.

    The DICOM identity (and the scan an HTML report shows under a part designed on a mesh) comes from
    ``--source`` when given, else from ``scan_input``, the job's input when it is a scan (its series:
    ``v["series"]``, for jobs that have the option).
    """
    if v.get("source_path") is not None:
        source = IdentitySource(v["source_path"], v.get("source_series"), identity_options(v))
    else:
        source = IdentitySource(scan_input, v.get("series"), identity_options(v), option="INPUT")
    extras: list[ExtraOutput] = []
    if v.get("report_format") == "html":
        from ..deliver.html_output import HtmlReport, html_report_path
        extras.append(HtmlReport(html_report_path(main_output), source=source if scan_input is None else None))
    if v.get("dicom_stl_path") is not None:
        from ..deliver.dicom_output import DicomStl
        extras.append(DicomStl(v["dicom_stl_path"], source))
    return tuple(extras)


def send_written(v: Any, extras: Sequence[ExtraOutput]) -> tuple[str, ...]:
    """Send the DICOM objects the run's extra outputs wrote when --send was given; the lines to print.

    Called after the run has committed its files: a PACS that fails raises PacsError (exit 1) and the local
    files stay.
    """
    address = v.get("send_to")
    if address is None:
        return ()
    from ..deliver.dicom_output import DicomStl
    from ..io.pacs import PacsError, send_files
    dicom = [path for extra in extras if isinstance(extra, DicomStl) for path in extra.written]
    calling_aet = v.get("calling_aet") or DEFAULT_CALLING_AET
    try:
        return send_files(dicom, address, calling_aet=calling_aet)
    except PacsError as error:
        # Exit 1 usually means nothing was written; here the run's files are all there and stay.
        again = ["medprint", "send", *map(str, dicom), "--to", str(address)]
        if calling_aet != DEFAULT_CALLING_AET:
            again += ["--calling-aet", calling_aet]
        raise PacsError(f"{error} (the run's files are written and kept: send them later with "
                        f"`{shlex.join(again)}`)") from None


def written_by(extras: Sequence[ExtraOutput]) -> tuple[Path, ...]:
    """Every file the extra outputs wrote, in order."""
    return tuple(path for extra in extras for path in extra.written)


def delivery_lines(extras: Sequence[ExtraOutput]) -> tuple[str, ...]:
    """The lines a command prints for its extra outputs (``html report: X``, ``DICOM: Y``)."""
    from ..deliver.dicom_output import DicomStl
    return tuple(f"{'DICOM' if isinstance(extra, DicomStl) else 'html report'}: {path}"
                 for extra in extras for path in extra.written)


def with_delivery_conflicts(check: Any) -> Any:
    """A job's ``check`` extended with :func:`delivery_conflicts`."""
    def checked(request: JobRequest) -> list[Conflict]:
        return list(check(request)) + delivery_conflicts(request)
    checked.__doc__ = check.__doc__
    return checked
