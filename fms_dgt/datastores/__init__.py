"""Datastores: where a task's records go. The default writes files; plugins register more."""

from fms_dgt.datastores.base import Datastore, read_json, write_json_atomic
from fms_dgt.registry import datastores

datastores.add("default", "fms_dgt.datastores.files:FileDatastore", "file")

__all__ = ["Datastore", "read_json", "write_json_atomic"]
