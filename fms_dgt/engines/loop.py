"""A private event loop in a daemon thread, for engines used outside any running loop.

Plain (sync) builders run in worker threads and call ``Engine.generate``; tests and
notebooks call it from no loop at all. The engine then runs its requests on a loop of its
own in a background thread, so async and sync callers still share one semaphore and one
continuous batch."""

from __future__ import annotations

import asyncio
import threading


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dgt-engine-loop", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
