"""Data in: where a task's material comes from beyond its seed examples.

- ``documents``: text documents (.txt, .md, .html, .pdf, .json/.jsonl records) from files,
  globs or folders, chunked by tokens with overlap, each chunk keeping its file and
  character offsets (``fms_dgt.sources.documents``; extraction in ``extract``, the word-level
  tokenizer and windows in ``tokens``).
- ``grounded``: a ``DocumentsTask`` and a ``DocumentPromptBuilder`` for builders whose every
  call is grounded in one chunk (``genstruct``, ``knowledge_qa``).

Nothing here is imported by ``import fms_dgt``.
"""
