"""The viewer in a real browser (headless Chromium from the OS packages, driven by Selenium):
on a real-model run's output (one small task on the session's vLLM engine) and on a run
against a fake server that has rejections by two filters, failures and records holding
markup. Each page looked at is saved as a screenshot under tests/artifacts/screenshots/."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fms_dgt.ledger import reason_kind
from tests.catalogue.conftest import SHARED_ENGINE
from tests.view.conftest import screenshot
from tests.view.viewer_support import STUB_TASK, ViewerServer, lines, stub_run

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
REAL_TASK = "examples/prompt/science_quiz"
REAL_TASK_FILE = REPO / "tasks/examples/prompt/task.yaml"


def _wait(driver: Any, css: str, timeout: float = 20) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _css(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def _total(driver: Any) -> int:
    return int(_wait(driver, "#total").text)


def _apply(driver: Any) -> None:
    """Submit the filter form and wait for the new page (reading #total before it arrives
    would read the old page's count)."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = _wait(driver, "#records")
    _wait(driver, "#apply").click()
    WebDriverWait(driver, 20).until(ec.staleness_of(old))
    _wait(driver, "#records")


def _search(driver: Any, text: str) -> None:
    box = _wait(driver, "#search")
    box.clear()
    box.send_keys(text)
    _apply(driver)


def _no_errors(driver: Any) -> None:
    """Nothing blocked or broken: no console error (a CSP violation is one)."""
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, severe


@pytest.fixture(scope="module")
def real_run(vllm_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of one example task (target 5) on the default model, through the session's
    engine."""
    from fms_dgt.config.overrides import Overrides
    from fms_dgt.runtime import Runtime

    base = tmp_path_factory.mktemp("viewer_real")
    out = base / "out"
    # the example task plus a filter that the model's questions trip about half the time, so
    # the run has rejections to filter by (seed questions all start with "Why")
    task = yaml.safe_load(REAL_TASK_FILE.read_text())
    task["filters"] = [
        {"name": "no_why", "type": "regex", "fields": ["question"], "must_not_match": "^(Why|why)"}
    ]
    (base / "task").mkdir()
    (base / "task" / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    overrides = Overrides(engine=dict(SHARED_ENGINE), runner={"num_outputs_to_generate": 5})
    rt = Runtime([str(base / "task" / "task.yaml")], [], output_dir=out, overrides=overrides)
    rt.prepare()
    outcome = asyncio.run(rt.run())[0]
    assert outcome.status == "complete", outcome
    return out


@pytest.fixture(scope="module")
def real_server(real_run: Path) -> Iterator[ViewerServer]:
    with ViewerServer(real_run) as srv:
        yield srv


@pytest.mark.vllm
def test_a_real_run_in_the_browser(browser: Any, real_server: ViewerServer, real_run: Path) -> None:
    task_dir = real_run / REAL_TASK
    counts = {
        s: len(lines(task_dir / f"{s}.jsonl")) for s in ("data", "final_data", "formatted_data", "rejected")
    }
    assert counts["data"] >= 5

    browser.get(f"{real_server.url}/?token={real_server.token}")
    row = _wait(browser, "tr[data-task]")
    assert row.get_attribute("data-task") == REAL_TASK
    for store, n in counts.items():
        cell = row.find_element("css selector", f'td[data-count="{store}"]').text
        assert cell == (str(n) if (task_dir / f"{store}.jsonl").exists() else "–"), store
    assert _css(browser, "progress")[0].get_attribute("value") == "1"
    screenshot(browser, "viewer_real_overview")

    row.find_element("css selector", "a").click()  # the token now travels as a cookie
    _wait(browser, "#task-status")
    assert "complete" in browser.find_element("css selector", "#task-status").text
    assert (
        "***" in browser.find_element("css selector", "#task-card").text
        or "api_key" not in browser.page_source
    )
    screenshot(browser, "viewer_real_task", full_page=True)

    # records, 2 a page: the count, then page 2
    browser.get(f"{real_server.url}/records?t={REAL_TASK}&store=data&size=2")
    assert _total(browser) == counts["data"]
    first_page = [a.text for a in _css(browser, "#records tbody td:nth-child(2)")]
    _wait(browser, "#next").click()
    assert _wait(browser, "#page-no").text == "2"
    second_page = [a.text for a in _css(browser, "#records tbody td:nth-child(2)")]
    data = lines(task_dir / "data.jsonl")
    assert first_page + second_page == [r["id"] for r in data[: len(first_page) + len(second_page)]]
    screenshot(browser, "viewer_real_records_page2", full_page=True)

    # search a word of the first record's question
    word = max(data[0]["question"].split(), key=len).strip("?.,!")
    _search(browser, word)
    want = sum(any(word.lower() in text.lower() for text in _strings(r)) for r in data)
    assert _total(browser) == want >= 1
    screenshot(browser, "viewer_real_search", full_page=True)

    # filter by rejection reason (counts against the file)
    rejected = lines(task_dir / "rejected.jsonl")
    assert rejected, "the run rejected nothing: the filter by reason is not exercised"
    for reason, n in Counter(reason_kind(r["reason"]) for r in rejected).items():
        browser.get(f"{real_server.url}/records?t={REAL_TASK}&store=rejected")
        _choose(browser, "#f2", reason)
        _apply(browser)
        assert _total(browser) == n
        shown = [td.text for td in _css(browser, "#records td.reason")]
        assert len(shown) == min(n, 25) and all(reason in text for text in shown)
    screenshot(browser, "viewer_real_rejected_by_reason", full_page=True)

    # one record: its lineage and the seed examples it came from
    browser.get(f"{real_server.url}/records?t={REAL_TASK}&store=data")
    _wait(browser, "#records tbody a").click()
    lineage = _wait(browser, "#lineage").text
    assert "SmolLM2" in lineage and "icl_ids" in lineage
    examples = _css(browser, "#icl .icl")
    assert examples and all("seed example" in e.text or "#" in e.text for e in examples)
    screenshot(browser, "viewer_real_record", full_page=True)

    if counts["formatted_data"]:  # a chat formatter's output renders as a conversation
        browser.get(f"{real_server.url}/record?t={REAL_TASK}&store=formatted_data&i=0")
        roles = [m.get_attribute("class") for m in _css(browser, ".chat .msg")]
        assert any("role-user" in r for r in roles) and any("role-assistant" in r for r in roles)
        screenshot(browser, "viewer_real_conversation", full_page=True)

    browser.get(f"{real_server.url}/compare?t={REAL_TASK}")
    assert len(_css(browser, "#seeds .card")) >= 3 and len(_css(browser, "#synthetic .card")) >= 1
    screenshot(browser, "viewer_real_compare", full_page=True)

    browser.get(f"{real_server.url}/charts?t={REAL_TASK}")
    _wait(browser, ".plot .main-svg", timeout=30)
    assert len(_css(browser, ".plot .main-svg")) >= 1
    screenshot(browser, "viewer_real_charts", full_page=True)
    _no_errors(browser)


def _strings(value: Any) -> list[str]:
    """Every string value in a record, nested ones included (what a search looks at)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _choose(driver: Any, css: str, label: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_wait(driver, css)).select_by_value(label)


@pytest.fixture(scope="module")
def stub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ViewerServer, Path]]:
    root = stub_run(tmp_path_factory.mktemp("viewer_browser_stub"))
    with ViewerServer(root) as srv:
        yield srv, root / STUB_TASK


