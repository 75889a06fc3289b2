"""A kstyle server on 127.0.0.1 in a thread of the test process, for the API and page
tests (a real HTTP server: the middleware, limits and uploads run as they do in
``kstyle serve``)."""

import contextlib
import threading
import time


@contextlib.contextmanager
def running(app):
    """Serves ``app`` on a free port of 127.0.0.1; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
