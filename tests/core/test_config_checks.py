"""One place checks a config: every error of a file at once, values (not only names) checked
against constructor signatures, nested typos blamed on the right key, override lists merged
by name with errors located in the override file, and a YAML loader that leaves PyYAML's
own SafeLoader alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from fms_dgt.config.overrides import Overrides, load_override_file
from fms_dgt.config.yaml_loader import load_yaml
from fms_dgt.errors import ConfigError, ConfigErrors
from fms_dgt.runtime import Runtime

from .helpers import FIXTURE_BUILDERS, REPO, SEEDS, read_jsonl, write_task


def prepare(
    tmp_path: Path, *paths: Path, overrides: Overrides | None = None, builders: list[str] | None = None
):
    rt = Runtime(
        [str(p) for p in paths],
        [str(FIXTURE_BUILDERS), *(builders or [])],
        output_dir=tmp_path / "out",
        overrides=overrides,
    )
    return rt.prepare()


def _lines(err: ConfigError) -> list[str]:
    return err.render().splitlines()


def test_the_yaml_loader_leaves_pyyaml_safe_loader_alone(tmp_path: Path) -> None:
    (tmp_path / "inc.yaml").write_text("x: 1\n")
    (tmp_path / "main.yaml").write_text("a: !include inc.yaml\n")
    assert load_yaml(tmp_path / "main.yaml").data == {"a": {"x": 1}}
    with pytest.raises(yaml.constructor.ConstructorError):  # as PyYAML documents it
        yaml.safe_load("a: !include inc.yaml\n")


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write_task(
        tmp_path / "t",
        runner_config={"num_outputs_to_generat": 3, "seed_batch_size": "three"},
        filters=[{"name": "len", "type": "length", "min_chars": "many", "fields": "question"}],
        colour="blue",
    )
    with pytest.raises(ConfigErrors) as info:
        prepare(tmp_path, path)
    text = info.value.render()
    assert text.startswith(f"{len(info.value.errors)} problems:")
    for fragment in (
        "unknown key 'num_outputs_to_generat' (did you mean 'num_outputs_to_generate'?)",
        "runner_config.seed_batch_size': expected an integer (got 'three')",
        "does not accept 'colour'",
    ):
        assert fragment in text, text
    assert all(f"{path}:" in line for line in _lines(info.value)[1:])  # each names file and line


def test_block_values_are_checked_not_only_names(tmp_path: Path) -> None:
    filters = [
        {"name": "len", "type": "length", "min_chars": "many", "fields": "question"},
        {"name": "dedup", "type": "minhash_dedup", "threshold": "high", "ngrm": 2},
    ]
    path = write_task(tmp_path / "t", filters=filters)
    with pytest.raises(ConfigErrors) as info:
        prepare(tmp_path, path)
    text = info.value.render()
    assert "filters.0.min_chars': expected an integer (got 'many')" in text
    assert "filters.0.fields': expected a list of strings (got 'question')" in text  # not letter by letter
    assert "filters.1.threshold': expected a number (got 'high')" in text
    assert "does not accept 'ngrm' (did you mean 'ngram'?)" in text


def test_values_are_converted_as_the_signature_says(tmp_path: Path) -> None:
    filters = [{"name": "dedup", "type": "minhash_dedup", "threshold": "0.7", "fields": ["question"]}]
    pt = prepare(tmp_path, write_task(tmp_path / "t", filters=filters))[0]
    assert pt.filters[-1].threshold == 0.7


def test_sampling_keys_are_checked_with_did_you_mean(tmp_path: Path) -> None:
    override = tmp_path / "ov.yaml"
    override.write_text(
        yaml.safe_dump(
            {"builders": {"echo": {"blocks": [{"name": "llm1", "sampling": {"temperture": 0.2}}]}}}
        )
    )
    path = write_task(tmp_path / "t")
    with pytest.raises(ConfigError) as info:
        prepare(tmp_path, path, overrides=load_override_file(str(override)))
    text = info.value.render()
    assert "blocks.0.sampling.temperture': unknown key 'temperture' (did you mean 'temperature'?)" in text
    assert f"{override}:" in text  # the override file set it: its line, not the builder YAML's


def test_a_misspelled_nested_key_is_blamed_once_on_the_right_key(tmp_path: Path) -> None:
    (tmp_path / "seeds.jsonl").write_text(
        "".join(f'{{"question": "{s["question"]}", "answer": "a"}}\n' for s in SEEDS)
    )
    path = write_task(tmp_path / "t", seed_datastore={"data_pth": "seeds.jsonl"})
    with pytest.raises(ConfigError) as info:
        prepare(tmp_path, path)
    text = info.value.render()
    assert "seed_datastore.data_pth': unknown key 'data_pth' (did you mean 'data_path'?" in text
    assert len(_lines(info.value)) == 1  # not also "data_path is missing"


def test_a_csv_header_typo_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "seeds.csv").write_text("question,anwser\nWhy is the sky blue?,Scattering.\n")
    path = write_task(tmp_path / "t", seed_examples=None, seed_datastore={"data_path": "seeds.csv"})
    with pytest.raises(ConfigError) as info:
        prepare(tmp_path, path)
    assert "seeds.csv:2" in info.value.render()
    assert "'anwser' looks like a misspelling of 'answer'" in info.value.render()


def test_a_formatter_reading_a_field_the_records_lack_is_an_error(tmp_path: Path) -> None:
    path = write_task(tmp_path / "t", formatter={"type": "jinja", "fields": {"input": "{{ context }}"}})
    with pytest.raises(
        ConfigError, match="formatter's fields.input reads 'context', which Pair records lack"
    ):
        prepare(tmp_path, path)


def test_every_task_is_checked_and_the_good_ones_still_load(tmp_path: Path) -> None:
    good = write_task(tmp_path / "good", name="good")
    bad = write_task(tmp_path / "bad", name="bad", runner_config={"num_outputs_to_generate": 0})
    worse = write_task(tmp_path / "worse", name="worse", colour="red")
    rt = Runtime([str(good), str(bad), str(worse)], [str(FIXTURE_BUILDERS)], output_dir=tmp_path / "out")
    with pytest.raises(ConfigErrors) as info:
        rt.prepare()
    assert [pt.task.task_name for pt in rt.prepared] == ["good"]
    text = info.value.render()
    assert str(bad) in text and str(worse) in text


def test_override_lists_merge_by_block_name(tmp_path: Path) -> None:
    override = tmp_path / "ov.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "builders": {
                    "simple": {
                        "blocks": [
                            {"name": "llm1", "sampling": {"temperature": 0.1}},  # merged into llm1
                            {"name": "is_question", "remove": True},  # dropped
                            {
                                "name": "short",
                                "type": "length",
                                "max_chars": 100,
                                "fields": ["answer"],
                            },  # added
                        ],
                        "postprocessors": [],  # cleared
                    }
                }
            }
        )
    )
    causal = REPO / "tasks/core/simple/logical_reasoning/causal/task.yaml"
    pt = Runtime(
        [str(causal)], output_dir=tmp_path / "out", overrides=load_override_file(str(override))
    ).prepare()[0]
    builder = pt.builder
    assert builder.llm1.default_params.temperature == 0.1  # type: ignore[attr-defined]
    assert builder.llm1.default_params.max_tokens == 256  # the rest of llm1 is kept  # type: ignore[attr-defined]
    names = [f.name for f in pt.filters]
    assert "is_question" not in names and "short" in names and "non_empty" in names
    assert pt.postprocessors == []


def test_an_error_in_an_override_entry_names_the_override_file(tmp_path: Path) -> None:
    override = tmp_path / "ov.yaml"
    override.write_text(
        "builders:\n  echo:\n    blocks:\n      - name: extra\n        type: length\n        min_chars: lots\n"
    )
    with pytest.raises(ConfigError) as info:
        prepare(tmp_path, write_task(tmp_path / "t"), overrides=load_override_file(str(override)))
    assert (
        f"{override}:6: field 'blocks.1.min_chars': expected an integer (got 'lots')" in info.value.render()
    )


def test_blocks_beside_a_builder_register_without_being_imported(tmp_path: Path) -> None:
    folder = tmp_path / "builders" / "with_blocks"
    folder.mkdir(parents=True)
    (folder / "with_blocks.yaml").write_text(
        "name: with_blocks\nblocks:\n  - {name: llm1, class_path: tests.support.scripted_engine:ScriptedEngine}\n"
        "  - {name: no_why, type: no_why_questions}\n"
    )
    (folder / "generate.py").write_text(
        "from fms_dgt.registry import register_data_builder\n"
        "from dgt_builders.echo.generate import EchoBuilder\n\n\n"
        '@register_data_builder("with_blocks")\n'
        "class WithBlocks(EchoBuilder):\n    pass\n"
    )
    (folder / "blocks.py").write_text(  # generate.py does not import it
        "from fms_dgt import register_block\nfrom fms_dgt.blocks.base import FilterBlock\n\n\n"
        '@register_block("no_why_questions")\n'
        "class NoWhy(FilterBlock):\n"
        "    def check(self, record):\n"
        '        return "empty question" if not record.question else None\n'
    )
    path = write_task(tmp_path / "t", builder="with_blocks")
    rt = Runtime(
        [str(path)], [str(FIXTURE_BUILDERS), str(tmp_path / "builders")], output_dir=tmp_path / "out"
    )
    pt = rt.prepare()[0]
    assert any(type(f).__name__ == "NoWhy" for f in pt.filters)
    asyncio.run(rt.run())
    assert read_jsonl(tmp_path / "out/t1/final_data.jsonl")
