"""Checking a builder YAML (the file beside a builder's ``generate.py``), with the override
file's ``builders.<name>`` section merged in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fms_dgt.config.messages import validated
from fms_dgt.config.overrides import Overrides
from fms_dgt.config.schema import BuilderFile
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml
from fms_dgt.errors import ConfigError, Problems

SECTIONS = ("blocks", "postprocessors")


def read_builder_name(path: Path) -> tuple[YamlDoc, str]:
    """Load a builder YAML far enough to know the name it registers (its ``name``, or the
    file's stem)."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a builder YAML must be a mapping", file=path, line=1)
    name = doc.data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise doc.error("'name' must be a non-empty string", "name")
    return doc, name


@dataclass
class BuilderConfig:
    """A checked builder YAML."""

    name: str
    doc: YamlDoc  # with the override file's section merged in (its lines kept)
    file: BuilderFile

    @property
    def folder(self) -> Path:
        return self.doc.path.parent

    def as_written(self) -> dict[str, Any]:
        return dict(self.doc.data)


def check_builder(name: str, doc: YamlDoc, overrides: Overrides) -> BuilderConfig:
    """The builder YAML with its override applied; every block has a unique identifier
    ``name`` and a ``type`` or ``class_path`` (what the blocks' arguments must be is
    checked when each is built)."""
    if name in overrides.builders:
        doc = doc.overlay(overrides.builders[name], overrides.doc, ("builders", name))
    file = validated(BuilderFile, doc.data, doc)
    problems = Problems()
    for section in SECTIONS:
        seen: set[str] = set()
        for i, spec in enumerate(getattr(file, section)):
            with problems.check():
                check_block_spec(spec, doc, (section, i), seen)
    problems.raise_if_any()
    return BuilderConfig(name, doc, file)


def check_block_spec(spec: dict[str, Any], doc: YamlDoc, key: tuple[Any, ...], seen: set[str]) -> None:
    """A block entry names itself (the builder reaches it as ``self.<name>``) and its class."""
    name = spec.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise doc.error(
            "every block needs a 'name' that is a Python identifier",
            *key,
            "name",
            hint="the builder reaches it as self.<name>",
        )
    if name in seen:
        raise doc.error(f"duplicate block name '{name}'", *key, "name")
    seen.add(name)
    if "type" not in spec and "class_path" not in spec:
        raise doc.error(f"block '{name}' needs 'type' or 'class_path'", *key)
