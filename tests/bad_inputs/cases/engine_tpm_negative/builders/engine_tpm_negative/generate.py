"""A builder for bad-input tests."""

from fms_dgt.builders.base import GenerationDataBuilder
from fms_dgt.registry import register_data_builder


@register_data_builder("engine_tpm_negative")
class Builder(GenerationDataBuilder):
    def __call__(self, request_idx, seed_data):
        return []
