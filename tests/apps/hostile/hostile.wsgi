# The application of tests/hostile.rs: routes a hostile client aims at
# (body readers that report what wsgi.input gave them, a long streamed
# response, an app that reads nothing) and the hostile application's own
# slips (bad start_response arguments, write() after the request).
# Each iterable's close() leaves a marker file the test waits for.
import os
import sys
import threading
import time
from urllib.parse import parse_qsl

MARKERS = os.path.join(os.path.dirname(__file__), "markers")


def mark(name, text):
    """Writes a marker file (atomically: written, then renamed)."""
    tmp = os.path.join(MARKERS, ".%s.%d.tmp" % (name, os.getpid()))
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(MARKERS, name))


def query(environ):
    return dict(parse_qsl(environ.get("QUERY_STRING", "")))


def text(start_response, body, status="200 OK"):
    body = body.encode("latin-1")
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


class BodyReader:
    """Reads the whole request body while iterated, then answers (and
    marks) 'read=N' or 'error=Class: message', with the seconds it took."""

    def __init__(self, environ, start_response, token, how, catch):
        self.input = environ["wsgi.input"]
        self.start_response = start_response
        self.token, self.how, self.catch = token, how, catch
        self.outcome = "not iterated"

    def read_all(self):
        total = 0
        while True:
            if self.how == "readline":
                piece = self.input.readline()
            elif self.how == "all":
                piece = self.input.read()
                total += len(piece)
                return total
            else:
                piece = self.input.read(65536)
            if not piece:
                return total
            total += len(piece)

    def __iter__(self):
        started = time.monotonic()
        try:
            self.outcome = "read=%d" % self.read_all()
        except Exception as e:
            self.outcome = "error=%s: %s secs=%.1f" % (
                type(e).__name__, e, time.monotonic() - started)
            if not self.catch:
                raise
            # A second read raises at once: the input stays failed.
            again = time.monotonic()
            try:
                self.input.read(1)
                self.outcome += " again=no error"
            except Exception as e:
                self.outcome += " again=%s" % type(e).__name__
            self.outcome += " in %.1fs" % (time.monotonic() - again)
        else:
            self.outcome += " secs=%.1f" % (time.monotonic() - started)
        body = (self.outcome + "\n").encode()
        self.start_response("200 OK", [("Content-Type", "text/plain"),
                                       ("Content-Length", str(len(body)))])
        yield body

    def close(self):
        mark("read-" + self.token, self.outcome)


class Stream:
    """`count` blocks of `size` bytes; close() marks how many were made."""

    def __init__(self, token, count, size):
        self.token, self.count, self.size, self.made = token, count, size, 0

    def __iter__(self):
        block = b"s" * self.size
        for i in range(self.count):
            self.made = i + 1
            yield block

    def close(self):
        mark("stream-" + self.token, "closed after %d blocks" % self.made)


# start_response arguments a hostile application passes: each raises in
# the application (uncaught, so the request is a 500). EVIL marks the
# bytes that must never reach the client.
BAD = {
    "value-cr": ("200 OK", [("X-Bad", "a\rEVIL: 1")]),
    "value-lf": ("200 OK", [("X-Bad", "a\nEVIL: 1")]),
    "value-crlf": ("200 OK", [("X-Bad", "a\r\nEVIL: 1")]),
    "value-nul": ("200 OK", [("X-Bad", "a\0EVIL")]),
    "name-cr": ("200 OK", [("X-Bad\rEVIL", "1")]),
    "name-lf": ("200 OK", [("X-Bad\nEVIL", "1")]),
    "name-nul": ("200 OK", [("X-Bad\0EVIL", "1")]),
    "name-colon": ("200 OK", [("X-Bad:EVIL", "1")]),
    "name-space": ("200 OK", [("X-Bad EVIL", "1")]),
    "name-tab": ("200 OK", [("X-Bad\tEVIL", "1")]),
    "name-empty": ("200 OK", [("", "EVIL")]),
    "value-non-latin1": ("200 OK", [("X-Bad", "EVIL\u20ac")]),
    "name-non-latin1": ("200 OK", [("X-EVIL\u20ac", "1")]),
    "name-bytes": ("200 OK", [(b"X-EVIL", "1")]),
    "value-bytes": ("200 OK", [("X-Bad", b"EVIL")]),
    "value-int": ("200 OK", [("X-Bad", 1)]),
    "value-none": ("200 OK", [("X-Bad", None)]),
    "name-none": ("200 OK", [(None, "EVIL")]),
    "header-not-tuple": ("200 OK", ["X-Bad: EVIL"]),
    "header-triple": ("200 OK", [("X-Bad", "EVIL", "x")]),
    "headers-tuple": ("200 OK", (("X-Bad", "EVIL"),)),
    "hop-by-hop": ("200 OK", [("Connection", "EVIL")]),
    "content-length-text": ("200 OK", [("Content-Length", "EVIL")]),
    "content-length-negative": ("200 OK", [("Content-Length", "-1")]),
    "status-abc": ("abc", [("X-Bad", "EVIL")]),
    "status-two-digits": ("20 OK", [("X-Bad", "EVIL")]),
    "status-four-digits": ("2000 OK", [("X-Bad", "EVIL")]),
    "status-empty": ("", [("X-Bad", "EVIL")]),
    "status-crlf": ("200 OK\r\nEVIL: 1", []),
    "status-low": ("099 EVIL", []),
    "status-int": (200, [("X-Bad", "EVIL")]),
    "status-bytes": (b"200 EVIL", []),
    "status-none": (None, [("X-Bad", "EVIL")]),
}


