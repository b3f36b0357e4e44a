"""The reference points the framework is compared against: a bare asyncio loop that sends
N chat requests with at most C in flight, and nothing else (no builder, no validation, no
datastore).

* ``--client openai``: the official ``AsyncOpenAI`` client, the way most scripts and
  frameworks call a server. Its utilization against the 0.5 s stub is the issue's ~0.90
  reference (it loses only the drain at the end, when fewer than C requests remain).
* ``--client aiohttp``: a pooled aiohttp session + orjson, the same HTTP stack as the
  ``openai`` engine's fast transport. Its process CPU is "what the HTTP client itself costs",
  subtracted from the CLI's CPU to get the framework's own overhead per record.

Runs as its own process so its CPU time is measured the same way as the CLI's. Prints one
JSON line: requests, wall seconds, process CPU seconds (user+sys), failures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import orjson

# the same shape of request the simple builder sends: a chat prompt and a JSON schema
PROMPT = (
    "You write new exam questions with short, correct answers about: a benchmark topic.\n"
    "Here are examples:\n" + "Question: Why is the sky blue?\nAnswer: Rayleigh scattering.\n" * 3
)
SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}


def request_body(model: str, i: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"{PROMPT}\n#{i}"}],
        "max_tokens": 256,
        "temperature": 0.8,
        "response_format": {"type": "json_schema", "json_schema": {"name": "pair", "schema": SCHEMA}},
    }


async def with_openai(base_url: str, n: int, concurrency: int) -> int:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=120)
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        body = request_body("stub", i)
        async with sem:
            try:
                resp = await client.chat.completions.create(
                    model=body["model"],
                    messages=body["messages"],
                    max_tokens=body["max_tokens"],
                    temperature=body["temperature"],
                    response_format=body["response_format"],
                )
                orjson.loads(resp.choices[0].message.content or "{}")
            except Exception:
                failures += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    return failures


async def with_aiohttp(base_url: str, n: int, concurrency: int) -> int:
    import aiohttp

    session = aiohttp.ClientSession(
        headers={"Content-Type": "application/json"},
        connector=aiohttp.TCPConnector(limit=concurrency),
        skip_auto_headers=("User-Agent",),
    )
    url = base_url.rstrip("/") + "/chat/completions"
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        data = orjson.dumps(request_body("stub", i))
        async with sem:
            try:
                async with session.post(url, data=data) as resp:
                    body = orjson.loads(await resp.read())
                orjson.loads(body["choices"][0]["message"]["content"])
            except Exception:
                failures += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    await session.close()
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bare_client", description=__doc__.split("\n")[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--client", choices=("openai", "aiohttp"), default="openai")
    args = p.parse_args(argv)
    run = with_openai if args.client == "openai" else with_aiohttp
    t0 = time.perf_counter()
    failures = asyncio.run(run(args.base_url, args.requests, args.concurrency))
    wall = time.perf_counter() - t0
    cpu = sum(os.times()[:2])
    print(
        orjson.dumps(
            {"client": args.client, "requests": args.requests, "wall": wall, "cpu": cpu, "failures": failures}
        ).decode()
    )
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
