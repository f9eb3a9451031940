"""The HTML report in headless Chromium: it opens with no console error and no network request,
shows the expected counts, filters by judge score and status, never runs a response's <script>,
shows two runs side by side on one prompt, ties study figures to the sample browser, shows the
human study, and a 5,000-sample report loads within a measured bound."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import chromium
from report_helpers import (
    SCRIPT_RESPONSE,
    finish_reason,
    harm_score,
    pairwise_judge,
    response_tokens,
    write_human_study,
    write_pairwise,
    write_run,
    write_sweep,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from eft_eval.cli import main
from eft_eval.testing import LoopbackServer

pytestmark = pytest.mark.slow  # a real browser
WAIT_S = 30
# Measured on a shared 2-core machine: a 5,000-sample report renders to
# HTML in ~4 s and opens in Chromium (JSON parsed, first page drawn) in ~1 s; filtering all
# 5,000 takes well under 0.5 s. The bounds leave room for a loaded machine.
LOAD_BOUND_S = 10.0
FILTER_BOUND_S = 3.0


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium(WAIT_S, capture_logs=True) as driver:
        yield driver


def _open(driver: WebDriver, html: Path) -> None:
    driver.get_log("performance")  # drop what the browser's own start page requested
    driver.get_log("browser")
    driver.get(html.resolve().as_uri())
    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _assert_clean(driver: WebDriver, page: Path) -> None:
    """No console error, no CSP violation, no request but the page's own file."""
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        url = message["params"]["request"]["url"] if message["method"] == "Network.requestWillBeSent" else None
        # chrome: is the browser's own start page; a data: URL is inline bytes, never the network.
        if url is not None and not url.startswith(("chrome:", "data:")):
            requested.append(url)
    assert requested == [page.resolve().as_uri()], [url[:120] for url in requested]
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


def _matching(driver: WebDriver) -> int:
    return int(driver.find_element(By.ID, "match-count").get_attribute("data-matching") or -1)


def _filter(driver: WebDriver, text: str) -> None:
    box = driver.find_element(By.ID, "filter")
    box.clear()
    box.send_keys(text)


def _visible_rows(driver: WebDriver) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, "#sample-rows tr.sample")


def test_run_report_counts_filters_and_escapes(browser: WebDriver, tmp_path: Path) -> None:
    # Judged under the judge's former name: the report shows `harm`, and both names filter.
    run = write_run(tmp_path / "run-a", 0, 12, harm_name="harmlessness", failed_docs=(3,), script_doc=2, lengths=True)
    html = tmp_path / "report.html"
    assert main(["report", str(run), "--html", str(html)]) == 0
    _open(browser, html)
    _assert_clean(browser, html)

    assert _matching(browser) == 12 and len(_visible_rows(browser)) == 12
    results = browser.find_element(By.ID, "results-table").text
    assert "harm" in results and "lower is better" in results and "higher is better" in results

    # The response holding a <script> is shown as text and never ran.
    assert browser.execute_script("return window.__pwned") is None
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#sample-rows .response")]
    assert any("<script>window.__pwned = 1;" in c and "<b>bold?</b>" in c for c in cells)
    assert SCRIPT_RESPONSE.split("<!--")[0].strip() in "\n".join(cells)

    expected = sum(1 for doc in range(12) if doc != 3 and harm_score(0, doc) > 30)
    assert 0 < expected < 11
    for text in ("harm > 30", "harmlessness > 30", "HARM>30"):
        _filter(browser, text)
        assert _matching(browser) == expected and len(_visible_rows(browser)) == expected
    _filter(browser, "failed")
    assert _matching(browser) == 1 and len(_visible_rows(browser)) == 1
    _filter(browser, "harm > 30 and helpfulness <= 40")
    both = sum(1 for doc in range(12) if doc != 3 and harm_score(0, doc) > 30 and (doc * 11) % 100 <= 40)
    assert _matching(browser) == both
    _filter(browser, "harm >> 3")  # unreadable: says so, and shows no rows rather than the last filter's
    error = browser.find_element(By.ID, "filter-error")
    assert error.is_displayed() and "harm >> 3" in error.text
    assert _matching(browser) == 0 and _visible_rows(browser) == []
    assert browser.find_element(By.ID, "match-count").text.startswith("0 of 12")
    _filter(browser, "harm > 30 and helpfulness <= 40")  # readable again: its rows, the error gone
    assert _matching(browser) == both and not error.is_displayed()

    # A row opens to the judges' reasoning; sorting by harm puts the highest first.
    _filter(browser, "")
    browser.find_element(By.CSS_SELECTOR, 'th[data-sort="judge:harm"]').click()
    first = _visible_rows(browser)[0]
    assert first.find_elements(By.CSS_SELECTOR, "td")[1].text == str(max(range(12), key=lambda d: -1 if d == 3
                                                                         else harm_score(0, d)))
    first.click()
    assert "harm reasoning run 0" in browser.find_element(By.CSS_SELECTOR, "#sample-rows tr.detail:not([hidden])").text
    assert browser.get_log("browser") == []

    # Response lengths: the column shows tokens and why each response ended; `truncated` and `length > N` filter.
    _filter(browser, "truncated")
    cut = [doc for doc in range(12) if finish_reason(doc) == "length"]
    assert _matching(browser) == len(cut) == 3 and not browser.find_element(By.ID, "filter-error").is_displayed()
    assert {row.find_element(By.CSS_SELECTOR, "td.length").text for row in _visible_rows(browser)} == {"256\nlength"}
    _filter(browser, "length > 200")
    assert _matching(browser) == sum(1 for doc in range(12) if response_tokens(doc) > 200) == 4
    _filter(browser, "truncated and harm > 30")
    assert _matching(browser) == sum(1 for doc in cut if doc != 3 and harm_score(0, doc) > 30)
    _filter(browser, "tokens <= 40")
    assert _matching(browser) == sum(1 for doc in range(12) if response_tokens(doc) <= 40)
    browser.find_element(By.CSS_SELECTOR, 'th[data-sort="tokens"]').click()
    assert [row.find_element(By.CSS_SELECTOR, "td.length").text for row in _visible_rows(browser)][0] == "0\nstop"
    _filter(browser, "length < 100")  # a stop string that ended a response shows quoted
    texts = [row.find_element(By.CSS_SELECTOR, "td.length").text for row in _visible_rows(browser)]
    assert f"{response_tokens(2)}\n" + json.dumps("\n\nHuman:") in texts


