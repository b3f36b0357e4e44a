"""Blocks: filters, dedup, judges, postprocessors. Built-ins register lazily here, through
the same registry plugins use."""

from fms_dgt.blocks.base import Block, FilterBlock, FilterPostprocessor, Postprocessor
from fms_dgt.registry import blocks

# name -> "module:Class"; kept in one table so `--list` can show them without importing
BUILTIN_BLOCKS: dict[str, str] = {
    "required_fields": "fms_dgt.blocks.validators:RequiredFields",
    "length": "fms_dgt.blocks.validators:LengthBounds",
    "regex": "fms_dgt.blocks.validators:RegexFilter",
    "json_schema": "fms_dgt.blocks.validators:JsonSchemaFilter",
    "python_syntax": "fms_dgt.blocks.code:PythonSyntax",
    "python_tests": "fms_dgt.blocks.code:PythonTests",
    "answer_in_context": "fms_dgt.blocks.validators:AnswerInContext",
    "answer_supported": "fms_dgt.blocks.grounding:AnswerSupported",
    "exact_dedup": "fms_dgt.blocks.dedup.exact:ExactDedup",
    "minhash_dedup": "fms_dgt.blocks.dedup.minhash:MinHashDedup",
    "rouge_dedup": "fms_dgt.blocks.dedup.rouge:RougeDedup",
    "embedding_dedup": "fms_dgt.blocks.dedup.embedding:EmbeddingDedup",
    "language": "fms_dgt.blocks.language:LanguageFilter",
    "llm_judge": "fms_dgt.blocks.judge:LLMJudge",
}

for _name, _path in BUILTIN_BLOCKS.items():
    blocks.add(_name, _path)

__all__ = ["Block", "FilterBlock", "FilterPostprocessor", "Postprocessor"]
