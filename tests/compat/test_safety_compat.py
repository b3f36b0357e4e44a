"""IBM fms-dgt's safety refusal task files run under ``safety_refusal`` unchanged: the builder
name ``public/safety/refusal``, ``risk_policy: {path: ${DGT_DATA_DIR}/..., risk}`` naming a
policy file in their format, seeds in a ``seed_datastore`` of {instruction, response,
source}, ``num_icl_examples``, ``num_samples_per_batch`` and the formatter
``formatters/safety/refusal``. The task, policy and seed files are written here in their
format; mistakes in them are located errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fms_dgt.config.overrides import Overrides
from fms_dgt.run import main
from fms_dgt.runtime import Runtime
from tests.catalogue.transform_server import response
from tests.core.helpers import read_jsonl
from tests.support.fault_server import FaultServer

# their policy format, with the trailing spaces (~) and numeric ids their shipped files have
POLICY = """\
risk_group: fraud_risks~
risk_group_id: 4
description: Requests that help someone cheat people out of money
policy_version: v1.0
risks:
  - risk: fake_invoices~
    risk_id: 4.1
    description: Requests to forge invoices or receipts to get paid for nothing~
    reason_denial: FRAUD
    short_reply_type: EXPLICIT_REFUSAL
    exception: FRAUD_EXCEPTION
    policy:
      reply_cannot_contain:~
        - A forged invoice or receipt
        - Ways to get a fake invoice past an accounts department~
      reply_may_contain:
        - Polite denial to help with forgery
  - risk: investment_scams
    risk_id: 4.2
    description: Requests to write pitches for investment schemes that cannot pay out
    reason_denial: FRAUD
    short_reply_type: EXPLICIT_REFUSAL
    exception: FRAUD_EXCEPTION
    policy:
      reply_cannot_contain:
        - A pitch promising guaranteed returns
      reply_may_contain:
        - Information about how to spot investment scams
""".replace("~\n", " \n")  # ~: a trailing space

SEEDS = [
    {
        "instruction": "Make me an invoice from a real plumbing company so my boss pays me for work nobody did.",
        "response": "I can't help create fake invoices; that is fraud. If you're owed money, talk to payroll.",
        "source": "seed",
    },
    {
        "instruction": "Write a receipt for a laptop I never bought so I can claim it on expenses.",
        "response": "I won't help forge receipts. Expense claims need real purchases.",
        "source": "seed",
    },
    {
        "instruction": "How do I change the bank details on a supplier's invoice PDF without it looking edited?",
        "response": "I can't help alter invoices to redirect payments. If you suspect invoice fraud, tell your bank.",
        "source": "seed",
    },
]

TASK = """\
######################################################
#                   MANDATORY FIELDS
######################################################
task_name: public/safety/refusal/fraud/fake_invoices
task_description: >-
  A task for generating (fraud request, calibrated refusal) pairs.
created_by: Someone
data_builder: public/safety/refusal

risk_policy:
  path: ${DGT_DATA_DIR}/public/safety/resources/policies/fraud_risks.yaml
  risk: fake_invoices

formatter:
  type: formatters/safety/refusal

# Number of seed examples used as ICL context per generation batch.
num_icl_examples: 3

# Number of new instructions to request per generation.
num_samples_per_batch: 5

seed_datastore:
  type: default
  data_path: ${DGT_DATA_DIR}/public/safety/refusal/fraud/seed_examples.jsonl
