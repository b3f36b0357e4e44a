from fms_dgt.registry import register_data_builder, register_block, register_engine, register_datastore, register_formatter  # noqa