def bad_route(environ, start_response, case):
    status, headers = BAD[case]
    start_response(status, headers)
    return [b"EVIL body\n"]


# The write() callable of an earlier request, to be called later.
KEPT = {}


def write_after_route(environ, start_response, q):
    """step=keep: answers normally and keeps its write(); step=late calls
    the kept write() from a later request and answers what it raised."""
    if q.get("step") == "keep":
        KEPT["input"] = environ["wsgi.input"]
        KEPT["write"] = start_response("200 OK", [("Content-Type", "text/plain"),
                                                  ("Content-Length", "6")])
        return [b"first\n"]
    outcomes = []
    for what, act in (("write", lambda: KEPT["write"](b"EVIL late write\n")),
                      ("read", lambda: KEPT["input"].read(10))):
        try:
            act()
            outcomes.append("late %s: no error" % what)
        except Exception as e:
            outcomes.append("late %s: %s: %s" % (what, type(e).__name__, e))
    return text(start_response, "".join(o + "\n" for o in outcomes))


class WriteInClose:
    """write() from close(), once the iterable is exhausted: allowed by
    mod_wsgi (the request is not over), it must not break the framing."""

    def __init__(self, write):
        self.write = write

    def __iter__(self):
        yield b"body\n"

    def close(self):
        try:
            self.write(b"from close\n")
            mark("write-in-close", "no error")
        except Exception as e:
            mark("write-in-close", "%s: %s" % (type(e).__name__, e))


def write_thread_route(environ, start_response, q):
    """A thread keeps write() and calls it after the request is over."""
    token = q["token"]
    write = start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", "6")])

    def later():
        time.sleep(float(q.get("delay", "1")))
        try:
            write(b"EVIL from a thread\n")
            outcome = "no error"
        except Exception as e:
            outcome = "%s: %s" % (type(e).__name__, e)
        mark("thread-" + token, outcome)

    threading.Thread(target=later, daemon=True).start()
    return [b"first\n"]


def start_twice_route(environ, start_response, q):
    """start_response twice without exc_info after the head went out."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"part one\n"
    start_response("500 EVIL", [("X-Bad", "EVIL")])
    yield b"EVIL part two\n"


def exc_info_after_route(environ, start_response, q):
    """exc_info after the head went out: start_response re-raises it."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"part one\n"
    try:
        raise ValueError("hostile late failure")
    except ValueError:
        start_response("500 EVIL", [("X-Bad", "EVIL")], sys.exc_info())
    yield b"EVIL part two\n"


def environ_route(environ, start_response):
    lines = ["%s=%s" % (k, v) for k, v in sorted(environ.items())
             if isinstance(v, str)]
    return text(start_response, "\n".join(lines) + "\n")


def header_bytes_route(environ, start_response):
    """The bytes of some headers back as hex, the way frameworks get them
    (PEP 3333: str.encode('latin-1'); Django and Werkzeug do just that)."""
    lines = []
    for key in ("HTTP_X_RAW", "HTTP_COOKIE", "HTTP_USER_AGENT"):
        value = environ.get(key)
        lines.append("%s=%s" % (key, None if value is None else value.encode("latin-1").hex()))
    return text(start_response, "\n".join(lines) + "\n")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = query(environ)
    if path == "/pid":
        # (mod_wsgi before 6 has no mod_wsgi.server_pid: 0.)
        return text(start_response, "pid=%d\nserver_pid=%s\n"
                    % (os.getpid(), environ.get("mod_wsgi.server_pid") or 0))
    if path == "/read":
        return BodyReader(environ, start_response, q["token"], q.get("how", "read"),
                          q.get("catch", "1") == "1")
    if path == "/ignore":
        return text(start_response, "ignored pid=%d server_pid=%s\n"
                    % (os.getpid(), environ.get("mod_wsgi.server_pid") or 0))
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Stream(q["token"], int(q["count"]), int(q["size"]))
    if path == "/header-bytes":
        return header_bytes_route(environ, start_response)
    if path.startswith("/environ"):
        return environ_route(environ, start_response)
    if path == "/bad":
        return bad_route(environ, start_response, q["case"])
    if path == "/write-after":
        return write_after_route(environ, start_response, q)
    if path == "/write-in-close":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        return WriteInClose(write)
    if path == "/write-thread":
        return write_thread_route(environ, start_response, q)
    if path == "/start-twice":
        return start_twice_route(environ, start_response, q)
    if path == "/exc-info-after":
        return exc_info_after_route(environ, start_response, q)
    return text(start_response, "no route %s\n" % path, "404 Not Found")
