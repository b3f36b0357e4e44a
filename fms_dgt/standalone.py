"""Using a builder from plain Python, without a task.yaml::

    from fms_dgt import load

    answer = load("answer_questions")                 # its YAML's engine: the default model
    for row in answer.process([{"question": "Why is the sky blue?"}]):
        print(row["answer"])

    quiz = load("prompt", prompt="Write a quiz question about {{ topic }}.", output=...,
                seed_examples=[...], samplers=...)
    records = quiz.generate(5)

``load`` builds the builder with its YAML (blocks, filters) and a task from keyword
arguments (the same keys a task.yaml would hold), optionally on an engine you pass (an
``Engine`` object or a spec such as ``{"type": "openai", "model": ..., "base_url": ...}``):
every engine block then uses it, each with its own sampling. ``process`` and ``generate``
run the builder's calls concurrently and apply the same filters, retries, cache and
accounting as a run (``stats()``), writing nothing the caller did not ask for: accepted,
rejected and failed records go to a private temporary folder (or ``output_dir``).
"""

from __future__ import annotations

import asyncio
import queue
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fms_dgt.blocks.chain import FilterChain
from fms_dgt.builders.base import DataBuilder
from fms_dgt.builders.calls import CallPool, call_builder
from fms_dgt.builders.declarative import Rejection
from fms_dgt.config.builder_file import check_builder
from fms_dgt.config.components import check_args
from fms_dgt.config.messages import validated
from fms_dgt.config.overrides import Overrides
from fms_dgt.config.schema import RunnerConfig
from fms_dgt.config.task_file import RUNTIME_TASK_ARGS
from fms_dgt.datapoint import DataPoint, as_dict
from fms_dgt.engines.base import Engine
from fms_dgt.engines.loop import LoopThread
from fms_dgt.errors import ConfigError
from fms_dgt.factory import EnginePool, build_builder
from fms_dgt.index import builder_names, default_builder_paths, import_builder, index_builders
from fms_dgt.ledger import Ledger
from fms_dgt.registry import did_you_mean
from fms_dgt.state import TaskState
from fms_dgt.task import GenerationTask, Task, TransformationTask

_IDENTITY = ("task_name", "task_description", "created_by", "data_builder")


