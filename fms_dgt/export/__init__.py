"""From a task's output folder to what training takes: train/validation/test splits
(``splits``), a Hub-ready dataset folder with its card (``python -m fms_dgt.export``), and
the training config of the fine-tuning formats. Importing this package imports nothing
heavy; ``pyarrow``, ``datasets`` and ``huggingface_hub`` are imported where used."""
