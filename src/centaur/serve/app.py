"""The FastAPI app: the model loaded once in the lifespan, limits as ASGI middleware, JSON errors.

Every error answers {"detail": STABLE PHRASE, "message": what exactly, for a person}; clients
and tests match on `detail`, people read `message`.
"""
import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batcher import Batcher
from .engine import load_engine
from .errors import InputError, ServiceError
from .feedback import FeedbackStore
from .metrics import ServiceMetrics
from .routes import feedback_router, predict_router, status_router

log = logging.getLogger("centaur.serve")

# requests that run the model count against max_in_flight; health checks and metrics never do,
# so a busy service still answers its monitoring
LIMITED = ("/predict", "/predict/batch", "/feedback")


class Service:
    """What the routes share: settings, engine, batcher, metrics, feedback store, recent inputs."""

    def __init__(self, settings):
        self.settings, self.metrics = settings, ServiceMetrics()
        self.engine, self.batcher, self.store, self.ready = None, None, None, False
        # prediction_id -> (kind, sha256 of the input, name, prediction): small, kept for many
        self.predictions = OrderedDict()
        # prediction_id -> input bytes: large, kept within recent_bytes; the page sends the image
        # again with a contest, so a busy server forgetting it loses nothing
        self.inputs, self.inputs_size = OrderedDict(), 0
        self.in_flight = 0

    def start(self):
        if self.engine is None:
            self.engine = load_engine(self.settings)
        self.store = FeedbackStore(self.settings.feedback_path)
        self.batcher = Batcher(self.engine.run, self.settings.max_batch_size, self.settings.max_wait_ms,
                               on_batch=self.metrics.on_batch)
        self.batcher.start()

    async def stop(self):
        if self.batcher is not None:
            await self.batcher.stop()
        if self.store is not None:
            self.store.close()

    async def predict(self, prepared):
        """Run one prepared input through the batcher, within the request timeout."""
        try:
            return await asyncio.wait_for(self.batcher.submit(prepared), self.settings.timeout_s)
        except asyncio.TimeoutError:
            raise ServiceError(504, "prediction timed out",
                               f"the model did not answer within {self.settings.timeout_s:g} s; try again, or "
                               "raise --timeout-s if the machine is slow.") from None

    def remember(self, prediction_id, kind, data, name, prediction):
        """Keep what a person needs to contest a prediction; the oldest are forgotten first."""
        self.predictions[prediction_id] = (kind, hashlib.sha256(data).hexdigest(), name, prediction)
        while len(self.predictions) > self.settings.recent_predictions:
            old, _ = self.predictions.popitem(last=False)
            self.inputs_size -= len(self.inputs.pop(old, b""))
        if len(data) <= self.settings.recent_bytes:
            self.inputs[prediction_id] = data
            self.inputs_size += len(data)
        while self.inputs_size > self.settings.recent_bytes:
            _, old = self.inputs.popitem(last=False)
            self.inputs_size -= len(old)


def error_response(status, detail, message, headers=None):
    return JSONResponse({"detail": detail, "message": message}, status_code=status, headers=headers)


def create_app(settings, engine=None):
    """The service for `settings.model_dir`; the model loads when the app starts (lifespan).

    engine: an already loaded engine (load_engine(settings)), so a command can report a
    damaged model as one clear line before the server starts.

    >>> app = create_app(ServeSettings(model_dir="models/emoji"))  # doctest: +SKIP
    """
    service = Service(settings)
    service.engine = engine

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        # the first calls of a model are slow (memory allocation, oneDNN kernel choice): pay
        # for them before saying ready, not in a user's first request
        await asyncio.get_running_loop().run_in_executor(service.batcher.executor, service.engine.warm_up)
        service.ready = True
        log.info("model %s loaded (%s, version %s)", settings.model_dir, service.engine.kind, service.engine.version)
        yield
        service.ready = False
        await service.stop()

    app = FastAPI(title="centaur", summary="Predictions from a centaur model, and a way to contest them.",
                  lifespan=lifespan)
    app.state.service = service
    app.include_router(status_router)
    app.include_router(predict_router)
    app.include_router(feedback_router)

    @app.exception_handler(ServiceError)
    async def _service_error(request, e):
        service.metrics.errors.labels(e.detail).inc()
        return error_response(e.status, e.detail, e.message, e.headers)

    @app.exception_handler(InputError)
    async def _input_error(request, e):
        service.metrics.errors.labels(e.detail).inc()
        return error_response(422, e.detail, e.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        detail = {404: "not found", 405: "method not allowed"}.get(e.status_code, str(e.detail).lower())
        service.metrics.errors.labels(detail).inc()
        return error_response(e.status_code, detail, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _parameter_error(request, e):
        # a query parameter of the wrong kind (?explain=maybe): the API's shape, not FastAPI's list
        problems = "; ".join(f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')} (got "
                             f"{err.get('input')!r})" for err in e.errors())
        service.metrics.errors.labels("invalid parameter").inc()
        return error_response(422, "invalid parameter", problems)

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        # Starlette re-raises it after this answer, so the server still logs its traceback
        service.metrics.errors.labels("internal error").inc()
        return error_response(500, "internal error", "the server failed on this request; its log says why.")

    app.add_middleware(LimitsMiddleware, service=service)
    return app


class BodyTooLarge(Exception):
    pass


class LimitsMiddleware:
    """Body size (413), requests in flight (503 + Retry-After), and metrics, for every request.

    Pure ASGI rather than BaseHTTPMiddleware: it must count the body as it streams in, so a
    huge upload without Content-Length is cut off at the limit, never held in memory whole.
    """

    def __init__(self, app, service):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        service, settings = self.service, self.service.settings
        path, t0 = scope["path"], time.perf_counter()
        route = path if path in ("/", "/health", "/ready", "/metrics", "/model", *LIMITED) else "other"
        status = {"code": 500}
        started = {"done": False}

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status["code"], started["done"] = message["status"], True
            await send(message)

        async def reply(response):
            await response(scope, receive, send_counted)

        limited = scope["method"] == "POST" and path in LIMITED
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        try:
            if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
                await reply(_too_large(settings, service))
            elif limited and service.in_flight >= settings.max_in_flight:
                service.metrics.errors.labels("server busy").inc()
                await reply(error_response(503, "server busy",
                                           f"{service.in_flight} requests are being answered, the most this "
                                           "server takes at once; retry after a second.", {"Retry-After": "1"}))
            else:
                service.in_flight += limited
                service.metrics.in_flight.inc(limited)
                try:
                    await self.app(scope, _limited_receive(receive, settings.max_body_bytes), send_counted)
                except BodyTooLarge:
                    if started["done"]:
                        raise
                    await reply(_too_large(settings, service))
                finally:
                    service.in_flight -= limited
                    service.metrics.in_flight.dec(limited)
        finally:
            service.metrics.requests.labels(route, str(status["code"])).inc()
            service.metrics.latency.labels(route).observe(time.perf_counter() - t0)


def _too_large(settings, service):
    service.metrics.errors.labels("request body too large").inc()
    return error_response(413, "request body too large",
                          f"the request body is larger than {settings.max_body_bytes:,} bytes, the most this "
                          "server takes; send a smaller image (or fewer rows), or raise --max-body-bytes.")


def _limited_receive(receive, limit):
    seen = {"n": 0}

    async def wrapped():
        message = await receive()
        if message["type"] == "http.request":
            seen["n"] += len(message.get("body", b""))
            if seen["n"] > limit:
                raise BodyTooLarge()
        return message

    return wrapped