def test_rejections_failures_and_markup_in_the_browser(
    browser: Any, stub_server: tuple[ViewerServer, Path]
) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    srv, task_dir = stub_server
    rejected = lines(task_dir / "rejected.jsonl")
    browser.get(f"{srv.url}/task?t={STUB_TASK}&token={srv.token}")
    facets = _wait(browser, "#facets-rejected").text
    for block in {r["block"] for r in rejected}:
        assert block in facets
    screenshot(browser, "viewer_stub_task", full_page=True)

    by_reason = Counter(reason_kind(r["reason"]) for r in rejected)
    for reason, n in by_reason.items():
        browser.get(f"{srv.url}/records?t={STUB_TASK}&store=rejected")
        _choose(browser, "#f2", reason)
        _apply(browser)
        assert _total(browser) == n
        assert all(reason in td.text for td in _css(browser, "#records td.reason"))
    screenshot(browser, "viewer_stub_rejected_by_reason", full_page=True)

    # records holding <script> and an onerror image show as text and run nothing
    browser.get(f"{srv.url}/records?t={STUB_TASK}&store=data&q=script")
    assert _total(browser) >= 1
    assert "<script>alert" in _css(browser, "#records td.preview")[0].text
    try:
        _ = browser.switch_to.alert
        raise AssertionError("a record's markup ran")
    except NoAlertPresentException:
        pass
    assert not _css(browser, "#records img")
    screenshot(browser, "viewer_stub_markup_as_text", full_page=True)

    browser.get(f"{srv.url}/records?t={STUB_TASK}&store=failed")
    assert _total(browser) == len(lines(task_dir / "failed.jsonl"))
    assert "401" in _wait(browser, "#records td.reason").text
    screenshot(browser, "viewer_stub_failed", full_page=True)
    _no_errors(browser)
