"""``vllm-server``: vLLM's OpenAI-compatible server, started and stopped by the run.

The engine launches ``python -m vllm.entrypoints.openai.api_server`` once per replica on a
free loopback port, waits until ``/v1/models`` answers, and then talks to the replicas
exactly as the ``openai`` engine does (it is one, with several base URLs). Servers never
outlive the run: they are stopped when the engine closes, at interpreter exit, and, on
Linux, by the kernel when the process that started them dies (``PR_SET_DEATHSIG``), so a
crashed or SIGKILLed run does not leave a model holding the GPU.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from fms_dgt.engines.default_model import DEFAULT_MODEL_NAME, check_model_ref, resolve_model
from fms_dgt.engines.openai_engine import OpenAIEngine
from fms_dgt.engines.vllm_engine import COMPACT_JSON_CONFIG, on_cpu, prepare_cpu_env
from fms_dgt.errors import FatalEngineError
from fms_dgt.registry import register_engine

log = logging.getLogger("fms_dgt.engines.vllm_server")

_LIVE: set[ServerProcess] = set()
_LIVE_LOCK = threading.Lock()
LOG_TAIL_CHARS = 3000
PORT_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_DEATHSIG
    except OSError:
        pass


class ServerProcess:
    """One vLLM OpenAI server on loopback. Blocking methods; safe to stop more than once."""

    def __init__(
        self,
        model_path: str,
        *,
        served_name: str,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_dir: str | Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="dgt-vllm-server-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"vllm-server-{self.port}.log"
        self.cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path]
        self.cmd += ["--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(self.port)]
        self.cmd += list(args or [])
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, preexec_fn=_die_with_parent
            )
        with _LIVE_LOCK:
            _LIVE.add(self)
        log.info("started vLLM server pid %d on %s (log: %s)", self.proc.pid, self.url, self.log_path)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/v1/models`` until it answers; raise FatalEngineError with the log tail if
        the server exits or is not ready within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise FatalEngineError(
                    f"vLLM server exited with status {code} before it was ready; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise FatalEngineError(
                    f"vLLM server on {self.url} not ready after {timeout:g}s (raise startup_timeout "
                    f"if the model is large); last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def stop(self, grace: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def kill_started_servers() -> None:
    """Kill every server this process started, at once (a forced exit skips ``_stop_all``)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for server in live:
        proc = server.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for server in live:
        server.stop(grace=5.0)


@register_engine("vllm-server")
class VLLMServerEngine(OpenAIEngine):
    """vLLM servers started for this run, driven through the OpenAI-compatible API.

    Args:
        model: local folder or hub name; None runs the embedded default model.
        replicas: servers to start; requests go to the one with the fewest in flight.
        max_model_len: context window passed to the server.
        startup_timeout: seconds to wait for each server to answer.
        server_args: extra command-line arguments for every server (``["--dtype", "half"]``).
        env: extra environment variables for the servers (``CUDA_VISIBLE_DEVICES``...).
        log_dir: where server logs go (default: a temporary folder, named in the log).
        compact_json: forbid free whitespace in JSON-schema output (small models otherwise
            pad JSON with newlines until ``max_tokens`` runs out), as the ``vllm`` engine does.
            Selects vLLM's xgrammar backend; False lets vLLM pick one per schema.
        **kwargs: the ``openai`` engine's settings (max_concurrency, transport, cache...).
    """

    kind: ClassVar[str] = "vllm-server"
    hosted: ClassVar[bool] = False  # a server we start: its model costs nothing per token

    def __init__(
        self,
        model: str | None = None,
        *,
        replicas: int = 1,
        max_model_len: int = 2048,
        startup_timeout: float = 600.0,
        server_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_dir: str | None = None,
        compact_json: bool = True,
        **kwargs: Any,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        kwargs.pop("base_url", None)
        super().__init__(model or DEFAULT_MODEL_NAME, base_url="http://127.0.0.1:0/v1", **kwargs)
        check_model_ref(model)
        self._model_ref = model
        self.replicas = replicas
        self.max_model_len = max_model_len
        self.startup_timeout = startup_timeout
        self.server_args = list(server_args or [])
        self.server_env = dict(env or {})
        self.log_dir = log_dir
        self.compact_json = compact_json
        self._servers: list[ServerProcess] = []

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(replicas=self.replicas, base_url=None)
        return info

    async def reachability_problem(self) -> str | None:
        return None  # its servers exist only once a run starts them

    def _local_model_folder(self) -> str | None:
        """The folder the servers load (the converted default model, or ``model``)."""
        folder = resolve_model(self._model_ref)
        return folder if os.path.isdir(folder) else None

    def _server_config(self) -> tuple[list[str], dict[str, str]]:
        """Arguments and environment every replica gets. Detecting a GPU imports torch, so
        this runs in a worker thread."""
        args = ["--max-model-len", str(self.max_model_len), *self.server_args]
        if self.compact_json and not any(a.startswith("--structured-outputs-config") for a in args):
            args += ["--structured-outputs-config", json.dumps(COMPACT_JSON_CONFIG)]
        env = dict(self.server_env)
        if on_cpu():
            prepare_cpu_env(env)
            if "--enforce-eager" not in args:
                args.append("--enforce-eager")
        return args, env

    async def _launch(
        self, model_path: str, args: list[str], env: dict[str, str], started: list[ServerProcess]
    ) -> ServerProcess:
        """One replica, ready. The port is chosen before the server binds it, so another
        process can take it in between: then the replica is relaunched on a fresh port.

        The process is started here, on the engine's loop thread, not in a pool thread: the
        kernel's parent-death signal follows the thread that forked, and pool threads come
        and go."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            server = ServerProcess(
                model_path, served_name=self.model, args=args, env=env, log_dir=self.log_dir
            )
            server.start()
            started.append(server)
            try:
                await asyncio.to_thread(server.wait_ready, self.startup_timeout)
                return server
            except FatalEngineError:
                if attempt == PORT_ATTEMPTS or "Address already in use" not in server.log_tail():
                    raise
                log.warning(
                    "%s: port %d was taken before the server bound it; retrying", self.name, server.port
                )
        raise AssertionError("unreachable")

    async def _start(self) -> None:
        if not self._servers:
            model_path = await asyncio.to_thread(resolve_model, self._model_ref)
            args, env = await asyncio.to_thread(self._server_config)
            started: list[ServerProcess] = []
            launches = [
                asyncio.ensure_future(self._launch(model_path, args, env, started))
                for _ in range(self.replicas)
            ]
            try:
                # the first replica that fails ends the start: no waiting for the others
                done, pending = await asyncio.wait(launches, return_when=asyncio.FIRST_EXCEPTION)
                for launch in done:
                    launch.result()
            except BaseException:
                for launch in launches:
                    launch.cancel()
                await asyncio.gather(*launches, return_exceptions=True)
                for server in started:
                    await asyncio.to_thread(server.stop)
                raise
            self._servers = [launch.result() for launch in launches]
        self.base_urls = [s.url + "/v1" for s in self._servers]
        self.base_url = self.base_urls[0]
        await super()._start()

    async def _close(self) -> None:
        await super()._close()
        servers, self._servers = self._servers, []
        for server in servers:
            await asyncio.to_thread(server.stop)
