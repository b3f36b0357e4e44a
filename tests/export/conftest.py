"""The catalogue's ``run_example`` fixture (one real-model run through the session's vLLM
engine), for the export's real-model test."""

from tests.catalogue.conftest import run_example  # noqa: F401
