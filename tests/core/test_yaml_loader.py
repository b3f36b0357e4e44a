import pytest

from fms_dgt.config.env import expand_env, redact
from fms_dgt.config.yaml_loader import load_yaml
from fms_dgt.errors import ConfigError


def test_lines_are_tracked(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("a: 1\nb:\n  c: [1, 2]\n  d: x\n")
    doc = load_yaml(p)
    assert doc.data == {"a": 1, "b": {"c": [1, 2], "d": "x"}}
    assert doc.line_of("b", "d") == 4
    assert doc.line_of("b", "zzz") == 2  # nearest known prefix


@pytest.mark.parametrize(
    "text,fragment,line",
    [
        ("a: 1\na: 2\n", "duplicate key 'a'", 2),
        ("a: !!python/object/apply:os.system [ls]\n", "unsupported YAML tag", 1),
        ("a: [1, 2\nb: 3\n", "YAML syntax error", 2),
        ("a: &x [1, *x]\n", "recursive YAML alias", 1),
    ],
)
def test_bad_yaml_is_located(tmp_path, text, fragment, line):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_yaml(p)
    assert fragment in str(err.value)
    assert err.value.line == line
    assert err.value.file == str(p)


def test_non_utf8_and_missing_file(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8") as err:
        load_yaml(p)
    assert err.value.line == 2
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "nope.yaml")


def test_include_and_recursive_include(tmp_path):
    (tmp_path / "main.yaml").write_text("seeds: !include seeds.yaml\n")
    (tmp_path / "seeds.yaml").write_text("- {q: 1}\n")
    assert load_yaml(tmp_path / "main.yaml").data == {"seeds": [{"q": 1}]}
    (tmp_path / "loop.yaml").write_text("x: !include loop2.yaml\n")
    (tmp_path / "loop2.yaml").write_text("y: !include loop.yaml\n")
    with pytest.raises(ConfigError, match="recursive !include"):
        load_yaml(tmp_path / "loop.yaml")


def test_env_expansion_and_redaction(tmp_path, monkeypatch):
    monkeypatch.setenv("DGT_TEST_SECRET", "sk-very-secret-value")
    out = expand_env({"key": "${DGT_TEST_SECRET}", "d": "${DGT_UNSET_X:-fallback}", "n": [1]})
    assert out == {"key": "sk-very-secret-value", "d": "fallback", "n": [1]}
    assert "sk-very-secret-value" not in redact("token sk-very-secret-value here")
    p = tmp_path / "t.yaml"
    p.write_text("engine:\n  api_key: ${DGT_SURELY_UNSET}\n")
    doc = load_yaml(p)
    with pytest.raises(ConfigError, match="DGT_SURELY_UNSET") as err:
        expand_env(doc.data, doc=doc)
    assert err.value.line == 2
