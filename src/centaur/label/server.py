"""`centaur label FOLDER`: the workbench on 127.0.0.1, its URL printed and opened in a browser."""
import asyncio
import logging
import os
import secrets
import sys
import webbrowser

from ..core.errors import CentaurError
from ..core.net import listen

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def run_workbench(folder, host="127.0.0.1", port=0, store=None, token=None, open_browser=True, size=160):
    """Open (or create) the project for `folder` and serve its workbench until Ctrl-C.

    Bound beyond this machine, every request needs a token: the one given, or a new random one
    printed in the URL."""
    import uvicorn

    from .app import create_app
    from .project import Project
    project = Project(folder, store=store, size=size)
    project.scan()  # an empty folder is one clear line, before anything listens
    if host not in LOOPBACK and not token:
        token = secrets.token_urlsafe(16)
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{shown}:{bound_port}/" + (f"?token={token}" if token else "")
    print(f"labeling {project.root} at {url} (Ctrl-C stops; labels are saved as you go)", file=sys.stderr, flush=True)
    if open_browser:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
        if not opened:
            print("no browser found here: open the URL above in one", file=sys.stderr, flush=True)
    # label writes take milliseconds: 2 s is ample for those in flight when Ctrl-C comes
    config = uvicorn.Config(create_app(project, token=token), log_level="warning", timeout_graceful_shutdown=2)
    logging.getLogger("uvicorn.error").addFilter(_quiet_cancel)
    status = 0
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        print("stopped by Ctrl-C.", file=sys.stderr)
        status = 130
    finally:
        project.close()
    # Every label is committed as it is made and the project is closed now. What may still run is
    # a layout for a page that is gone (UMAP's first run compiles for 10 s or more), in a thread
    # the interpreter would wait for: leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _quiet_cancel(record):
    """A request Ctrl-C cuts off (a layout still computing) is expected: no ERROR and traceback for it."""
    cancelled = record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError)
    return not cancelled and not record.getMessage().startswith("Cancel ")


def export_project(folder, out, store=None, mode="link", train=False, size=160):
    """`centaur label FOLDER --export OUT`: write what the workbench would, without serving."""
    import shlex

    from .project import Project
    project = Project(folder, store=store, size=size)
    try:
        if not project.store.labels():  # before embedding every image only to find nothing to train on
            command = shlex.join(["centaur", "label", str(folder)]) + (" --store ..." if store else "")
            raise CentaurError(f"no labels yet in {str(folder)!r}: label images in the workbench ({command}) "
                               "first, then export.")
        if train:
            project.scan()
            project.embed()
            result = project.train()
            print(f"trained on {result.num_labeled} labels: cross-validated accuracy {result.accuracy:.3f} "
                  f"(95% CI {result.interval[0]:.3f}-{result.interval[1]:.3f})", file=sys.stderr)
        written = project.export(out, mode=mode)
    finally:
        project.close()
    if not written:
        raise CentaurError("nothing to export.")
    for what, path in written.items():
        print(f"{what}: {path}")
    return 0
