"""The service's routes, one router per resource: status, predictions, feedback."""
import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from importlib import resources

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .errors import InputError, ServiceError

status_router, predict_router, feedback_router = APIRouter(), APIRouter(), APIRouter()


def get_service(request: Request):
    return request.app.state.service


def check_token(request: Request, service=Depends(get_service)):
    """With a token set, POST requests need 'Authorization: Bearer TOKEN' (compared in constant time)."""
    token = service.settings.token
    if not token:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise ServiceError(401, "missing or wrong token",
                           "this server needs the header 'Authorization: Bearer TOKEN'.",
                           {"WWW-Authenticate": "Bearer"})


def ready_service(service=Depends(get_service)):
    if not service.ready:
        raise ServiceError(503, "not ready", "the model is still loading; retry in a few seconds.",
                           {"Retry-After": "2"})
    return service


# ---- status ---------------------------------------------------------------------------------

@status_router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page():
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


@status_router.get("/health")
def health():
    """The process is alive (says nothing about the model; see /ready)."""
    return {"status": "alive"}


@status_router.get("/ready")
def ready(service=Depends(get_service)):
    """The model is loaded and warmed up: send traffic."""
    if not service.ready:
        return JSONResponse({"detail": "not ready", "message": "the model is still loading."}, status_code=503,
                            headers={"Retry-After": "2"})
    return {"status": "ready", "model_version": service.engine.version}


