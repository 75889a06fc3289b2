"""``kstyle serve``'s HTTP application: a web page to try models, and an API to use them.

Endpoints (every error is JSON, ``{"error": "<one line>"}``, as TensorFlow Serving
gives them; never a traceback or a server path):

- ``GET /``: the page (plain HTML, CSS and JavaScript from the package; nothing fetched
  from elsewhere).
- ``GET /v1/models``: each model, its inputs, size multiple and origin;
  ``GET /v1/models/{name}``: one, with TensorFlow Serving's status fields.
- ``POST /v1/models/{name}:stylize``: a multipart upload (``image``, and ``style`` /
  ``strength`` where the model takes them) in; the result, the input's size, out as PNG
  (or JPEG or WebP, by ``Accept``).
- ``POST /v1/models/{name}:predict``: TensorFlow Serving's REST request shape
  (``{"instances": [{"b64": ...}]}``) in, ``{"predictions": [{"b64": ...}]}`` out: the
  encoded-bytes signature that ``kstyle export --saved-model`` writes as the SavedModel's
  ``serving_default``, so that a client works unchanged against either server.
- ``GET /v1/styles``: the paintings shipped with the package, for the page.
- ``GET /healthz`` (the process answers), ``GET /readyz`` (every model loaded),
  ``GET /openapi.json``.

Under load: at most ``max_requests`` requests are read at once and ``max_images``
images are queued or running; past either, 503 with ``Retry-After``. Bodies over
``max_upload`` bytes and images over ``max_pixels`` get 413 (the size read from the
file's header, before any pixel is decoded); a request that waits longer than
``timeout`` seconds gets 504.
"""


import asyncio
import base64
import binascii
import dataclasses
import functools
import hmac
import io
import json
import logging
from importlib import resources

import numpy as np

from kstyle.data.images import ImageRefused, ImageTooLarge, read_image, save_image
from kstyle.errors import DataError, StyleOptionError
from kstyle.models.signature import ENCODED_SIGNATURE, IMAGE, encoded_ports
from kstyle.server.models import ModelSet, form_fields
from kstyle.server.worker import Busy, Job, WorkQueue

log = logging.getLogger("kstyle.serve")

#: Output formats by media type, the first the default.
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


@dataclasses.dataclass
class Settings:
    """A server's limits and access.

    Args:
        max_images: images queued or running at most (past it: 503).
        max_requests: requests being read or run at most (past it: 503).
        max_batch: most same-shape images run in one call (1: no batching, the default:
            on a CPU one image already uses every core, and batches did not pay).
        timeout: seconds a request may wait for its result (past it: 504).
        max_upload: largest request body, in bytes (past it: 413).
        max_pixels: largest image, in pixels (past it: 413).
        token: when set, ``/v1/`` requests need ``Authorization: Bearer <token>``.
    """

    max_images: int = 8
    max_requests: int = 16
    max_batch: int = 1
    timeout: float = 120.0
    max_upload: int = 32 * 2**20
    max_pixels: int = 25_000_000
    token: str | None = None


class Refused(Exception):
    """A request refused with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _error(status: int, message: str, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _BodyTooLarge(Exception):
    pass


class Door:
    """ASGI middleware at the door: the token, the request count and the body size,
    checked before the application reads anything."""

    OPEN = ("/", "/healthz", "/readyz", "/openapi.json")

    def __init__(self, app, settings: Settings):
        self.app, self.settings = app, settings
        self.active = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        token = self.settings.token
        if token and path not in self.OPEN and not path.startswith("/static/"):
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return await _error(401, "this server needs its token: send the header "
                                    "'Authorization: Bearer <token>'",
                                    {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        limit = self.settings.max_upload
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await _error(413, f"the request is {int(length):,} bytes; this server "
                                f"takes at most {limit:,} (--max-upload-mb)")(
                scope, receive, send)
        if self.active >= self.settings.max_requests:
            return await _error(503, f"the server is busy ({self.active} requests, its "
                                "limit); retry shortly", {"Retry-After": "1"})(
                scope, receive, send)
        self.active += 1
        received, started = 0, False

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge()
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _BodyTooLarge:
            if not started:
                await _error(413, f"the request is over {limit:,} bytes, this server's "
                             "limit (--max-upload-mb)")(scope, receive, send)
        finally:
            self.active -= 1


def _media_type(accept: str | None) -> str:
    """The output's media type from an ``Accept`` header (PNG unless asked otherwise)."""
    if not accept:
        return "image/png"
    wanted = []
    for part in accept.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        if any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            continue
        wanted.append(kind.lower())
    for kind in wanted:
        if kind in FORMATS:
            return kind
        if kind in ("*/*", "image/*"):
            return "image/png"
    raise Refused(406, f"cannot give {accept}; results are {', '.join(FORMATS)}")


