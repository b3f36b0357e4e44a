"""Task loading: mandatory keys, constructor keywords, seeds from every file format."""

import json

import pandas as pd
import pytest
import yaml

from fms_dgt.errors import ConfigError
from fms_dgt.runtime import Runtime

from .helpers import FIXTURE_BUILDERS, REPO, SEEDS, write_task


def prepare(tmp_path, *task_paths):
    rt = Runtime([str(p) for p in task_paths], [str(FIXTURE_BUILDERS)], output_dir=tmp_path / "out")
    return rt.prepare()


def test_documented_example_random_seed_reaches_simple_task(tmp_path):
    causal = REPO / "tasks/core/simple/logical_reasoning/causal/task.yaml"
    rt = Runtime([str(causal)], output_dir=tmp_path / "out")
    pt = rt.prepare()[0]
    task = pt.task
    assert type(task).__name__ == "SimpleTask"
    assert task.random_seed == 42
    first = [[e.id for e in task.sample_examples()] for _ in range(5)]
    task2 = Runtime([str(causal)], output_dir=tmp_path / "out2").prepare()[0].task
    second = [[e.id for e in task2.sample_examples()] for _ in range(5)]
    assert first == second  # reproducible in-context sampling
    assert len({tuple(x) for x in first}) > 1  # and not constant


def test_misspelled_key_is_an_error_with_did_you_mean(tmp_path):
    path = write_task(tmp_path / "t", seed_exmaples=SEEDS)
    with pytest.raises(ConfigError) as err:
        prepare(tmp_path, path)
    msg = str(err.value)
    assert "seed_exmaples" in msg and "did you mean 'seed_examples'?" in msg
    assert err.value.file == str(path) and err.value.line is not None


def test_unknown_constructor_key_is_rejected_but_declared_one_reaches_init(tmp_path):
    path = write_task(tmp_path / "t", slow_every=3)
    pt = prepare(tmp_path, path)[0]
    assert pt.task.slow_every == 3
    path = write_task(tmp_path / "t2", name="t2", slow_evry=3)
    with pytest.raises(ConfigError, match="did you mean 'slow_every'"):
        prepare(tmp_path, path)


@pytest.mark.parametrize("missing", ["task_name", "task_description", "created_by", "data_builder"])
def test_mandatory_fields(tmp_path, missing):
    path = write_task(tmp_path / "t")
    data = yaml.safe_load(path.read_text())
    del data[missing]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=f"missing required key '{missing}'"):
        prepare(tmp_path, path)


def test_duplicate_task_names(tmp_path):
    a = write_task(tmp_path / "a", name="same")
    b = write_task(tmp_path / "b", name="same")
    with pytest.raises(ConfigError, match="duplicate task_name 'same'"):
        prepare(tmp_path, a, b)


def test_unknown_builder_has_did_you_mean(tmp_path):
    path = write_task(tmp_path / "t", builder="ecoh")
    with pytest.raises(ConfigError, match="did you mean 'echo'"):
        prepare(tmp_path, path)


def test_task_name_cannot_escape_output_dir(tmp_path):
    path = write_task(tmp_path / "t", name="../escape")
    with pytest.raises(ConfigError, match="'..' segment"):
        prepare(tmp_path, path)


def test_runner_config_unknown_key_and_bad_type(tmp_path):
    path = write_task(tmp_path / "t", runner_config={"num_outputs_to_generat": 3})
    with pytest.raises(ConfigError, match="did you mean 'num_outputs_to_generate'"):
        prepare(tmp_path, path)
    path = write_task(tmp_path / "t", runner_config={"num_outputs_to_generate": "many"})
    with pytest.raises(ConfigError, match="runner_config.num_outputs_to_generate"):
        prepare(tmp_path, path)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "yaml", "csv", "parquet"])
def test_seed_datastore_formats(tmp_path, fmt):
    seed_file = tmp_path / "t" / f"seeds.{fmt}"
    seed_file.parent.mkdir(parents=True)
    if fmt == "jsonl":
        seed_file.write_text("\n".join(json.dumps(s) for s in SEEDS))
    elif fmt == "json":
        seed_file.write_text(json.dumps(SEEDS))
    elif fmt == "yaml":
        seed_file.write_text(yaml.safe_dump(SEEDS))
    elif fmt == "csv":
        pd.DataFrame(SEEDS).to_csv(seed_file, index=False)
    else:
        pd.DataFrame(SEEDS).to_parquet(seed_file)
    path = write_task(tmp_path / "t", seed_examples=None, seed_datastore={"data_path": f"seeds.{fmt}"})
    data = yaml.safe_load(path.read_text())
    del data["seed_examples"]
    path.write_text(yaml.safe_dump(data))
    task = prepare(tmp_path, path)[0].task
    assert [s.question for s in task.seed_examples] == [s["question"] for s in SEEDS]
    assert all(s.is_seed for s in task.seed_examples)


