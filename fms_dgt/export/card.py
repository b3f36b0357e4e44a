"""The dataset card (``README.md``) of an export: YAML front matter as the Hugging Face Hub
reads it, then how the data was made.

Front matter: ``license``, ``task_categories`` (from the fine-tuning format's training task,
else text generation), ``size_categories`` (the Hub's buckets), ``tags`` and ``configs``:
``default`` (final_data, a ``data_files`` entry per split) and, when the task wrote
formatted data, ``finetune``. The body: the task's description and owner, the models and
their sampling settings, counts per split, rejections by block and reason, the figures of
``python -m fms_dgt.report``, the training config's warnings, and the task configuration as
the task card holds it, redacted again here (environment values and secret-looking keys).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from fms_dgt.config.env import redact_all, redacted_config
from fms_dgt.report import render

if TYPE_CHECKING:
    from fms_dgt.export.folder import ExportResult

HUB_TASK_CATEGORY = {
    "text-generation": "text-generation",
    "summarization": "summarization",
    "extractive-question-answering": "question-answering",
}
SIZE_BUCKETS = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
]
ENGINE_KEYS_HIDDEN = {"name", "type", "class_path", "base_url", "api_key", "api_key_env"}


def size_category(n: int) -> str:
    for limit, label in SIZE_BUCKETS:
        if n < limit:
            return label
    return "n>100M"


def front_matter(
    result: ExportResult, data_files: dict[str, str], finetune_files: dict[str, str], license: str
) -> dict[str, Any]:
    task = (result.training or {}).get("task")
    configs: list[dict[str, Any]] = [
        {
            "config_name": "default",
            "default": True,
            "data_files": [{"split": s, "path": p} for s, p in data_files.items()],
        }
    ]
    if finetune_files:
        configs.append(
            {
                "config_name": "finetune",
                "data_files": [{"split": s, "path": p} for s, p in finetune_files.items()],
            }
        )
    return {
        "license": license,
        "task_categories": [HUB_TASK_CATEGORY.get(str(task), "text-generation")],
        "size_categories": [size_category(sum(result.rows.values()))],
        "tags": ["synthetic", "fms_dgt"],
        "pretty_name": result.task_name,
        "configs": configs,
    }


def _engines(card: dict[str, Any]) -> list[str]:
    blocks = {
        b.get("name"): b
        for b in (card.get("builder_config") or {}).get("blocks") or []
        if isinstance(b, dict)
    }
    lines = ["| engine | kind | model | settings |", "|---|---|---|---|"]
    for engine in card.get("engines") or []:
        spec = blocks.get(engine.get("name"), {})
        settings = {k: v for k, v in spec.items() if k not in ENGINE_KEYS_HIDDEN}
        shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in settings.items()) or "defaults"
        model = engine.get("model") or "the default model"
        lines.append(f"| {engine.get('name')} | {engine.get('kind')} | {model} | {shown} |")
    return lines if len(lines) > 2 else ["(the task card names no engine)"]


def _rejections(report: dict[str, Any]) -> list[str]:
    by_block = report["rejected"]["by_block"]
    if not by_block:
        return ["No record was rejected."]
    lines = ["| block | reason | records |", "|---|---|---|"]
    for block, info in sorted(by_block.items(), key=lambda kv: -kv[1]["total"]):
        for reason, n in info["reasons"].items():
            lines.append(f"| {block} | {str(reason).replace('|', '/')} | {n} |")
    return lines


def dataset_card(
    card: dict[str, Any],
    report: dict[str, Any],
    result: ExportResult,
    data_files: dict[str, str],
    finetune_files: dict[str, str],
    license: str = "other",
) -> str:
    """The README.md text."""
    from fms_dgt.export.folder import MARKER

    meta = yaml.safe_dump(front_matter(result, data_files, finetune_files, license), sort_keys=False)
    description = str(card.get("task_description") or "").strip()
    split_rows = ", ".join(f"{s} {n}" for s, n in result.rows.items())
    out = [
        f"---\n{meta}---",
        MARKER,
        f"# {result.task_name}",
        "",
        description or "(no task description)",
        "",
        f"Synthetic data made with fms_dgt by the `{card.get('data_builder')}` "
        f"builder; task owner: {card.get('created_by') or 'unknown'}.",
        "",
        "## Loading",
        "",
        "```python",
        "import datasets",
        'ds = datasets.load_dataset("<this folder or Hub repo>")  # final_data, one split per file prefix',
    ]
    if finetune_files:
        out.append(
            'ft = datasets.load_dataset("<this folder or Hub repo>", "finetune")  # the fine-tuning rows'
        )
    out += ["```", "", "## Contents", "", "| config | split | rows | files |", "|---|---|---|---|"]
    out += [f"| default | {s} | {result.rows[s]} | `{p}` |" for s, p in data_files.items()]
    out += [f"| finetune | {s} | {result.finetune_rows[s]} | `{p}` |" for s, p in finetune_files.items()]
    out += [
        "",
        f"Records: {report['accepted']} accepted, {sum(result.rows.values())} in final_data ({split_rows}), "
        f"{report['rejected']['total']} rejected, {report['failed']['total']} failed requests or calls.",
        "",
        "## Models and sampling",
        "",
        *_engines(card),
        "",
        "## Rejections by reason",
        "",
        *_rejections(report),
        "",
        "## Quality figures",
        "",
        "From `python -m fms_dgt.report` on the task's output folder:",
        "",
        "```text",
        render([report]).rstrip(),
        "```",
    ]
    if result.training is not None:
        training = result.training
        out += [
            "",
            "## Training config",
            "",
            f"`training_config.json`: task `{training['task']}`, max_seq_length {training['max_seq_length']} "
            f"(longest row {training['token_lengths']['max']} tokens, {training['token_lengths']['method']}).",
        ]
    if result.warnings:
        out += ["", "## Warnings", "", *[f"- {w}" for w in result.warnings]]
    config = redacted_config(redact_all(card.get("task_config") or {}))
    out += [
        "",
        "## Task card",
        "",
        "The task configuration this data was made with (secrets and environment values redacted):",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)
