"""Configuration: YAML loading with source locations, schemas for reserved sections,
component construction from ``type`` / ``class_path``."""

from fms_dgt.config.env import expand_env, redact
from fms_dgt.config.yaml_loader import YamlDoc, load_yaml

__all__ = ["YamlDoc", "expand_env", "load_yaml", "redact"]
