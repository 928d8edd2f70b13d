"""The workbench's HTTP API (FastAPI) and its static page. The page uses only this API.

Arrays the page draws are sent compactly: image ids, label indices and confidences as JSON
lists of numbers, layouts as raw little-endian float32 (x, y per image, NaN where an image is
not embedded yet), in the order of GET /api/images.

Errors answer {"detail": what is wrong and what to do}. Every label write returns once it is
committed to the store, so what the page shows as saved is on disk.
"""
import hmac
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from ..core.errors import CentaurError
from ..core.images import ImageError
from .project import UnknownImage

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 4_000_000  # 50,000 image ids in one label request take about 0.4 MB
MAX_K = 1000


class LabelRequest(BaseModel):
    ids: list[int] = Field(min_length=1, description="image ids to label")
    label: Optional[str] = Field(description="the label; null removes the label")
    how: str = Field("manual", max_length=40, description="how the images were chosen: lasso, similar, ...")
    author: Optional[str] = Field(None, max_length=100)


class SimilarRequest(BaseModel):
    ids: list[int] = Field(min_length=1)
    k: int = Field(50, ge=1, le=MAX_K)
    layer: str = "last"
    unlabeled_only: bool = True


class FinetuneRequest(BaseModel):
    epochs: int = Field(3, ge=1, le=100)
    size: Optional[int] = Field(None, ge=32, le=1024)


class ExportRequest(BaseModel):
    what: list[str] = ["labels", "predictions", "folders", "model"]
    mode: str = Field("link", pattern="^(link|copy)$")


def create_app(project, token=None, background=True):
    """The workbench for a Project. token: required on every request when set (bound beyond
    loopback). background: scan and embed in a background thread when the app starts."""

    @asynccontextmanager
    async def lifespan(app):
        if background:
            project.start()
        yield
        project.stop()

    app = FastAPI(title="centaur workbench", summary="Label a folder of images with a machine's help.",
                  lifespan=lifespan)
    app.state.project = project
    app.include_router(api_router(project))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.exception_handler(CentaurError)
    async def _centaur_error(request, e):
        return JSONResponse({"detail": str(e)}, status_code=404 if isinstance(e, UnknownImage) else 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        return JSONResponse({"detail": str(e.detail)}, status_code=e.status_code)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is None and request.method == "POST" and "chunked" in request.headers.get("transfer-encoding", ""):
            # a body of unknown length could be any size: browsers always say how long theirs are
            return JSONResponse({"detail": "send the request body with a Content-Length."}, status_code=411)
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY_BYTES:,} bytes."}, status_code=413)
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or \
                request.query_params.get("token", "") or request.cookies.get("centaur_token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": "this workbench needs its token: open the URL it printed "
                                               "(with ?token=...)."}, status_code=401)
        response = await call_next(request)
        if token and request.query_params.get("token") == token:
            response.set_cookie("centaur_token", token, httponly=True, samesite="strict")
        return response

    return app


