"""An asyncio server of the lab run in a thread with its own event loop (the TVS and CAPF servers).

The server has ``start()`` (bind; raises on a port in use or an unusable
certificate) and ``serve_until(stop)``. Start-up errors are raised in the
caller's thread; leaving the block stops the loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from phone.errors import TransportError


class AsyncServer(Protocol):
    async def start(self) -> None: ...

    async def serve_until(self, stop: asyncio.Event) -> None: ...


@contextlib.contextmanager
def serving_in_thread(server: AsyncServer, *, name: str, start_timeout: float) -> Iterator[None]:
    """Run ``server`` until the block ends; ``name`` names the thread and the start-up timeout error."""
    ready = threading.Event()
    failure: list[BaseException] = []
    control: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        control["loop"], control["stop"] = asyncio.get_running_loop(), stop
        try:
            await server.start()
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            failure.append(error)
            ready.set()
            return
        ready.set()
        await server.serve_until(stop)

    thread = threading.Thread(target=asyncio.run, args=(main(),), name=f"{name}-server", daemon=True)
    thread.start()
    if not ready.wait(start_timeout):
        raise TransportError(f"the {name.upper()} server did not start in time")
    if failure:
        thread.join(start_timeout)
        raise failure[0]
    try:
        yield
    finally:
        control["loop"].call_soon_threadsafe(control["stop"].set)
        thread.join(start_timeout)
