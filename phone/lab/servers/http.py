"""The lab's HTTP and HTTPS provisioning servers: the TFTP files over HTTP (docs/http.md).

CUCM's TFTP service also answers ``GET /<file name>`` on port 6970 (HTTP), 6971
(HTTPS presenting the CallManager certificate, or CallManager-ECDSA where the
cluster has one) and 6972 (HTTPS presenting tomcat, with the client's certificate
checked against Tomcat-trust and CallManager-trust); Cisco TAC 214535 and the CUCM
Security Guide ("ECDSA support") describe it. ``HttpFileServer`` is that service for
the lab, on aiohttp:

- files come from the same lookup as the lab's TFTP server
  (``phone.lab.servers.files.FileSource``: per-device files made by name, then
  the node's TFTP folder), with the same path-safety rules;
- a file that is there: ``200``, ``Content-Length``, ``Cache-Control: no-store``,
  ``Content-Type: */*`` (the headers of Cisco TAC 214535's capture);
- a CTL that is not there: ``503``, as CUCM answers outside mixed mode (Cisco
  TAC 214535); any other missing file: ``missing_status`` (setting
  ``http.missing_status``, default 503); an unsafe name: ``403``;
- over HTTPS, a request for ``SEP<MAC>.cnf.xml.sgn`` gets the unsigned
  ``SEP<MAC>.cnf.xml`` (``unsigned_configs``): TLS vouches for it.

``with HttpFileServer(...) as port:`` serves from a background thread with its
own event loop, as the TFTP server does; ``port`` 0 picks a free port.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from phone.errors import TransportError, UsageError
from phone.lab.servers.background import InThread
from phone.lab.servers.files import Dynamic, FileSource, RefusedName

if TYPE_CHECKING:
    from aiohttp import web

# aiohttp is imported when a server starts, not with this module: every `phonetrust` command
# imports the lab, and aiohttp takes longer to import than most commands take to run.

#: docs/http.md (OPEN ``http.missing_status``): what a missing file other than a CTL gets.
DEFAULT_MISSING_STATUS = 503
#: Cisco TAC 214535: CUCM answers 503 for a CTL it does not serve.
MISSING_CTL_STATUS = 503

_CTL = re.compile(r"^CTL.*\.tlv$", re.IGNORECASE)
_SIGNED_CONFIG = re.compile(r"^(.+\.cnf\.xml)\.sgn$")
_HEADERS = {"Cache-Control": "no-store", "Content-Type": "*/*"}


class HttpFileServer(InThread):
    """Read-only HTTP(S) for files in ``root`` and files made by ``dynamic``; see the module docstring.

    ``ssl_context`` makes it HTTPS (``phone.tls.identity_server_context`` builds one from an
    identity; ``contexts`` may replace it per connection, e.g. when a trust store changed).
    """

    def __init__(
        self,
        root: Path | str | None = None,
        dynamic: Dynamic | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        contexts: Callable[[], ssl.SSLContext] | None = None,
        missing_status: int = DEFAULT_MISSING_STATUS,
        unsigned_configs: bool = False,
    ) -> None:
        if not 0 <= port < 65536:
            raise UsageError(f"HTTP port must be 0-65535, not {port}")
        if not 400 <= missing_status < 600:
            raise UsageError(f"the status for a missing file must be an HTTP error (400-599), not {missing_status}")
        self.files = FileSource(root, dynamic)
        self.host = host
        self.ssl_context = ssl_context
        self.missing_status = missing_status
        self.unsigned_configs = unsigned_configs
        self.counts = dict.fromkeys(("requests", "served", "missing", "refused", "errors"), 0)
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        if contexts is not None:
            if ssl_context is None:
                raise UsageError("per-connection TLS contexts need a first ssl_context")
            ssl_context.sni_callback = lambda sock, _name, _context: setattr(sock, "context", contexts())

    @property
    def port(self) -> int:
        if self._port is None:
            raise UsageError("the HTTP server has not been started")
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def _label(self) -> str:  # names the thread and the start-up error (InThread)
        return self.scheme.upper()

    # -- requests -------------------------------------------------------------------------

    async def _get(self, request: web.Request) -> web.Response:
        from aiohttp import web

        self.counts["requests"] += 1
        name = request.match_info["name"]
        if self.unsigned_configs:
            name = _SIGNED_CONFIG.sub(r"\1", name)
        client = request.transport.get_extra_info("peername") if request.transport else None
        try:
            data = self.files.lookup(name, tuple(client[:2]) if client else ("", 0))
        except RefusedName as error:
            self.counts["refused"] += 1
            return web.Response(status=403, text=f"{error}\n")
        except Exception:  # noqa: BLE001 - the callback, or reading a file: the client gets a 500
            self.counts["errors"] += 1
            return web.Response(status=500, text=f"cannot produce {name}\n")
        if data is None:
            self.counts["missing"] += 1
            return web.Response(status=MISSING_CTL_STATUS if _CTL.match(name) else self.missing_status)
        self.counts["served"] += 1
        return web.Response(body=data, headers=_HEADERS)

    # -- asyncio life cycle ---------------------------------------------------------------

    async def start(self) -> int:
        """Listen in the running loop; returns the bound port."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/{name:.+}", self._get)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise TransportError(f"cannot serve {self.scheme.upper()} on {self.host}:{self._requested_port}: "
                                 f"{error.strerror or error}") from None
        self._runner = runner
        self._port = runner.addresses[0][1]
        return self._port

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
