"""The report's scrubbing of file paths and names (hospitals often name files after the patient)."""

import logging
import threading

from medprint.report import Scrubber, collected_warnings


def test_scrubber_replaces_whole_names_longest_first():
    scrub = Scrubber({"/data/Doe_John/ct": "<input>", "ct": "<input>", "Doe_John_0004.dcm": "<input file>",
                      "0004": "<input file>", "Doe_John": "<input folder>"})
    assert scrub("skipped Doe_John_0004.dcm (in /data/Doe_John/ct)") == "skipped <input file> (in <input>)"
    # Inside another word it stays; digits-only and short names are no names (the same digits are measurements).
    assert scrub("Doe_Johnson took 0004 s; ct scan") == "Doe_Johnson took 0004 s; ct scan"
    assert scrub("folder Doe_John.") == "folder <input folder>."
    assert Scrubber({})("anything") == "anything"


def test_collected_warnings_are_scrubbed_and_only_this_threads():
    log = logging.getLogger("medprint")
    with collected_warnings(Scrubber({"Doe_Jane.nii.gz": "<labels>"})) as warnings:
        log.warning("Doe_Jane.nii.gz: label 'liver' is empty")
        log.info("not a warning")
        other = threading.Thread(target=lambda: log.warning("another run's Smith_B.nii"))
        other.start()
        other.join()
    log.warning("after the run")
    assert warnings == ["<labels>: label 'liver' is empty"]
