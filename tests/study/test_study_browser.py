"""Headless Chromium clicks through one item of a real Potato page; eft-eval imports the click."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from study_helpers import judged_sample, write_samples

from eft_eval.cli import main
from eft_eval.study._potato import PotatoServer

pytestmark = pytest.mark.slow  # a real browser against a real Potato server

WAIT_S = 120  # every wait below is for a condition; this is only how long before giving up
JUDGE_MARKER = "JUDGE-REASON-MUST-STAY-HIDDEN"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium(WAIT_S) as driver:
        yield driver


@pytest.fixture
def served_project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    records = [judged_sample(i, "eft-up", score=float(i % 2)) for i in range(2)]
    for record in records:
        record["judgments"]["factuality"]["reason"] = JUDGE_MARKER
    samples = write_samples(tmp_path / "samples.jsonl", records)
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", "2", "--out", str(project)]) == 0
    server = PotatoServer(project, log_file=tmp_path / "potato.log")
    server.start()
    try:
        yield project, server.url
    finally:
        server.stop()


def _click(driver: WebDriver, element_id: str) -> None:
    element = WebDriverWait(driver, WAIT_S).until(EC.presence_of_element_located((By.ID, element_id)))
    # Potato styles radios as cards: the input may be covered by its label, which is what a person clicks.
    labels = driver.find_elements(By.CSS_SELECTOR, f'label[for="{element_id}"]')
    target = labels[0] if labels and labels[0].is_displayed() else element
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
    target.click()
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, element_id).is_selected())


def _shown_item(driver: WebDriver) -> str:
    return str(driver.find_element(By.NAME, "instance_id").get_attribute("value"))


def test_chromium_clicks_through_one_item(browser: WebDriver, served_project: tuple[Path, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    project, url = served_project
    browser.get(url + "/")
    browser.find_element(By.ID, "register-tab").click()
    email = WebDriverWait(browser, WAIT_S).until(EC.visibility_of_element_located((By.ID, "register-email")))
    email.send_keys("chromium-annotator")
    browser.find_element(By.ID, "register-pass").send_keys("correct-horse")
    browser.find_element(By.CSS_SELECTOR, "#register-content button[type=submit]").click()
    WebDriverWait(browser, WAIT_S).until(EC.element_to_be_clickable((By.ID, "next-btn")))

    first = _shown_item(browser)
    items = {json.loads(line)["id"]: json.loads(line)
             for line in (project / "data/items.jsonl").read_text().splitlines()}
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert items[first]["query"] in page_text and items[first]["response"] in page_text
    assert JUDGE_MARKER not in browser.page_source  # the judge's verdict never reaches the page
    assert "count the <strong>factual errors</strong>" in browser.page_source  # the template's instructions

    _click(browser, "num_errors_2_radio")
    _click(browser, "any_error_yes_radio")
    browser.find_element(By.ID, "next-btn").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: _shown_item(d) != first)

    # What the clicks stored, in Potato's own state file.
    state = json.loads((project / "annotation_output/chromium-annotator/user_state.json").read_text())
    stored = {(e[0]["schema"], e[0]["name"]) for e in state["instance_id_to_label_to_value"][first]}
    assert stored == {("num_errors", "2"), ("any_error", "yes")}

    # One of two items done: a plain import refuses, naming the file and the unfinished item.
    second = next(i for i in items if i != first)
    assert main(["human-study", "import", str(project)]) == 2
    error = capsys.readouterr().err
    assert "chromium-annotator/user_state.json" in error and second in error
    assert main(["human-study", "import", str(project), "--allow-partial"]) == 0
    labels = {json.loads(line)["item_id"]: json.loads(line)
              for line in (project / "labels.jsonl").read_text().splitlines()}
    assert labels[first]["label"] is True and labels[first]["answers"][0]["error_count"] == 2
    assert labels[second]["label"] is None and labels[second]["answers"] == []
