"""`centaur serve`: settings from flags, environment and file, then uvicorn on the app."""
import sys

from ..core.errors import CentaurError
from ..core.log import warn
from ..core.net import listen


def serve(model_dir, flags, config=None):
    """Build settings (flags over environment over config file) and run until Ctrl-C."""
    import uvicorn
    from pydantic import ValidationError

    from .app import create_app
    from .engine import load_engine
    from .settings import ServeSettings
    try:
        settings = ServeSettings(model_dir=model_dir, _env_file=config, **flags)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise CentaurError(f"invalid serve settings: {problems}.") from None
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.token:
        warn(f"serving on {settings.host}, reachable from other machines, without a token: anyone who can reach "
             "it can use the model and write feedback. Set CENTAUR_SERVE_TOKEN to require one.")
    engine = load_engine(settings)  # a damaged model or a missing model.onnx: one line, before binding
    sock = listen(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    runtime = "onnxruntime (model.onnx)" if settings.runtime == "onnx" else "PyTorch"
    print(f"serving {model_dir} with {runtime} at http://{'[' + host + ']' if ':' in host else host}:{port}/ "
          "(Ctrl-C stops)", file=sys.stderr, flush=True)
    config = uvicorn.Config(create_app(settings, engine), log_level="warning", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0

