"""``python -m fms_dgt.report OUTPUT_DIR --html FILE`` opened in headless Chromium: the charts
render, the counts shown are the stores' counts, record text is escaped, chat records show as
conversations, nothing is loaded from the network; on a synthetic output of a few thousand
records and on a real run of an example task on the default model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.report import main
from fms_dgt.view.charts import plotly_js_path
from tests.catalogue.conftest import REPO, RunExample
from tests.view.conftest import screenshot

# the flagship simple task (seed examples, dedup and a length filter): one model call per record
CAUSAL = "tasks/core/simple/logical_reasoning/causal/task.yaml"
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def write_jsonl(path: Path, rows: Any) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
            n += 1
    return n


def count_lines(path: Path) -> int:
    return sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.exists() else 0


@pytest.fixture(scope="module")
def synthetic_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tasks: ``gen/qa`` with 3000 accepted records (one of them holding a script tag),
    400 rejections and 3 failures; ``chat`` with conversation records."""
    out = tmp_path_factory.mktemp("synthetic") / "out"
    qa = out / "gen" / "qa"

    def rec(i: int) -> dict[str, Any]:
        q = EVIL if i == 0 else f"question {i} about topic {i % 37} with {'words ' * (i % 15)}"
        return {
            "task_name": "gen/qa",
            "is_seed": False,
            "id": f"q{i}",
            "lineage": {"request_idx": i},
            "question": q,
        }

    write_jsonl(qa / "data.jsonl", (rec(i) for i in range(3000)))
    write_jsonl(qa / "final_data.jsonl", (rec(i) for i in range(2950)))
    rejections = (
        {
            "record": {**rec(10_000 + i), "lineage": {"request_idx": 3000 + i}, "question": EVIL},
            "block": "dedup" if i % 4 else "length",
            "reason": "exact duplicate" if i % 4 else f"too short: {i} < 20 chars",
            "stage": "generation",
        }
        for i in range(400)
    )
    write_jsonl(qa / "rejected.jsonl", rejections)
    write_jsonl(
        qa / "failed.jsonl", ({"stage": "engine", "error": "timeout: 300 s", "request": {}} for _ in range(3))
    )
    results = {
        "task_name": "gen/qa",
        "status": "complete",
        "target": 2950,
        "tokens": {"prompt": 9, "completion": 4},
    }
    (qa / "task_results.json").write_text(json.dumps(results))
    (qa / "task_card.json").write_text(
        json.dumps({"task_config": {"seed_examples": [{"question": "seed one?"}]}})
    )
    chat = out / "chat"
    turns = [
        {"role": "user", "content": "How do I boil an egg?"},
        {"role": "assistant", "content": "Ten minutes."},
    ]
    write_jsonl(chat / "data.jsonl", ({"id": f"c{i}", "messages": turns} for i in range(5)))
    return out


def build(out: Path, html: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([str(out), "--html", str(html)]) == 0, capsys.readouterr().err
    return html.read_text(encoding="utf-8")


def check_offline(text: str) -> None:
    """One inline script is plotly.js itself; nothing else in the page names a URL to load."""
    scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    library = plotly_js_path().read_text(encoding="utf-8")
    assert scripts[0] == library  # plotly.js, inlined verbatim (it names URLs it never loads here)
    page = text.replace(library, "")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"https?://", page), re.search(r".{40}https?://.{40}", page)
    assert not re.search(r"<script[^>]+src|<link|@import|url\(", page, flags=re.I)


def open_report(browser: Any, html: Path) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(html.as_uri())
    # plotly draws after the page has loaded; on a busy machine that can lag the load event
    drawn = """
        const charts = [...document.querySelectorAll('.dgt-chart')];
        return document.querySelector('#summary tbody tr') !== null && charts.length > 0
          && charts.every(c => c.querySelector('svg.main-svg') !== null);
    """
    try:
        WebDriverWait(browser, 60).until(lambda d: d.execute_script(drawn))
    except Exception:  # the assertions below say what is missing
        pass
    return dict(
        browser.execute_script(
            """
            const charts = [...document.querySelectorAll('.dgt-chart')];
            const counts = {};
            for (const row of document.querySelectorAll('#summary tbody tr')) {
              counts[row.dataset.task] = Object.fromEntries(
                [...row.querySelectorAll('[data-count]')].map(td => [td.dataset.count, td.textContent.trim().replaceAll(',', '')]));
            }
            return {
              charts: charts.length,
              drawn: charts.filter(c => c.classList.contains('js-plotly-plot') && c.querySelector('svg.main-svg')).length,
              traces: charts.map(c => c.querySelectorAll('g.trace').length),
              counts: counts,
              pwned: window.__pwned === undefined ? null : window.__pwned,
              network: performance.getEntriesByType('resource').map(e => e.name)
                .filter(u => !u.startsWith('file:') && !u.startsWith('data:')),
            };
            """
        )
    )


