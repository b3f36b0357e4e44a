"""Dedup blocks: exact, MinHash-LSH near-duplicate, ROUGE-L and embedding similarity. Each
checks a record against the seeds and everything accepted so far, as records stream in."""
