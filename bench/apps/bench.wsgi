# The one WSGI application every contender serves in the benchmark.
# Paths (the static contender serves the same bytes at the same paths):
#   /hello  13 bytes
#   /64k    65536 bytes from one bytes object
#   /file   the 1 MiB file BENCH_FILE through wsgi.file_wrapper
#   /post   reads the whole request body in 64 KiB reads, answers its length
import os

HELLO = b"Hello World!\n"
BODY_64K = (b"0123456789abcdef" * 4096)
FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "file")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", "13")])
        return [HELLO]
    if path == "/64k":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", "65536")])
        return [BODY_64K]
    if path == "/file":
        f = open(FILE, "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 65536)
    if path == "/post":
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        total = 0
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                break
            total += len(chunk)
            remaining -= len(chunk)
        body = str(total).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", "10")])
    return [b"not found\n"]