def test_seed_records_missing_fields_and_missing_file(tmp_path):
    path = write_task(tmp_path / "t", seed_examples=[{"question": "only a question"}])
    with pytest.raises(ConfigError, match="missing answer") as err:
        prepare(tmp_path, path)
    assert err.value.line is not None
    path = write_task(tmp_path / "t2", name="t2", seed_datastore={"data_path": "nope/*.jsonl"})
    with pytest.raises(ConfigError, match="no file matches"):
        prepare(tmp_path, path)


def test_empty_seed_examples(tmp_path):
    path = write_task(tmp_path / "t", seed_examples=[])
    with pytest.raises(ConfigError, match="at least one seed example"):
        prepare(tmp_path, path)


def test_transformation_task_inline_and_file_data(tmp_path):
    src = REPO / "tasks/core/transformation/answer_questions/task.yaml"
    rt = Runtime([str(src)], output_dir=tmp_path / "out")
    task = rt.prepare()[0].task
    rows = list(task.iter_input())
    assert len(rows) == 6 and rows[0].question.startswith("Why does metal")
    data_file = tmp_path / "tt" / "in.jsonl"
    data_file.parent.mkdir()
    data_file.write_text("\n".join(json.dumps({"question": f"q{i}?"}) for i in range(5)))
    doc = yaml.safe_load(src.read_text())
    doc["data"] = {"data_path": "in.jsonl"}
    doc["task_name"] = "tt"
    (tmp_path / "tt" / "task.yaml").write_text(yaml.safe_dump(doc))
    task = Runtime([str(tmp_path / "tt")], output_dir=tmp_path / "out").prepare()[0].task
    assert [r.question for r in task.iter_input()] == [f"q{i}?" for i in range(5)]


def test_generation_key_on_transformation_task_is_rejected(tmp_path):
    src = REPO / "tasks/core/transformation/answer_questions/task.yaml"
    doc = yaml.safe_load(src.read_text())
    doc["seed_examples"] = SEEDS
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "task.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="seed_examples"):
        Runtime([str(tmp_path / "t")], output_dir=tmp_path / "out").prepare()


def test_env_values_in_reserved_sections(tmp_path, monkeypatch):
    """``${VAR}`` works in runner_config and seed_datastore too, expanded before validation."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "seeds.jsonl").write_text(json.dumps(SEEDS[0]) + "\n" + json.dumps(SEEDS[1]) + "\n")
    path = write_task(
        tmp_path / "t",
        seed_examples=None,
        seed_datastore={"data_path": "${SEED_FILE}", "limit": "${SEED_LIMIT:-1}"},
        runner_config={"num_outputs_to_generate": "${NOUT:-50}", "seed_batch_size": "${SBS}"},
    )
    text = path.read_text().replace("seed_examples: null\n", "")
    path.write_text(text)
    from fms_dgt.config import env as yaml_loader

    # expanded values are masked process-wide from then on: keep these out of other tests
    monkeypatch.setattr(yaml_loader, "SECRET_VALUES", set(yaml_loader.SECRET_VALUES))
    monkeypatch.setenv("SEED_FILE", "seeds.jsonl")
    monkeypatch.setenv("SBS", "2")
    task = prepare(tmp_path, path)[0].task
    assert task.runner_config.num_outputs_to_generate == 50 and task.runner_config.seed_batch_size == 2
    assert len(task.seed_examples) == 1


def test_unknown_seed_keys_are_named_once(tmp_path, caplog):
    seeds = [{**s, "qestion_hint": "x"} for s in SEEDS]
    path = write_task(tmp_path / "t", seed_examples=seeds)
    with caplog.at_level("WARNING", logger="fms_dgt.run"):
        task = prepare(tmp_path, path)[0].task
    assert len(task.seed_examples) == len(SEEDS)
    warnings = [r.getMessage() for r in caplog.records if "qestion_hint" in r.getMessage()]
    assert len(warnings) == 1 and "task.yaml:" in warnings[0] and "ignored" in warnings[0]


def test_filter_field_the_records_lack_is_an_error(tmp_path):
    """Not even close to a record field: the filter would read nothing on every record (a
    stalled run, or everything rejected), so it stops the task before any model call and
    names the fields the records have."""
    filters = [{"name": "len", "type": "length", "fields": ["score"], "min_chars": 1}]
    path = write_task(tmp_path / "t", filters=filters)
    with pytest.raises(ConfigError, match="'len' reads field 'score'.*fields: .*question"):
        prepare(tmp_path, path)
