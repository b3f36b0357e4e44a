"""The local run viewer: ``python -m fms_dgt.view [OUTPUT_DIR]`` / ``dgt view``.

A read-only web app over an output folder (``app``), paging its stores through in-memory
indexes (``store_index``), with the queries of each page in ``records`` and ``runs`` and the
guards in ``security``. Importing this package imports nothing heavy: the server's libraries
load when it starts.
"""
