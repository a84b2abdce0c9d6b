# PEP 3333 conformance app for tests/pep3333.rs. Every route runs inside
# wsgiref.validate.validator, with validator warnings turned into errors, so
# a protocol slip by the server (or by this app) is an AssertionError or a
# WSGIWarning in the error log and, usually, a 500.
import os
import sys
import time
import warnings
import zlib
from wsgiref.validate import validator, WSGIWarning

warnings.simplefilter("error", WSGIWarning)

MARKERS = os.path.join(os.path.dirname(__file__), "markers")


def mark(name, text):
    """Writes a marker file the test reads (atomically: write then rename)."""
    tmp = os.path.join(MARKERS, ".%s.%d.tmp" % (name, os.getpid()))
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(MARKERS, name))


def digest(data, state=None):
    length, adler = state or (0, 1)
    return length + len(data), zlib.adler32(data, adler)


def summary(state, extra=""):
    length, adler = state
    return ("len=%d adler=%08x%s" % (length, adler, extra)).encode()


def text(start_response, body, status="200 OK", headers=()):
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))] + list(headers))
    return [body]


def read_pieces(inp, size):
    """wsgi.input read(n) until b'' (PEP 3333: the server must end it)."""
    state, reads = None, 0
    while True:
        chunk = inp.read(size)
        if not chunk:
            return state or (0, 1), reads
        assert len(chunk) <= size, "read(%d) returned %d bytes" % (size, len(chunk))
        state, reads = digest(chunk, state), reads + 1


def read_lines(inp, limit):
    """readline(), alternating with readline(limit) when limit > 0."""
    state, lines, n = None, 0, 0
    while True:
        if limit and n % 2:
            line = inp.readline(limit)
            assert len(line) <= limit, "readline(%d) gave %d bytes" % (limit, len(line))
        else:
            line = inp.readline()
        n += 1
        if not line:
            return state or (0, 1), lines
        assert b"\n" not in line[:-1], "readline() returned more than one line"
        if line.endswith(b"\n"):
            lines += 1
        state = digest(line, state)


def body_route(environ, start_response, how):
    inp = environ["wsgi.input"]
    if how == "read":
        size = int(environ.get("QUERY_STRING") or "65536")
        state, reads = read_pieces(inp, size)
        extra = " reads>1" if reads > 1 else ""
    elif how == "readline":
        limit = int(environ.get("QUERY_STRING") or "0")
        state, lines = read_lines(inp, limit)
        extra = " lines=%d" % lines
    elif how == "iter":
        # The validator's wrapper iterates with readline(); iterate the
        # server's own object to test its __iter__.
        raw = getattr(inp, "input", inp)
        state, lines = None, 0
        for line in raw:
            state, lines = digest(line, state), lines + 1
        state = state or (0, 1)
        extra = " lines=%d" % lines
    elif how == "readlines":
        state, lines = None, 0
        for line in inp.readlines():
            state, lines = digest(line, state), lines + 1
        state = state or (0, 1)
        extra = " lines=%d" % lines
    else:
        raise ValueError(how)
    # After the end, reading again gives b'' (not an error, not a hang).
    assert inp.read(10) == b"", "read after the end returned data"
    assert inp.readline() == b"", "readline after the end returned data"
    return text(start_response, summary(state, extra))


def stream_route(environ, start_response):
    count = int(environ.get("QUERY_STRING") or "500")

    def chunks():
        for i in range(count):
            yield b"chunk %05d %s\n" % (i, b"x" * (i % 97))

    start_response("200 OK", [("Content-Type", "text/plain")])
    return chunks()


def write_route(environ, start_response):
    count = int(environ.get("QUERY_STRING") or "300")
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(count):
        write(b"write %05d %s\n" % (i, b"y" * (i % 89)))
    # Data from write() comes first, then the iterable's.
    return [b"tail\n"]


def handshake_route(environ, start_response):
    """Sends one line, then waits for the client to say it has it: only a
    server that flushes each block lets the client see the line before the
    application returns."""
    token = environ.get("QUERY_STRING", "")
    go = os.path.join(MARKERS, "go-" + token)

    def body():
        yield b"first line\n"
        deadline = time.time() + 20
        while not os.path.exists(go):
            if time.time() > deadline:
                yield b"NOT STREAMED: the client never saw the first line\n"
                return
            time.sleep(0.02)
        yield b"streamed\n"

    start_response("200 OK", [("Content-Type", "text/plain")])
    return body()


class Closing:
    """An iterable whose close() leaves a marker."""

    def __init__(self, name, count, size):
        self.name, self.count, self.size, self.sent = name, count, size, 0

    def __iter__(self):
        for i in range(self.count):
            self.sent = i + 1
            yield b"z" * self.size

    def close(self):
        mark(self.name, "closed after %d blocks" % self.sent)


def close_route(environ, start_response):
    query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
    name = "close-" + query["token"]
    count, size = int(query.get("count", "3")), int(query.get("size", "10"))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Closing(name, count, size)


def exc_info_before_route(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Replaced", "no")])
    try:
        raise KeyError("changed my mind")
    except KeyError:
        # Nothing sent yet: the new status and headers replace the old ones.
        start_response("503 Service Unavailable",
                       [("Content-Type", "text/plain"), ("X-Replaced", "yes")],
                       sys.exc_info())
    return [b"replaced after error"]


def exc_info_after_route(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"part one|"
        try:
            raise ValueError("late failure")
        except ValueError:
            info = sys.exc_info()
            try:
                start_response("500 Internal Server Error",
                               [("Content-Type", "text/plain")], info)
            except BaseException as e:
                same = "same" if e is info[1] else "other"
                yield ("re-raised %s %s: %s" % (same, type(e).__name__, e)).encode()
            else:
                yield b"NOT RE-RAISED"

    return body()


def errors_route(environ, start_response):
    errors = environ["wsgi.errors"]
    token = environ.get("QUERY_STRING", "")
    errors.write("pep3333 errors.write %s\n" % token)
    errors.writelines(["pep3333 errors.writelines %s\n" % token])
    errors.flush()
    return text(start_response, b"logged")


def inner(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    if path == "/hello":
        return text(start_response, b"Hello, PEP 3333\n", headers=[("X-Method", method)])
    if path.startswith("/body/"):
        return body_route(environ, start_response, path[len("/body/"):])
    if path == "/stream":
        return stream_route(environ, start_response)
    if path == "/write":
        return write_route(environ, start_response)
    if path == "/handshake":
        return handshake_route(environ, start_response)
    if path == "/close":
        return close_route(environ, start_response)
    if path == "/exc-before":
        return exc_info_before_route(environ, start_response)
    if path == "/exc-after":
        return exc_info_after_route(environ, start_response)
    if path == "/errors":
        return errors_route(environ, start_response)
    return text(start_response, b"no route " + path.encode(), "404 Not Found")


validated = validator(inner)


def application(environ, start_response):
    # Outside the validator on purpose: an app whose Content-Length is
    # shorter than its body (the server must not send more than it said).
    if environ.get("PATH_INFO") == "/short-length":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"01234", b"56789"]
    return validated(environ, start_response)