@pytest.mark.browser
def test_synthetic_output(
    browser: Any, synthetic_output: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "report.html"
    text = build(synthetic_output, html, capsys)
    check_offline(text)
    page = open_report(browser, html)
    assert page["network"] == []
    assert page["charts"] >= 6 and page["drawn"] == page["charts"], page
    assert all(n > 0 for n in page["traces"]), page["traces"]
    qa = synthetic_output / "gen" / "qa"
    assert page["counts"]["gen/qa"] == {
        "accepted": str(count_lines(qa / "data.jsonl")),
        "final": str(count_lines(qa / "final_data.jsonl")),
        "rejected": str(count_lines(qa / "rejected.jsonl")),
        "failed": str(count_lines(qa / "failed.jsonl")),
    }
    assert page["counts"]["chat"]["accepted"] == "5"
    # the record holding a script tag is shown as text and ran nothing
    assert page["pwned"] is None
    from selenium.webdriver.common.by import By

    shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".records dd")]
    assert any("<script>window.__pwned = 1</script>" in t for t in shown)
    turns = browser.find_elements(By.CSS_SELECTOR, "section[data-task='chat'] .chat .turn")
    assert [t.find_element(By.CSS_SELECTOR, ".role").text.lower() for t in turns[:2]] == ["user", "assistant"]
    assert "boil an egg" in turns[0].text
    assert screenshot(browser, "report_html_synthetic", full_page=True).stat().st_size > 10_000


def test_bad_html_path_is_a_located_error(synthetic_output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(synthetic_output), "--html", "/no/such/folder/r.html"]) == 2
    assert (
        "error: --html /no/such/folder/r.html: folder '/no/such/folder' does not exist"
        in capsys.readouterr().err
    )
    assert main([str(synthetic_output), "--html", str(synthetic_output)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main([str(synthetic_output), "--html", "/proc/r.html"]) == 2  # the write itself fails
    err = capsys.readouterr().err
    assert err.startswith("error: --html /proc/r.html: cannot write it") and "Traceback" not in err


@pytest.mark.vllm
@pytest.mark.browser
def test_real_run(
    browser: Any, run_example: RunExample, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rt, outcome = run_example(REPO / CAUSAL, target=3)
    assert outcome.status == "complete", outcome.message
    html = tmp_path / "real.html"
    text = build(rt.output_dir, html, capsys)
    check_offline(text)
    page = open_report(browser, html)
    assert page["network"] == [] and page["pwned"] is None
    assert page["charts"] >= 3 and page["drawn"] == page["charts"], page
    task_dir = rt.output_dir / "core/simple/logical_reasoning/causal"
    assert page["counts"]["core/simple/logical_reasoning/causal"] == {
        "accepted": str(count_lines(task_dir / "data.jsonl")),
        "final": str(count_lines(task_dir / "final_data.jsonl")),
        "rejected": str(count_lines(task_dir / "rejected.jsonl")),
        "failed": str(count_lines(task_dir / "failed.jsonl")),
    }
    from selenium.webdriver.common.by import By

    kept = browser.find_elements(
        By.CSS_SELECTOR, "section[data-task='core/simple/logical_reasoning/causal'] .records.kept .record"
    )
    assert len(kept) == 3
    first = json.loads((task_dir / "final_data.jsonl").read_text().splitlines()[0])
    assert first["question"].split()[0] in kept[0].text
    assert screenshot(browser, "report_html_real_run", full_page=True).stat().st_size > 10_000
