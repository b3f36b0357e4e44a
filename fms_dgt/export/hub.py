"""``--push-to-hub``: upload an export folder as a Hugging Face Hub dataset repository.

The token is ``huggingface_hub``'s own (``HF_TOKEN`` or ``huggingface-cli login``); the
repository is created if missing, then the whole folder is uploaded in one commit."""

from __future__ import annotations

from pathlib import Path


def push_to_hub(out_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload ``out_dir`` to the dataset repo ``repo_id``; returns the repo's URL."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise RuntimeError("--push-to-hub needs huggingface_hub: pip install huggingface_hub") from None
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(out_dir),
        repo_id=repo_id,
        repo_type="dataset",
        commit_message="Upload dataset exported by fms_dgt",
    )
    return str(url)