def test_two_runs_side_by_side_on_one_prompt(browser: WebDriver, tmp_path: Path) -> None:
    runs = [write_run(tmp_path / name, index, 5) for index, name in enumerate(("eft-up", "small-ft"))]
    html = tmp_path / "both.html"
    assert main(["report", *map(str, runs), "--html", str(html)]) == 0
    _open(browser, html)
    assert _matching(browser) == 10
    browser.find_element(By.ID, "view-side").click()
    groups = browser.find_elements(By.CSS_SELECTOR, "#side-view .prompt-group")
    assert len(groups) == 5
    first = groups[0]
    assert "Prompt number 0:" in first.find_element(By.CSS_SELECTOR, "p.text").text
    cells = first.find_elements(By.CSS_SELECTOR, ".side-cell")
    assert [c.find_element(By.TAG_NAME, "h5").text for c in cells] == ["eft-up", "small-ft"]
    assert "Run 0 answer 0" in cells[0].text and "Run 1 answer 0" in cells[1].text
    # Filtering keeps prompts where any run matches; the other run stays visible, dimmed.
    _filter(browser, "harm > 25")
    shown = browser.find_elements(By.CSS_SELECTOR, "#side-view .prompt-group")
    wanted = {doc for doc in range(5) for run in (0, 1) if harm_score(run, doc) > 25}
    assert 0 < len(shown) == len(wanted) < 5
    assert browser.find_elements(By.CSS_SELECTOR, "#side-view .side-cell.nomatch")
    _assert_clean(browser, html)