def api_router(project):
    router = APIRouter(prefix="/api")

    @router.get("/project")
    def summary():
        """Counts, labels with their counts, embedding progress, the last trained model."""
        return project.summary()

    @router.get("/images")
    def images():
        """Every image: ids, paths, status, label index into label_names (-1 = unlabeled)."""
        rows = project.images()
        return dict(ids=[r["id"] for r in rows], paths=[r["path"] for r in rows],
                    status=[r["status"] for r in rows], label_names=project.label_names(),
                    labels=project.label_rows().tolist(), version=project.store_version())

    @router.get("/layout")
    def layout(layer: str = "last", method: str = "pca"):
        """float32 x, y per image (in /api/images order), in [0, 1]; NaN until an image is embedded."""
        coords = project.layout(layer, method)
        return Response(coords.astype("<f4").tobytes(), media_type="application/octet-stream",
                        headers={"X-Images": str(len(coords)), "Cache-Control": "no-store"})

    @router.get("/layouts")
    def layouts():
        """Layers and projections available now (LDA once two labels exist)."""
        from .embeddings import LAYERS
        from .projection import methods
        return dict(layers=list(LAYERS), methods=methods(len(project.label_names())))

    @router.get("/thumb/{image_id}")
    def thumb(image_id: int):
        return Response(_image_or_422(project.thumbnail, image_id), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=86400"})

    @router.get("/image/{image_id}")
    def image(image_id: int):
        """The image itself (only images: anything else in the folder, or linked from it, is a 422)."""
        data, media_type = _image_or_422(lambda i: project.viewable(project.path(i)), image_id)
        return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=86400"})

    @router.get("/file")
    def file(path: str):
        """An image by its path relative to the project folder (confined to it; only images)."""
        target = project.resolve(path)
        data, media_type = _image_or_422(project.viewable, target)
        return Response(data, media_type=media_type)

    @router.post("/labels")
    def label(body: LabelRequest, request: Request):
        """Label (or, with label null, unlabel) images as one action that undo reverses whole."""
        author = body.author or _author(request)
        action = project.label(body.ids, body.label, author=author, how=body.how)
        return dict(action=action, labels=project.store.label_counts(), version=project.store_version())

    @router.post("/undo")
    def undo(request: Request):
        """Undo the requester's last action (X-Centaur-Author: their name; 'local' when not given), so that
        on a shared project one person's Ctrl+Z never takes back another's work."""
        action = project.store.undo(author=_author(request), own=True)
        return dict(action=action, labels=project.store.label_counts(), version=project.store_version())

    @router.post("/redo")
    def redo(request: Request):
        """Redo the requester's last undone action."""
        action = project.store.redo(author=_author(request), own=True)
        return dict(action=action, labels=project.store.label_counts(), version=project.store_version())

    @router.get("/history")
    def history(limit: int = 50):
        return project.store.history(limit=max(1, min(limit, 1000)))

    @router.post("/similar")
    def similar(body: SimilarRequest):
        """Nearest neighbours of the selection across all images (unlabeled ones by default)."""
        ids, scores = project.similar(body.ids, k=body.k, layer=body.layer, unlabeled_only=body.unlabeled_only)
        return dict(ids=ids, scores=scores)

    @router.post("/train")
    def train():
        """Train a head on the labeled images' embeddings; cross-validated accuracy with its interval."""
        result = project.train()
        return dict(classes=result.classes, accuracy=result.accuracy, interval=list(result.interval),
                    num_labeled=result.num_labeled, counts=result.counts, folds=result.folds, seconds=result.seconds)

    @router.get("/predictions")
    def predictions(limit: int = 100):
        """Per image: predicted label index into classes (-1 = none) and confidence; the review queue
        (unlabeled images, least certain first); fade_threshold: the confidence from which the page fades.
        """
        from .learn import FADE_THRESHOLD, review_queue
        found = project.predictions()
        if found is None:
            return dict(classes=[], predicted=[], confidence=[], queue=[], fade_threshold=FADE_THRESHOLD)
        classes, probs = found
        known = ~np.isnan(probs[:, 0])
        predicted = np.where(known, np.nan_to_num(probs).argmax(1), -1)
        confidence = np.where(known, np.nan_to_num(probs).max(1), 0.0)
        order = review_queue(probs, ~known | (project.label_rows() >= 0), limit=max(0, min(limit, 10_000)))
        images = project.images()
        return dict(classes=classes, predicted=predicted.tolist(), confidence=np.round(confidence, 4).tolist(),
                    queue=[images[int(r)]["id"] for r in order], fade_threshold=FADE_THRESHOLD)

    @router.post("/finetune")
    def finetune(body: FinetuneRequest = FinetuneRequest()):
        """Start a full fine-tune of the network on the labels, in the background (`centaur train`)."""
        return project.finetune(epochs=body.epochs, size=body.size)

    @router.get("/finetune")
    def finetune_status():
        """The background fine-tune: idle, running, done or failed; the last lines of its log."""
        return project.finetune_status()

    @router.post("/export")
    def export(body: ExportRequest = ExportRequest()):
        """Write labels, predictions, a folder per class and the model under .centaur/export."""
        return project.export(what=tuple(body.what), mode=body.mode)

    @router.get("/export/{name}")
    def download(name: str):
        """Download labels.csv, labels.json or predictions.csv, freshly written."""
        kinds = {"labels.csv": "labels", "labels.json": "labels", "predictions.csv": "predictions"}
        if name not in kinds:
            raise CentaurError(f"no export named {name!r}; choose labels.csv, labels.json or predictions.csv.")
        written = project.export(what=(kinds[name],))
        path = Path(written.get({"labels.json": "labels_json"}.get(name, kinds[name]), ""))
        if not path.is_file():
            raise CentaurError("no predictions yet: train first.")
        return FileResponse(path, filename=name)

    @router.post("/rescan")
    def rescan():
        """Look for new images and embed them in the background."""
        started = project.start()
        return dict(started=started, progress=project.progress)

    return router


def _author(request):
    """Who sends a request: the X-Centaur-Author header the page sets from its name field, else 'local'."""
    from urllib.parse import unquote
    name = unquote(request.headers.get("x-centaur-author", "")).strip()  # the page percent-encodes it
    if len(name) > 100:
        raise CentaurError("the author name is longer than 100 characters; use a shorter one.")
    return name or "local"


def _image_or_422(make, image):
    try:
        return make(image)
    except ImageError as e:
        raise CentaurError(f"image {image} cannot be shown: {e}") from None
