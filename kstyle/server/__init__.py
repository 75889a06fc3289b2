"""``kstyle serve``: a web page to try models and an HTTP API to serve them.

Needs the ``serve`` extra (``pip install "kstyle[serve]"``): FastAPI (routing, request
parsing, the OpenAPI description), uvicorn (the HTTP server, with a graceful stop on
SIGTERM) and python-multipart (uploads). See :mod:`kstyle.server.app` for the endpoints.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import signal
import socket

from kstyle.errors import KstyleError

#: What the ``serve`` extra installs, by import name.
NEEDS = ("fastapi", "uvicorn", "multipart")


def check_installed() -> None:
    """Raises a one-line KstyleError naming the extra when a server package is missing."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise KstyleError(f"kstyle serve needs {', '.join(missing)}: pip install "
                          "\"kstyle[serve]\"")


def is_loopback(host: str) -> bool:
    """Whether ``host`` binds to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def serve(models: list[str], host: str = "127.0.0.1", port: int = 8000,
          settings=None, log=print) -> None:
    """Serves ``models`` (``NAME=SOURCE`` or sources: run folders, exported files,
    published model names) until SIGTERM or Ctrl-C, which stop taking requests, finish
    those in flight and return.

    Raises:
        KstyleError: a missing package, a bad model name, or a non-loopback ``host``
            without a token.
    """
    check_installed()
    import uvicorn

    from kstyle.inference import zoo
    from kstyle.server.app import Settings, create_app
    from kstyle.server.models import ModelSet, parse_sources

    settings = settings or Settings()
    if not is_loopback(host) and not settings.token:
        raise KstyleError(f"--host {host} opens the server to other machines: give "
                          "--token (or KSTYLE_SERVE_TOKEN) so that only your clients "
                          "can use it")
    sources = parse_sources(models or [zoo.default_model()])
    listening = listen(host, port)
    models = ModelSet(sources, log=log)
    app = create_app(models, settings)
    shown = f"[{host}]" if ":" in host else host
    fragment = "#token=<your token>" if settings.token else ""
    log(f"kstyle serve: http://{shown}:{port}/{fragment} (the page), "
        f"http://{shown}:{port}/v1/models (the API); Ctrl-C stops")
    # uvicorn stops gracefully on SIGTERM and SIGINT (no new connections, those in
    # flight finished), then raises the signal again for the handler it found: a
    # handler that does nothing lets the process end with 0, a clean stop.
    before = {n: signal.signal(n, lambda *_: None) for n in (signal.SIGTERM, signal.SIGINT)}
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, timeout_graceful_shutdown=60,
        log_level=os.environ.get("KSTYLE_SERVE_LOG", "warning")))
    # A model that cannot load stops the server: it would never be ready.
    models.on_error = lambda: setattr(server, "should_exit", True)
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
        for number, handler in before.items():
            signal.signal(number, handler)
    if models.failure:
        raise KstyleError(f"stopped: {models.failure}")
    log("kstyle serve: stopped")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (before any model loads, so that a port in use is
    said at once).

    Raises:
        KstyleError: the address cannot be bound, with the reason.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        raise KstyleError(f"could not listen on {host}:{port} ({e.strerror or e}); is "
                          "another server there? pick another --port") from None
    sock.set_inheritable(True)
    return sock