def test_study_figures_filter_the_sample_browser(browser: WebDriver, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", n_docs=6)
    html = tmp_path / "study.html"
    assert main(["report", str(sweep), "--html", str(html)]) == 0
    _open(browser, html)
    _assert_clean(browser, html)
    assert _matching(browser) == 18
    assert len(browser.find_elements(By.CSS_SELECTOR, "#frontier-table tbody tr")) == 3
    # Click the alpha=0.5 frontier point: the browser shows that run's 6 responses only.
    point = browser.find_element(By.CSS_SELECTOR, '#frontier-figure g[id="frontier__run1"]')
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", point)
    assert _matching(browser) == 6
    assert {r.find_element(By.TAG_NAME, "td").text for r in _visible_rows(browser)} == {"alpha=0.5"}
    assert browser.find_element(By.ID, "focus-banner").is_displayed()
    browser.find_element(By.ID, "focus-clear").click()
    assert _matching(browser) == 18
    # A scaling bar (config alpha=1.0 is the third run) does the same.
    bar = browser.find_element(By.CSS_SELECTOR, '#scaling-figure g[id="scaling__run2"]')
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", bar)
    assert {r.find_element(By.TAG_NAME, "td").text for r in _visible_rows(browser)} == {"alpha=1.0"}
    # And so does a row of the top-p table.
    row = browser.find_element(By.CSS_SELECTOR, '#top-p-table tr[data-run="0"] td')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.click()
    assert {r.find_element(By.TAG_NAME, "td").text for r in _visible_rows(browser)} == {"alpha=0.0"}
    assert browser.get_log("browser") == []


def test_pairs_side_by_side_with_both_verdicts_and_their_reasoning(browser: WebDriver, tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", n_docs=6, lengths=True)
    with LoopbackServer(pairwise_judge()) as server:
        folder = write_pairwise(sweep, server.base_url)
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
    html = tmp_path / "pairs.html"
    assert main(["report", str(sweep), "--html", str(html)]) == 0
    _open(browser, html)
    _assert_clean(browser, html)
    assert browser.find_element(By.ID, "pair-count").text == "12 pairs"
    cards = browser.find_elements(By.CSS_SELECTOR, "#pair-list .pair-card")
    assert len(cards) == 10  # a page
    first, pair = cards[0], pairs[0]
    sides = first.find_elements(By.CSS_SELECTOR, ".pair-sides")[0].find_elements(By.CSS_SELECTOR, ".side-cell")
    assert [side.find_element(By.CSS_SELECTOR, ".response").text for side in sides] == [
        pair["response"], pair["reference_response"]]
    # Side by side: the reference's response to the right of the run's, on the same line.
    assert sides[1].location["x"] > sides[0].location["x"] and sides[1].location["y"] == sides[0].location["y"]
    verdicts = first.find_elements(By.CSS_SELECTOR, ".pair-judgment .verdict")
    judgment = pair["judgments"]["preference"]
    assert [v.find_element(By.CSS_SELECTOR, ".verdict-line").text.split()[1] for v in verdicts] == [
        judgment["verdicts"]["first"]["verdict"], judgment["verdicts"]["swapped"]["verdict"]]
    assert [v.find_element(By.CSS_SELECTOR, ".reason").text for v in verdicts] == [
        judgment["verdicts"]["first"]["reason"], judgment["verdicts"]["swapped"]["reason"]]
    # Only the pairs whose verdict changed with the order, then only one run's.
    browser.find_element(By.ID, "pair-flipped").click()
    flipped = [p for p in pairs if p["judgments"]["preference"]["consistent"] is False]
    assert 0 < len(flipped) < 12 and browser.find_element(By.ID, "pair-count").text == f"{len(flipped)} pairs"
    assert all("changed with the order" in card.text for card in browser.find_elements(By.CSS_SELECTOR, ".pair-card"))
    browser.find_element(By.ID, "pair-flipped").click()
    Select(browser.find_element(By.ID, "pair-run")).select_by_value("alpha=1.0")
    assert browser.find_element(By.ID, "pair-count").text == "6 pairs"
    # The win-rate table's rows filter the sample browser to their run, as every study table does.
    row = browser.find_element(By.CSS_SELECTOR, '#pairwise-table-0-preference tr[data-run="2"] td')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.click()
    assert {r.find_element(By.TAG_NAME, "td").text for r in _visible_rows(browser)} == {"alpha=1.0"}
    assert browser.get_log("browser") == []


def test_human_study_report_shows_disagreements(browser: WebDriver, tmp_path: Path) -> None:
    project, adjudication = write_human_study(tmp_path)
    out = tmp_path / "report"
    assert main(["human-study", "report", str(project), "--adjudication", str(adjudication), "--out", str(out)]) == 0
    html = out / "report.html"
    _open(browser, html)
    _assert_clean(browser, html)
    table = browser.find_element(By.ID, "agreement-table").text
    assert "Judge-human agreement rate 0.600 ±" in table and "Cohen's kappa" in table
    assert browser.find_element(By.ID, "confusion-matrix").find_elements(By.TAG_NAME, "svg")
    assert browser.find_element(By.ID, "annotator-figure").find_elements(By.TAG_NAME, "svg")
    disagreements = browser.find_elements(By.CSS_SELECTOR, "article.disagreement")
    assert len(disagreements) == 2
    texts = "\n".join(d.text for d in disagreements)
    # Each with the judge's reasoning (shown as text, its <script> inert), both annotators and the gold label.
    assert "judge reasoning for doc 2 <script>window.__pwned = 1</script>" in texts
    assert "alice" in texts and "bob" in texts and "gold: error" in texts
    assert browser.execute_script("return window.__pwned") is None


def test_5000_sample_report_loads_within_bound(browser: WebDriver, tmp_path: Path) -> None:
    # Responses of ~1,000 characters and reasonings of ~400, as a real run's.
    run = write_run(tmp_path / "big", 0, 5000, failed_docs=tuple(range(0, 5000, 50)), long=True)
    html = tmp_path / "big.html"
    started = time.perf_counter()
    assert main(["report", str(run), "--html", str(html)]) == 0
    rendered = time.perf_counter() - started
    started = time.perf_counter()
    _open(browser, html)
    WebDriverWait(browser, WAIT_S).until(lambda d: _matching(d) == 5000)
    loaded = time.perf_counter() - started
    assert len(_visible_rows(browser)) == 50  # one page of rows, not 5,000
    started = time.perf_counter()
    browser.execute_script("var f = document.getElementById('filter'); f.value = 'harm > 50';"
                           "f.dispatchEvent(new Event('input'));")
    expected = sum(1 for doc in range(5000) if doc % 50 and harm_score(0, doc) > 50)
    WebDriverWait(browser, WAIT_S).until(lambda d: _matching(d) == expected)
    filtered = time.perf_counter() - started
    size_mb = html.stat().st_size / 1e6
    print(f"\n5000-sample report: {size_mb:.1f} MB, rendered in {rendered:.2f} s, opened in {loaded:.2f} s, "
          f"filtered in {filtered:.3f} s")
    assert loaded < LOAD_BOUND_S and filtered < FILTER_BOUND_S
    _assert_clean(browser, html)
