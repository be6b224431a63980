"""Only lab/servers/ (the lab's servers), device/ (the phone's clients) and testing/ open sockets.

Read from the source (``ast``), not by running it: a module elsewhere that
creates a socket, a listening server or a connection, or hands one to tftpy
or ssl, fails this test with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "phone"
ALLOWED = ("lab/servers", "device", "testing")

#: Calls that open a socket (attribute or bare name, whatever the module is imported as).
OPENING_CALLS = frozenset({
    "socket", "socketpair", "fromfd", "create_connection", "create_server",  # socket
    "start_server", "open_connection", "start_unix_server", "open_unix_connection",  # asyncio streams
    "create_datagram_endpoint", "create_unix_server", "create_unix_connection", "sock_connect",  # event loops
    "wrap_socket",  # ssl
    "TftpServer", "TftpClient", "TftpContextClientDownload", "TftpContextClientUpload",  # tftpy (its contexts bind)
    "TCPServer", "UDPServer", "ThreadingTCPServer", "ThreadingUDPServer", "HTTPServer", "ThreadingHTTPServer",
})
#: Modules whose import alone means serving or connecting (tftpy is not one: the fleet silences its loggers).
OPENING_MODULES = frozenset({"socketserver", "http.server", "http.client", "urllib.request"})
#: Modules from which importing one of ``OPENING_CALLS`` by name counts as using it.
SOCKET_MODULES = frozenset({"socket", "asyncio", "ssl", "tftpy"})


def socket_openings(source: str) -> list[tuple[int, str]]:
    """(line, what) for every place in ``source`` that opens a socket or imports a module that does."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if name in OPENING_CALLS:
                found.append((node.lineno, f"calls {name}()"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"imports {alias.name}") for alias in node.names if alias.name in OPENING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in OPENING_MODULES:
                found.append((node.lineno, f"imports from {node.module}"))
            elif node.module.split(".")[0] in SOCKET_MODULES:
                found += [(node.lineno, f"imports {node.module}.{alias.name}") for alias in node.names
                          if alias.name in OPENING_CALLS]
    return sorted(found)


def outside_the_boundary() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if not any(path.relative_to(PACKAGE).as_posix().startswith(f"{room}/") for room in ALLOWED)]


def test_no_module_outside_servers_device_and_testing_opens_a_socket():
    offenders = [f"phone/{path.relative_to(PACKAGE)}:{line}: {what}"
                 for path in outside_the_boundary() for line, what in socket_openings(path.read_text())]
    assert not offenders, "\n".join(offenders)


def test_the_rooms_allowed_to_open_sockets_do_open_them():
    # If the walk stopped seeing openings (a renamed call), the test above would pass for nothing.
    for module in ("lab/servers/tftp.py", "lab/servers/tvs.py", "device/tftp.py", "testing/lossy.py"):
        assert socket_openings((PACKAGE / module).read_text()), module


@pytest.mark.parametrize("sample", [
    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n",
    "from socket import create_connection\n",
    "import asyncio\nasync def f():\n    await asyncio.start_server(None, '127.0.0.1', 0)\n",
    "async def f(loop):\n    await loop.create_datagram_endpoint(lambda: None, local_addr=('127.0.0.1', 0))\n",
    "import ssl\nssl.create_default_context().wrap_socket(None)\n",
    "import tftpy\nserver = tftpy.TftpServer('/srv')\n",
    "from tftpy import TftpServer\n",
    "import socketserver\n",
])
def test_a_planted_sample_is_caught(sample):
    assert socket_openings(sample)


def test_looking_up_a_host_name_is_not_opening_a_socket():
    assert socket_openings("import socket\nsocket.gethostname()\nsocket.gethostbyname('x')\n") == []
