"""The sign-off pages in a real browser: headless Chromium driven by selenium opens the reports of convert,
design and slice from file://, and every image loads, the console stays clean, the patient directions are there.

Screenshots go to /tmp/html/ (one per page) for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path("/tmp/html")

pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="needs Chromium and chromedriver (Debian: chromium, chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module; the driver's path is given, so selenium-manager downloads nothing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkey = pytest.MonkeyPatch()
    monkey.setenv("SE_OFFLINE", "true")  # and should selenium-manager run anyway, it stays offline
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1280,1000",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        monkey.undo()


def _open(driver: Any, page: Path, name: str) -> dict[str, Any]:
    driver.get_log("browser")  # what earlier pages logged is not this page's
    driver.get(page.resolve().as_uri())
    facts = driver.execute_script("""
        const images = Array.from(document.images);
        return {
          complete: images.every(i => i.complete),
          widths: images.map(i => i.naturalWidth),
          shown: images.map(i => i.getBoundingClientRect().width),
          text: document.body.innerText,
          letters: Array.from(document.querySelectorAll('.orientation')).map(e => e.textContent),
          height: document.documentElement.scrollHeight,
          inputs: Array.from(document.querySelectorAll('.sign-off input, .sign-off textarea')).length,
        };""")
    facts["log"] = driver.get_log("browser")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1280, min(int(facts["height"]) + 40, 8000))
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    return facts


def _check(facts: dict[str, Any], *, least_images: int, letters: str) -> None:
    assert len(facts["widths"]) >= least_images
    assert facts["complete"] and all(width > 0 for width in facts["widths"]), facts["widths"]
    assert all(width > 50 for width in facts["shown"]), facts["shown"]  # laid out, not collapsed
    errors = [entry for entry in facts["log"] if entry.get("level") == "SEVERE"]
    assert errors == [], errors
    for letter in letters:
        assert letter in facts["letters"], (letter, facts["letters"])
    assert facts["inputs"] >= 7  # reviewer, role, date, three decisions, comments


def test_convert_report_in_chromium(browser: Any, converted_sample) -> None:
    facts = _open(browser, converted_sample.html, "convert")
    _check(facts, least_images=7, letters="APLRSI")
    assert "Segmentation over the scan" in facts["text"] and "Sign-off" in facts["text"]


def test_design_report_in_chromium(browser: Any, labelled_box) -> None:
    facts = _open(browser, labelled_box.html, "design-label")
    _check(facts, least_images=3, letters="APLRSI")
    assert "No scan given" in facts["text"]


def test_implant_report_in_chromium(browser: Any, implant_on_phantom) -> None:
    facts = _open(browser, implant_on_phantom.html, "design-implant")
    _check(facts, least_images=10, letters="APLRSI")
    assert "The part on its anatomy" in facts["text"]


def test_slice_report_in_chromium(browser: Any, sliced_box) -> None:
    facts = _open(browser, sliced_box.html, "slice")
    _check(facts, least_images=1, letters="")
    assert "Print time" in facts["text"] and "prusa-mk4" in facts["text"]


def test_page_prints_to_pdf_with_its_pages_broken_before_the_figures(browser: Any, converted_sample) -> None:
    """Printed by Chromium (A4, print CSS): the big figure sections start pages, so there are several."""
    import base64
    import re

    browser.get(converted_sample.html.resolve().as_uri())
    pdf = base64.b64decode(browser.print_page())
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert 3 <= pages <= 12, pages  # scan, model, numbers and parameters, sign-off
    (SCREENSHOTS / "convert.pdf").write_bytes(pdf)
