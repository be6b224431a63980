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

from phone.errors import TransportError, UsageError


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


class InThread:
    """``start_in_thread``/``stop`` and a ``with`` block for a server with ``start()``, ``close()`` and
    ``port`` (the lab's TFTP and HTTP servers): its own event loop in a daemon thread until ``stop``.

    The class sets ``_label`` (``"TFTP"``, ``"HTTP"``…), which names the thread and the start-up error,
    and ``_thread = _thread_loop = None`` in its ``__init__``.
    """

    _label: str
    _thread: threading.Thread | None
    _thread_loop: asyncio.AbstractEventLoop | None
    port: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def __enter__(self) -> int:
        return self.start_in_thread()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> int:
        if self._thread is not None:
            raise UsageError(f"this {self._label} server was already started; make a new one")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._thread_loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.close())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"{self._label.lower()}-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TransportError(f"the {self._label} server did not start in time")
        if failure:
            self._thread.join(timeout)
            raise failure[0]
        return self.port

    def stop(self) -> None:
        """Stop the background thread's server (transfers in flight are dropped); idempotent."""
        if self._thread is None or self._thread_loop is None or not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):
            self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
        self._thread.join(5)