class FixedEnginePool(EnginePool):
    """Every engine block gets the one engine given to ``load`` (its sampling kept)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def all(self) -> list[Engine]:
        return []  # the caller's engine: the caller closes it

    def get(self, spec: dict[str, Any], doc: Any, key: tuple[Any, ...]) -> Engine:
        from fms_dgt.engines.view import EngineView

        sampling = spec.get("sampling") or (spec.get("init_args") or {}).get("sampling")
        if not sampling:
            return self.engine
        return EngineView(
            self.engine, str(spec.get("name", "llm")), self.engine.default_params.merged(**sampling)
        )


class Processor:
    """A loaded builder: ``process`` rows through it, or ``generate`` records with it."""

    def __init__(
        self,
        builder: DataBuilder,
        task: Task,
        filters: FilterChain,
        ledger: Ledger,
        engines: list[Engine],
        tmp: Any,
    ) -> None:
        self.builder = builder
        self.task = task
        self.chain = filters
        self.ledger = ledger
        self.engines = engines  # the ones load() built (closed with the processor)
        self._tmp = tmp  # keeps a private temporary folder alive as long as the processor
        self._calls = 0
        # the blocking forms run here, so engines bind to one loop for the processor's life
        self._loop = LoopThread()

    def __enter__(self) -> Processor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transformation ------------------------------------------------------------------
    async def aprocess(
        self, rows: Iterable[dict[str, Any]], concurrency: int = 8
    ) -> AsyncIterator[dict[str, Any]]:
        """The accepted outputs for ``rows`` (dicts), in input order, chunk by chunk."""
        if not isinstance(self.task, TransformationTask):
            raise TypeError(f"'{self.task.data_builder}' is a generation builder: use generate(n)")
        size = self.task.runner_config.transform_batch_size
        pool = CallPool(concurrency)
        ready: dict[int, list[dict[str, Any]]] = {}
        next_out = 0
        executor = ThreadPoolExecutor(max_workers=concurrency)
        try:
            chunk: list[DataPoint] = []
            index = 0
            for i, raw in enumerate(rows):
                chunk.append(
                    self.task._input_from(raw, source=(None, None), keys=(f"rows[{i}]",), what=f"row {i}")
                )
                if len(chunk) >= size:
                    while not pool.has_room:
                        await pool.next_done(lambda done: ready.__setitem__(*done))
                    pool.submit(self._chunk(index, chunk, executor))
                    index, chunk = index + 1, []
                while next_out in ready:
                    for out in ready.pop(next_out):
                        yield out
                    next_out += 1
            if chunk:
                pool.submit(self._chunk(index, chunk, executor))
            while pool.inflight or next_out in ready:
                if pool.inflight:
                    await pool.next_done(lambda done: ready.__setitem__(*done))
                while next_out in ready:
                    for out in ready.pop(next_out):
                        yield out
                    next_out += 1
        finally:
            await pool.cancel_all()
            executor.shutdown(wait=False, cancel_futures=True)
            self.ledger.sync()

    async def _chunk(
        self, index: int, rows: list[DataPoint], executor: ThreadPoolExecutor
    ) -> tuple[int, list[dict[str, Any]]]:
        outputs = await call_builder(self.builder, self.ledger, executor, index, rows)
        return index, [out async for out in self._accepted(outputs or [], index)]

    def process(self, rows: Iterable[dict[str, Any]], concurrency: int = 8) -> Iterator[dict[str, Any]]:
        """Blocking form of ``aprocess`` (streams: outputs come as chunks finish)."""
        return _iterate(self.aprocess(rows, concurrency), self._loop.loop)

    # ---- generation ----------------------------------------------------------------------
    async def agenerate(self, n: int, concurrency: int = 8) -> list[dict[str, Any]]:
        """``n`` accepted records from the task's seed examples (and sampler values)."""
        task = self.task
        if not isinstance(task, GenerationTask):
            raise TypeError(f"'{task.data_builder}' is a transformation builder: use process(rows)")
        out: list[dict[str, Any]] = []
        pool = CallPool(concurrency)
        executor = ThreadPoolExecutor(max_workers=concurrency)
        fruitless = 0
        try:
            while len(out) < n:
                while pool.has_room and len(out) + len(pool.inflight) < n + concurrency:
                    pool.submit(self._generated(self._calls, task.sample_examples(), executor))
                    self._calls += 1

                def take(records: list[dict[str, Any]]) -> None:
                    nonlocal fruitless
                    out.extend(records)
                    fruitless = 0 if records else fruitless + 1

                await pool.next_done(take)
                if fruitless >= 5 * concurrency:
                    raise RuntimeError(
                        f"no record accepted in {fruitless} calls; see {self.ledger.rejected.location}"
                    )
        finally:
            await pool.cancel_all()
            executor.shutdown(wait=False, cancel_futures=True)
            self.ledger.sync()
        return out[:n]

    async def _generated(
        self, idx: int, examples: list[DataPoint], executor: ThreadPoolExecutor
    ) -> list[dict[str, Any]]:
        outputs = await call_builder(self.builder, self.ledger, executor, idx, examples)
        accepted = [out async for out in self._accepted(outputs or [], idx)]
        for record in accepted:
            assert isinstance(self.task, GenerationTask)
            self.task.remember(self.task.instantiate_output_example(**record))
        return accepted

    def generate(self, n: int, concurrency: int = 8) -> list[dict[str, Any]]:
        """Blocking form of ``agenerate``."""
        return asyncio.run_coroutine_threadsafe(self.agenerate(n, concurrency), self._loop.loop).result()

    async def _accepted(self, outputs: list[Any], idx: int) -> AsyncIterator[dict[str, Any]]:
        for output in outputs:
            if isinstance(output, Rejection):
                self.ledger.reject({"raw": output.raw}, output.block, output.reason)
                continue
            record = (
                output if isinstance(output, DataPoint) else self.task.instantiate_output_example(**output)
            )
            record.lineage.setdefault("builder", self.task.data_builder)
            verdict = await self.chain.verdict(record, self.ledger)
            if verdict is not None:
                self.ledger.reject(record, verdict[0], verdict[1])
                continue
            self.chain.accept(record)
            self.ledger.record_accepted(record)
            yield as_dict(record)

    def stats(self) -> dict[str, Any]:
        """Counts, requests and tokens so far (what task_results holds for a run)."""
        return {"counts": self.ledger.counts(), **self.ledger.summary()}

    def close(self) -> None:
        """Close the engines ``load`` built, the blocks and the stores (idempotent)."""
        for engine in self.engines:
            asyncio.run_coroutine_threadsafe(engine.aclose(), self._loop.loop).result(timeout=60)
        self.engines = []
        self.builder.close()
        self.task.stores.close()
        self._loop.stop()