def encode(image: np.ndarray, media_type: str = "image/png") -> bytes:
    """A uint8 RGB result as an image file, tagged sRGB."""
    buffer = io.BytesIO()
    options = {"quality": 92} if media_type != "image/png" else {"compress_level": 4}
    save_image(buffer, image, FORMATS[media_type], **options)
    return buffer.getvalue()


def decode(data: bytes, field: str, max_pixels: int) -> np.ndarray:
    """An uploaded image file as uint8 RGB, by kstyle's one image reader (EXIF turned
    upright, colour profiles to sRGB, 16-bit scaled); its size is checked against
    ``max_pixels`` from the header, before decoding.

    Raises:
        Refused: 413 for a size over the limit, 400 for anything unreadable.
    """
    try:
        return read_image(field, data=data, limit=max_pixels)
    except ImageTooLarge as e:
        raise Refused(413, f"{field}: {e.reason} (--max-pixels)") from None
    except ImageRefused as e:
        raise Refused(400, f"{field}: {e.reason}") from None
    except DataError as e:
        raise Refused(400, f"{field}: {e}") from None


def _bad_request(error: Exception) -> Refused:
    return Refused(400, str(error).splitlines()[0])


class Server:
    """The state behind the application: its models, queue and settings."""

    def __init__(self, models: ModelSet, settings: Settings):
        self.models, self.settings = models, settings
        self.queue = WorkQueue(settings.max_images, settings.max_batch)

    def model(self, name: str):
        if name not in self.models.models:
            known = ", ".join(self.models.models) or "none"
            raise Refused(404, f"no model named {name!r} on this server (it has: {known})")
        if not self.models.ready.is_set():
            raise Refused(503, self.models.error or "the models are still loading",
                          {"Retry-After": "5"})
        return self.models.models[name]

    async def run(self, model, items: list[tuple[np.ndarray, dict]]) -> list[np.ndarray]:
        """Runs each ``(image, inputs)`` through ``model``, all queued together or none;
        images of one shape and the same scalar inputs may run as one batch."""
        stylizer = model.stylizer
        jobs = []
        for image, inputs in items:
            try:
                inputs = stylizer.inference.check(inputs)
            except StyleOptionError as e:
                raise _bad_request(e) from None
            scalars = all(np.ndim(v) == 0 and not isinstance(v, np.ndarray | str)
                          for v in inputs.values())
            key = ((model.name, image.shape, tuple(sorted(inputs.items())))
                   if scalars and stylizer.inference.batches else None)
            jobs.append(Job(image, functools.partial(_stylize_batch, stylizer, inputs), key))
        try:
            futures = self.queue.submit(jobs)
        except Busy as e:
            raise Refused(503, str(e), {"Retry-After": str(e.retry_after)}) from None
        except RuntimeError as e:
            raise Refused(503, str(e), {"Retry-After": "5"}) from None
        waiting = [asyncio.wrap_future(f) for f in futures]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*waiting),
                                               self.settings.timeout))
        except TimeoutError:
            for future in futures:
                future.cancel()
            raise Refused(504, f"the request took longer than the limit of "
                          f"{self.settings.timeout:g} s (--timeout)") from None
        except (DataError, StyleOptionError) as e:
            raise _bad_request(e) from None


def _stylize_batch(stylizer, inputs, images):
    return stylizer.stylize_batch(images, **inputs)


def _stylize_openapi() -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"], "properties": {
            "image": {"type": "string", "format": "binary", "description": "the photo"},
            "style": {"type": "string", "format": "binary",
                      "description": "a style image, for a model that takes one"},
            "strength": {"type": "number", "description":
                         "for a model that takes it (see GET /v1/models)"}}}}}},
        "responses": {"200": {"description": "the result, the input's size",
                              "content": {k: {} for k in FORMATS}}}}


def _predict_openapi() -> dict:
    b64 = {"type": "object", "properties": {"b64": {"type": "string"}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "signature_name": {"type": "string", "default": ENCODED_SIGNATURE},
            "instances": {"type": "array", "items": {"oneOf": [b64, {"type": "object"}]}},
            "inputs": {"type": "object"}}}}}},
        "responses": {"200": {"description": "TensorFlow Serving's response shape",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "properties": {
                                      "predictions": {"type": "array", "items": b64}}}}}}}}