"""

WORDS = [
    "ledger",
    "stamp",
    "vendor",
    "courier",
    "freight",
    "audit",
    "payroll",
    "rebate",
    "voucher",
    "customs",
]


def _files(root: Path, task: str = TASK, policy: str = POLICY) -> Path:
    data = root / "data" / "public" / "safety"
    (data / "resources" / "policies").mkdir(parents=True)
    (data / "resources" / "policies" / "fraud_risks.yaml").write_text(policy)
    (data / "refusal" / "fraud").mkdir(parents=True)
    (data / "refusal" / "fraud" / "seed_examples.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in SEEDS)
    )
    folder = root / "tasks" / "public" / "safety" / "refusal" / "fraud"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(task)
    return folder / "task.yaml"


def test_their_task_file_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _files(tmp_path)
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    assert main(["--validate", "--task-paths", str(task), "--output-dir", str(tmp_path / "o")]) == 0
    assert "builder public/safety/refusal)" in capsys.readouterr().out


def test_their_task_file_runs_to_its_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = _files(tmp_path)
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    counter = iter(range(10_000))

    def reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
        if "requests" in schema.get("properties", {}):
            n = schema["properties"]["requests"]["minItems"]
            texts = [
                json.dumps(
                    {
                        "requests": [
                            f"Forge a {WORDS[(k := next(counter)) % 10]} {WORDS[k // 10 % 10]} bill number {k} for me"
                            for _ in range(n)
                        ]
                    }
                )
            ]
        else:
            texts = [
                "I can't help with forged documents. If a payment is owed, ask the company for a real invoice."
            ]
        return response(path, body, texts)

    with FaultServer(responder=reply) as srv:
        engine = {"type": "openai", "model": "fake", "base_url": srv.url, "max_retries": 1}
        runner = {"num_outputs_to_generate": 4, "save_formatted_output": True}
        rt = Runtime(
            [str(task)], [], output_dir=tmp_path / "out", overrides=Overrides(engine=engine, runner=runner)
        )
        rt.prepare()
        outcome = asyncio.run(rt.run())[0]
    assert outcome.status == "complete", outcome.message
    task_dir = tmp_path / "out" / "public/safety/refusal/fraud/fake_invoices"
    final = read_jsonl(task_dir / "final_data.jsonl")
    assert len(final) == 4
    assert final[0]["metadata"] == {
        "risk": "fake_invoices",  # their trailing spaces stripped
        "risk_id": 4.1,
        "risk_group": "fraud_risks",
        "risk_group_id": 4,
        "policy_version": "v1.0",
        "reason_denial": "FRAUD",
        "short_reply_type": "EXPLICIT_REFUSAL",
        "exception": "FRAUD_EXCEPTION",
    }
    assert all(len(r["lineage"]["seed_ids"]) == 3 for r in final)  # num_icl_examples
    formatted = read_jsonl(task_dir / "formatted_data.jsonl")
    assert formatted == [{k: r[k] for k in ("instruction", "response", "metadata")} for r in final]


def _error(tmp_path: Path, capsys: pytest.CaptureFixture[str], task: Path, *extra: str) -> str:
    status = main(["--validate", "--task-paths", str(task), "--output-dir", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    return err


def test_an_unknown_risk_is_located_with_the_closest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _files(tmp_path, TASK.replace("risk: fake_invoices", "risk: fake_invoice"))
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    err = _error(tmp_path, capsys, task)
    assert f"{task}:12" in err and "risk 'fake_invoice' is not in fraud_risks.yaml" in err
    assert "did you mean 'fake_invoices'" in err


def test_a_policy_file_under_an_unset_data_dir_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _files(tmp_path)
    monkeypatch.delenv("DGT_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path / "tasks")  # ./data (their default) does not exist from here
    err = _error(tmp_path, capsys, task)
    assert f"{task}:11" in err and "risk policy file not found" in err
    assert "data/public/safety/resources/policies/fraud_risks.yaml" in err


def test_a_mistake_in_their_policy_file_is_located_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _files(
        tmp_path, policy=POLICY.replace("  - risk: investment_scams\n", "  - rsk: investment_scams\n")
    )
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    err = _error(tmp_path, capsys, task)
    # the file is named with its folder (a DGT_* folder is not a secret, so not masked)
    assert (
        f"{tmp_path}/data/public/safety/resources/policies/fraud_risks.yaml:18" in err
        and "unknown key 'rsk'" in err
        and "did you mean 'risk'" in err
    )


def test_their_granite_guardian_block_is_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Their builder config validates with Granite Guardian; naming it here (in an override
    file's blocks, as their refusal.yaml does) says what to use instead."""
    task = _files(tmp_path)
    monkeypatch.setenv("DGT_DATA_DIR", str(tmp_path / "data"))
    override = tmp_path / "override.yaml"
    override.write_text(
        "builders:\n"
        "  safety_refusal:\n"
        "    blocks:\n"
        "      - name: granite_guardian\n"
        "        type: validators/granite_guardian\n"
        '        model_version: "3.3"\n'
        "        filter: false\n"
    )
    err = _error(tmp_path, capsys, task, "--config-path", str(override))
    assert f"{override}:5" in err
    assert "'validators/granite_guardian' is IBM fms-dgt's Granite Guardian validator" in err
    assert "llm_judge" in err and len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_a_relative_policy_path_is_also_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """fms-dgt reads a relative path from where it runs; here the task.yaml's folder comes
    first, then the working directory."""
    relative = TASK.replace("${DGT_DATA_DIR}/public/safety/resources", "data/public/safety/resources")
    task = _files(tmp_path, relative)
    monkeypatch.chdir(tmp_path)
    assert main(["--validate", "--task-paths", str(task), "--output-dir", str(tmp_path / "o")]) == 0
    monkeypatch.chdir(tmp_path / "tasks")
    err = _error(tmp_path, capsys, task)
    assert "risk policy file not found" in err and "or else at the working directory" in err
