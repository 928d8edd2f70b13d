"""`centaur serve`: settings from flags, environment and file, then uvicorn on the app."""
import socket
import sys

from ..core.errors import CentaurError
from ..core.log import warn


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
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    print(f"serving {model_dir} at http://{'[' + host + ']' if ':' in host else host}:{port}/ "
          "(Ctrl-C stops)", file=sys.stderr, flush=True)
    config = uvicorn.Config(create_app(settings, engine), log_level="warning", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _bind(host, port):
    """Bind the listening socket ourselves, so port 0 gives a free port we can print."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it, a reply written in two parts waits for
    # the client's delayed ACK (Nagle's algorithm): 40 ms more per request, measured on
    # loopback (bench/serve_load.py), three times the model's own time.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise CentaurError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port, or 0 for any "
                           "free one.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