def create_app(models: ModelSet | dict, settings: Settings | None = None):
    """The ASGI application serving ``models``.

    Args:
        models: a :class:`ModelSet` (loaded in the background once the app starts), or
            ``{name: Stylizer}`` already loaded.
        settings: limits and access (:class:`Settings`).

    Example:
        >>> app = create_app({"quickstart": kstyle.load("saved_models/quickstart")})
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
    from starlette.staticfiles import StaticFiles

    import kstyle

    settings = settings or Settings()
    if isinstance(models, dict):
        models = ModelSet.of_stylizers(models)
    server = Server(models, settings)
    page = resources.files("kstyle.server") / "page"

    @contextlib.asynccontextmanager
    async def lifespan(app):
        models.start()
        yield
        # Shutting down: the server has stopped taking requests and finished those in
        # flight; the queue is empty by now.
        await run_in_threadpool(server.queue.close, 30)

    app = FastAPI(title="kstyle", version=kstyle.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Stylize images with kstyle's models over HTTP.")
    app.state.server = server

    @app.exception_handler(Refused)
    async def refused(request, e: Refused):
        return _error(e.status, e.message, e.headers)

    @app.exception_handler(_BodyTooLarge)
    async def too_large(request, e: _BodyTooLarge):
        return _error(413, f"the request is over {settings.max_upload:,} bytes, this "
                      "server's limit (--max-upload-mb)")

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        message = str(e.detail)
        if e.status_code in (404, 405):
            message = (f"{request.method} {request.url.path}: no such endpoint (the API "
                       "is described at GET /openapi.json)")
        return _error(e.status_code, message, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return _error(400, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def internal(request, e: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); the server's log has "
                      "the details")

    @app.get("/", include_in_schema=False)
    async def index():
        return Response((page / "index.html").read_bytes(), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(page)), name="static")

    @app.get("/healthz", summary="The process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Every model is loaded")
    async def readyz():
        if models.ready.is_set():
            return {"status": "ready", "models": list(models.models)}
        return _error(503, models.error or "the models are still loading",
                      {"Retry-After": "5"})

    @app.get("/v1/models", summary="The models this server holds")
    async def list_models():
        if not models.ready.is_set():
            server.model(next(iter(models.models), ""))  # 503 (or 404 with none)
        return {"models": [m.describe() for m in models.models.values()]}

    @app.get("/v1/models/{name}", summary="One model, with TensorFlow Serving's status")
    async def get_model(name: str):
        model = server.model(name)
        return {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {
            "error_code": "OK", "error_message": ""}}], **model.describe()}

    @app.get("/v1/styles", summary="Paintings shipped with kstyle, to try style models")
    async def styles():
        listing = json.loads((page / "styles" / "styles.json").read_text())
        return {"styles": [{**s, "url": f"/static/styles/{s['file']}"} for s in listing]}

    @app.post("/v1/models/{name}:stylize", summary="Stylize one uploaded image",
              openapi_extra=_stylize_openapi())
    async def stylize(name: str, request: Request):
        model = server.model(name)
        media_type = _media_type(request.headers.get("accept"))
        fields = {f["name"]: f for f in form_fields(model.stylizer.signature)}
        try:
            form = await request.form(max_files=len(fields) + 2, max_fields=len(fields) + 4,
                                      max_part_size=1024)
        except Exception as e:  # a body that is not multipart, or not well formed
            if isinstance(e, _BodyTooLarge):
                raise
            raise Refused(400, "expected a multipart/form-data upload with an 'image' "
                          f"file ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                          ) from None
        try:
            unknown = sorted(set(form.keys()) - set(fields))
            if unknown:
                raise Refused(400, f"{', '.join(unknown)}: not an input of {name} (it "
                              f"takes: {', '.join(fields)})")
            values, image = {}, None
            for field in fields.values():
                value = form.get(field["name"])
                if value is None:
                    if field["name"] == "image" or (field["required"]
                                                    and field["type"] == IMAGE):
                        raise Refused(400, f"missing field {field['name']!r}: {name} needs "
                                      f"it ({field['doc'] or 'an image file'})")
                    continue
                if field["type"] == IMAGE:
                    if isinstance(value, str):
                        raise Refused(400, f"{field['name']}: expected an image file, got "
                                      "a text field")
                    data = await value.read()
                    array = await run_in_threadpool(decode, data, field["name"],
                                                    settings.max_pixels)
                    if field["name"] == "image":
                        image = array
                    else:
                        values[field["name"]] = array
                else:
                    if not isinstance(value, str):
                        raise Refused(400, f"{field['name']}: expected a number, got a file")
                    values[field["name"]] = value
        finally:
            await form.close()
        [result] = await server.run(model, [(image, values)])
        body = await run_in_threadpool(encode, result, media_type)
        return Response(body, media_type=media_type,
                        headers={"X-Kstyle-Model": name,
                                 "Content-Disposition": 'inline; filename="kstyle.'
                                 f'{FORMATS[media_type].lower().replace("jpeg", "jpg")}"'})

    @app.post("/v1/models/{name}:predict", summary="TensorFlow Serving's predict",
              openapi_extra=_predict_openapi())
    async def predict(name: str, request: Request):
        model = server.model(name)
        ports = encoded_ports(model.stylizer.signature.main)
        if ports is None:
            raise Refused(400, f"{name} takes a tensor input; use :stylize")
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            raise Refused(400, f"the body is not JSON ({e})") from None
        if not isinstance(body, dict):
            raise Refused(400, "expected a JSON object with 'instances' (or 'inputs')")
        signature = body.get("signature_name", ENCODED_SIGNATURE)
        if signature != ENCODED_SIGNATURE:
            raise Refused(400, f"signature_name {signature!r}: this server has "
                          f"{ENCODED_SIGNATURE!r} (images as base64 files)")
        rows, columnar = _rows(body, [n for n, _ in ports])
        if len(rows) > settings.max_images:
            raise Refused(413, f"{len(rows)} instances; this server takes at most "
                          f"{settings.max_images} in one request (--max-queue)")
        items = []
        for i, row in enumerate(rows):
            values = {}
            for key, port in ports[1:]:
                if key in row:
                    values[port.name] = (await _b64_image(row[key], f"instances[{i}].{key}",
                                                          settings) if port.type == IMAGE
                                         else row[key])
            image = await _b64_image(row.get(ports[0][0]), f"instances[{i}].{ports[0][0]}",
                                     settings)
            # As the exported serving_default computes (an AdaIN style at its own size).
            items.append((image, {**model.stylizer.inference.graph_options, **values}))
        results = await server.run(model, items)
        encoded = await run_in_threadpool(
            lambda: [{"b64": base64.b64encode(encode(r)).decode()} for r in results])
        return JSONResponse({"outputs" if columnar else "predictions": encoded})

    app.add_middleware(Door, settings=settings)
    return app


def _rows(body: dict, names: list[str]) -> tuple[list[dict], bool]:
    """A TensorFlow Serving request's instances as ``[{input: value}]``: the row format
    (``instances``) or the columnar one (``inputs``); with one input, a bare value."""
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise Refused(400, "'instances' must be a non-empty list")
        rows = [row if isinstance(row, dict) and not (len(names) == 1 and "b64" in row)
                else {names[0]: row} for row in instances]
        return rows, False
    if "inputs" in body:
        inputs = body["inputs"]
        columns = inputs if isinstance(inputs, dict) and not (
            len(names) == 1 and "b64" in inputs) else {names[0]: inputs}
        columns = {k: v if isinstance(v, list) else [v] for k, v in columns.items()}
        count = max(len(v) for v in columns.values()) if columns else 0
        if not count:
            raise Refused(400, "'inputs' is empty")
        return [{k: v[min(i, len(v) - 1)] for k, v in columns.items()}
                for i in range(count)], True
    raise Refused(400, f"expected 'instances' (or 'inputs') holding {', '.join(names)}")


async def _b64_image(value, where: str, settings: Settings) -> np.ndarray:
    from starlette.concurrency import run_in_threadpool

    if value is None:
        raise Refused(400, f"{where}: missing")
    if not (isinstance(value, dict) and isinstance(value.get("b64"), str)):
        raise Refused(400, f"{where}: expected an image file as {{\"b64\": \"<base64>\"}}")
    if len(value["b64"]) * 3 // 4 > settings.max_upload:
        raise Refused(413, f"{where}: over {settings.max_upload:,} bytes (--max-upload-mb)")
    try:
        data = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, f"{where}: not valid base64") from None
    return await run_in_threadpool(decode, data, where, settings.max_pixels)