def load(
    builder: str,
    *,
    engine: Engine | dict[str, Any] | None = None,
    builder_paths: Iterable[str | Path] = (),
    output_dir: str | Path | None = None,
    **task_args: Any,
) -> Processor:
    """The builder named ``builder`` with a task made of ``task_args`` (the keys a task.yaml
    would hold: ``seed_examples``, ``runner_config``, the builder's own options...)."""
    builders = index_builders([Path(p) for p in builder_paths] + default_builder_paths())
    if builder not in builders:
        raise ConfigError(
            f"unknown data builder '{builder}'", hint=did_you_mean(builder, builder_names(builders))
        )
    entry = builders[builder]
    builder_cls = import_builder(entry)
    task_cls = builder_cls.TASK_TYPE
    tmp = None
    if output_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fms_dgt-")
        output_dir = tmp.name
    args = dict(task_args)
    runner = validated(RunnerConfig, args.pop("runner_config", {}), None, "runner_config")
    identity = {
        "task_name": args.pop("task_name", f"standalone/{builder}".replace("/", "_")),
        "task_description": args.pop("task_description", f"{builder} (standalone)"),
        "created_by": args.pop("created_by", "standalone"),
        "data_builder": builder,
    }
    if issubclass(task_cls, TransformationTask):
        args.setdefault("data", [])
    checked = check_args(
        task_cls, args, doc=None, key=(), what="task", reserved=RUNTIME_TASK_ARGS | set(_IDENTITY)
    )
    task = task_cls(**identity, **checked, runner_config=runner, output_dir=output_dir)
    if isinstance(task, GenerationTask) and "seed_examples" in args:
        task.load_seed_examples()
    pool: EnginePool
    overrides = Overrides()
    if isinstance(engine, Engine):
        pool = FixedEnginePool(engine)
    else:
        pool = EnginePool()
        overrides.engine = dict(engine) if engine else None
    config = check_builder(builder, entry.doc, overrides)
    prepared = build_builder(task, None, config, builder_cls, overrides, pool)
    ledger = Ledger(task.task_name, task.stores, TaskState(), state_dir=task.task_dir)
    task.ledger = ledger
    chain = FilterChain(prepared.filters)
    chain.prime(getattr(task, "seed_examples", []))
    return Processor(prepared.builder, task, chain, ledger, pool.all(), tmp)


def _iterate(
    agen: AsyncIterator[dict[str, Any]], loop: asyncio.AbstractEventLoop, buffer: int = 256
) -> Iterator[dict[str, Any]]:
    """An async iterator read from a plain one: it runs on ``loop`` (a thread of its own), so
    the caller needs no event loop (and a notebook's running loop is not disturbed)."""
    items: queue.Queue[Any] = queue.Queue(maxsize=buffer)
    done = object()

    async def pump() -> None:
        try:
            async for item in agen:
                await asyncio.to_thread(items.put, item)
        except BaseException as exc:  # handed to the reader, raised there
            items.put(exc)
        finally:
            items.put(done)

    future = asyncio.run_coroutine_threadsafe(pump(), loop)
    while True:
        item = items.get()
        if item is done:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    future.result()
