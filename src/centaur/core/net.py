"""A listening socket for the servers (the model service and the labeling workbench)."""
import socket

from .errors import CentaurError


def listen(host, port):
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