@status_router.get("/metrics")
def metrics(service=Depends(get_service)):
    """Prometheus text format: requests, latencies, batch sizes, errors, requests in flight."""
    return Response(service.metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")


@status_router.get("/model")
def model(service=Depends(ready_service)):
    """What the model is and what it takes: task, classes or columns, version, metrics, limits."""
    s = service.settings
    return {**service.engine.describe(), "token_required": bool(s.token),
            "limits": {"max_body_bytes": s.max_body_bytes, "max_pixels": s.max_pixels,
                       "max_batch_items": s.max_batch_items, "timeout_s": s.timeout_s}}


# ---- predictions ----------------------------------------------------------------------------

async def _read_json(request):
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError("malformed JSON", f"the request body is not valid JSON ({e}).") from None


async def _read_form(request, max_files):
    """The multipart form, with Starlette's parser refusals (too many files or fields, a broken
    body) answered in the API's own shape instead of its plain 400."""
    from starlette.exceptions import HTTPException
    try:
        return await request.form(max_files=max_files)
    except HTTPException as e:
        reason = str(e.detail)
        if "too many files" in reason.lower():
            raise InputError("too many items", f"more than {max_files - 1} files in one request; the most is "
                                               f"{max_files - 1}. Split them.") from None
        if "too many fields" in reason.lower():
            raise InputError("too many fields", f"the form has too many fields ({reason}).") from None
        raise InputError("malformed form", f"the multipart body cannot be read ({reason}).") from None


def _unsupported(content_type, expected):
    return ServiceError(415, "unsupported content type",
                        f"got Content-Type {content_type or 'none'!r}; this model takes {expected}.")


def _field(payload, name, kind, example):
    if not isinstance(payload, dict) or name not in payload:
        raise InputError("missing field", f"the JSON body needs a field {name!r}, like {example}.")
    if not isinstance(payload[name], kind):
        raise InputError("wrong type", f"field {name!r} should be {kind.__name__ if isinstance(kind, type) else 'an object'}"
                                       f", got {type(payload[name]).__name__}.")
    return payload[name]


IMAGE_TYPES = "an image: multipart/form-data with a 'file' field, or the image bytes as image/* or application/octet-stream"
ROW_EXAMPLE = '{"row": {"column": value, ...}}'
ROWS_EXAMPLE = '{"rows": [{"column": value, ...}, ...]}'


async def _inputs(request, service, batch):
    """[(raw bytes for the record, name, payload for engine.prepare)] from a request."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if service.engine.kind == "tabular":
        if content_type != "application/json":
            raise _unsupported(content_type, "JSON: " + (ROWS_EXAMPLE if batch else ROW_EXAMPLE))
        payload = await _read_json(request)
        rows = _field(payload, "rows", list, ROWS_EXAMPLE) if batch else [_field(payload, "row", dict, ROW_EXAMPLE)]
        # canonical JSON (sorted keys), so a row sent again with a contest hashes the same
        return [(json.dumps(r, default=str, sort_keys=True).encode(), None, r) for r in rows]
    if content_type == "multipart/form-data":
        form = await _read_form(request, max_files=service.settings.max_batch_items + 1)
        files = form.getlist("files" if batch else "file") or form.getlist("file" if batch else "files")
        files = [f for f in files if hasattr(f, "read")]
        if not files:
            raise InputError("missing field", "the form needs a file field named " +
                             ("'files' (one per image)." if batch else "'file'."))
        out = []
        for f in files:
            out.append((await f.read(), f.filename, None))
        return out
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        if batch:
            raise _unsupported(content_type, "several images as multipart/form-data, one 'files' field each")
        return [(await request.body(), None, None)]
    raise _unsupported(content_type, IMAGE_TYPES)


async def _predict_one(service, data, name, payload, explain=False):
    """Prepare (in a thread), predict (batched), remember the input for feedback."""
    engine = service.engine
    prepared = await run_in_threadpool(engine.prepare, payload if payload is not None else data, name)
    result = await service.predict(prepared)
    if isinstance(result, Exception):
        raise result
    prediction_id = uuid.uuid4().hex
    out = {"prediction_id": prediction_id, "model_version": engine.version, **result}
    if explain and engine.kind == "image":
        _, png = await run_in_threadpool(engine.explain, data, name)
        out["heatmap"] = "data:image/png;base64," + base64.b64encode(png).decode()
    service.remember(prediction_id, engine.kind, data, name, result)
    return out


@predict_router.post("/predict", dependencies=[Depends(check_token)])
async def predict(request: Request, explain: bool = False, service=Depends(ready_service)):
    """Predict one image (upload) or one row ({"row": {...}}). explain=true adds a heatmap (images)."""
    [(data, name, payload)] = await _inputs(request, service, batch=False)
    return await _predict_one(service, data, name, payload, explain)


@predict_router.post("/predict/batch", dependencies=[Depends(check_token)])
async def predict_batch(request: Request, explain: bool = False, service=Depends(ready_service)):
    """Predict many images (multipart, 'files') or rows ({"rows": [...]}); one answer per input,
    in order, an unusable input answered with its error instead of failing the others."""
    if explain:
        raise InputError("explain one at a time", "heatmaps are drawn for one image at a time: POST it to "
                                                  "/predict?explain=true.")
    items = await _inputs(request, service, batch=True)
    limit = service.settings.max_batch_items
    if len(items) > limit:
        raise InputError("too many items", f"{len(items)} inputs in one request; the most is {limit}. Split them.")

    async def one(item):
        try:
            return await _predict_one(service, *item)
        except InputError as e:
            service.metrics.errors.labels(e.detail).inc()
            return {"error": {"detail": e.detail, "message": e.message}}

    answers = await asyncio.gather(*(one(item) for item in items))
    return {"model_version": service.engine.version, "predictions": answers}


# ---- feedback -------------------------------------------------------------------------------

@feedback_router.post("/feedback", status_code=201, dependencies=[Depends(check_token)])
async def feedback(request: Request, service=Depends(ready_service)):
    """Contest a prediction: {"prediction_id": ..., "correct": label or value, "comment": optional}.

    As JSON, or as multipart/form-data with the same fields plus the input again ('file' for an
    image; for a row, a 'row' field of JSON), which a busy server needs once it has let the
    input go. The input, the prediction, the model version and the answer are stored durably
    before this returns; `centaur feedback export` turns them into a dataset.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    example = '{"prediction_id": "...", "correct": "label"}'
    resent = None
    if content_type == "application/json":
        payload = await _read_json(request)
        if isinstance(payload, dict) and isinstance(payload.get("row"), dict):
            resent = json.dumps(payload["row"], default=str, sort_keys=True).encode()
    elif content_type == "multipart/form-data":
        form = await _read_form(request, max_files=2)
        payload = {k: v for k, v in form.items() if isinstance(v, str)}
        if "correct" in payload:  # a form sends text: a JSON list or number stays one, a label stays text
            try:
                payload["correct"] = json.loads(payload["correct"])
            except json.JSONDecodeError:
                pass
        upload = form.get("file")
        if hasattr(upload, "read"):
            resent = await upload.read()
        elif "row" in payload:
            try:
                resent = json.dumps(json.loads(payload["row"]), default=str, sort_keys=True).encode()
            except json.JSONDecodeError:
                raise InputError("malformed JSON", "the form field 'row' is not valid JSON.") from None
    else:
        raise _unsupported(content_type, "JSON: " + example + ", or a form with those fields and the input as 'file'")
    prediction_id = _field(payload, "prediction_id", str, example)
    if "correct" not in payload:
        raise InputError("missing field", "the body needs a field 'correct': the right label or value.")
    correct = service.engine.check_correct(payload["correct"])
    comment = payload.get("comment") or None
    if comment is not None and (not isinstance(comment, str) or len(comment) > 10_000):
        raise InputError("wrong type", "field 'comment' should be text of at most 10,000 characters.")
    known = service.predictions.get(prediction_id)
    if known is None:
        raise ServiceError(404, "prediction not found",
                           f"no recent prediction {prediction_id!r}: it is unknown, or older than the "
                           f"{service.settings.recent_predictions:,} this server keeps. Predict again, then contest "
                           "the new prediction.")
    kind, digest, name, prediction = known
    if _same_answer(prediction, correct):
        raise InputError("not a correction", f"the model already predicted {correct!r} for this input; a contest "
                                             "gives the answer that is right instead.")
    data = service.inputs.get(prediction_id)
    if data is None and resent is not None:
        if hashlib.sha256(resent).hexdigest() != digest:
            raise InputError("input does not match", "the input sent with this contest is not the one that was "
                                                     "predicted; send the same file (or row) again.")
        data = resent
    if data is None:
        raise ServiceError(409, "input no longer kept",
                           "this server has let the input of that prediction go to make room; send it again with "
                           "the contest, as a form with the fields and the image as 'file' (or the row as 'row').")
    case_id = await run_in_threadpool(
        service.store.add, model_version=service.engine.version, prediction_id=prediction_id,
        input_kind="image" if kind == "image" else "row", input_bytes=data, prediction=prediction,
        correct=correct, input_name=name, comment=comment)
    service.metrics.feedback.inc()
    return {"id": case_id, "stored": True, "prediction_id": prediction_id, "correct": correct}


def _same_answer(prediction, correct):
    """Whether the answer a person gives is what the model said (then there is nothing to contest)."""
    if "label" in prediction:
        return correct == prediction["label"]
    if "labels" in prediction:
        return isinstance(correct, list) and sorted(map(str, correct)) == sorted(map(str, prediction["labels"]))
    return "value" in prediction and correct == prediction["value"]
