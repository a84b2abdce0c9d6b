"""ASGI 3 applications served through mod_wsgi_rs's request path.

Loaded once per interpreter (src/asgi/mod.rs) as module `_mod_wsgi_rs_asgi`,
the first time a script's callable is an ASGI one (mod.rs decides). The
application is wrapped in `AsgiApplication`, an object the request path
calls like a WSGI application, so everything around
the call (both modes, the daemon protocol, Content-Length checks, logging,
metrics, timeouts) is the WSGI path's.

Each interpreter runs one asyncio event loop (uvloop when installed) in a
thread of its own. A request's thread hands the application's coroutine to
that loop and then serves it: it reads the request body when the
application awaits `receive()` and writes each `http.response.body` before
the application's `send()` returns (back-pressure), blocking only itself.
`lifespan` runs once per application and interpreter, before its first
request; a failed startup fails that request as a failed import would, and
the next request tries again.
"""

import asyncio
import atexit
import concurrent.futures
import http
import queue
import sys
import threading
import time

_lock = threading.Lock()
_runtime = None

# How long a request thread blocks at once while waiting for the loop: a
# Python-level wait, so that an exception raised in the thread (the daemon's
# request-timeout) is seen at least this often.
_WAIT = 0.25
# How long close() lets an application run on after its response failed
# (client gone, timeout) before cancelling it, and how long it waits for
# the cancellation.
_GRACE = 5.0
# Body bytes per `http.request` message.
_CHUNK = 65536


class _Runtime:
    """The interpreter's event loop, in its own daemon thread."""

    def __init__(self):
        try:
            import uvloop
            self.loop = uvloop.new_event_loop()
            self.kind = "uvloop"
        except ImportError:
            self.loop = asyncio.new_event_loop()
            self.kind = "asyncio"
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="mod_wsgi_rs-asgi",
            daemon=True)
        self.thread.start()
        ready.wait()
        self.lifespans = []
        atexit.register(self.shutdown)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def submit(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def shutdown(self):
        """At interpreter exit: lifespan.shutdown for each application that
        started, then the loop stops."""
        for lifespan in self.lifespans:
            lifespan.shut_down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=_GRACE)


def runtime():
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = _Runtime()
    return _runtime


def _wait(future, timeout=None):
    """future.result(), waiting in short steps (see _WAIT)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = _WAIT if deadline is None else min(
            _WAIT, max(0.0, deadline - time.monotonic()))
        try:
            return future.result(timeout=step)
        except concurrent.futures.TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise


class LifespanFailed(Exception):
    pass


class _Lifespan:
    """The `lifespan` scope of one application in this interpreter."""

    def __init__(self, app, rt):
        self.app, self.rt = app, rt
        self.state = {}
        self.supported = True
        self.to_app = None
        self.startup = concurrent.futures.Future()
        self.shutdown = concurrent.futures.Future()
        self.task = rt.submit(self._main())

    async def _main(self):
        self.to_app = asyncio.Queue()
        self.to_app.put_nowait({"type": "lifespan.startup"})
        scope = {"type": "lifespan",
                 "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as e:
            if not self.startup.done():
                # As uvicorn's "auto": an application that raises before
                # answering the startup does not do lifespan.
                self.supported = False
                self.startup.set_result(None)
                self.shutdown.set_result(None)
                return
            if not self.shutdown.done():
                self.shutdown.set_exception(e)
            raise
        finally:
            if not self.startup.done():
                # Returned without a word about startup: as uvicorn, serve
                # without lifespan.
                self.supported = False
                self.startup.set_result(None)
            if not self.shutdown.done():
                self.shutdown.set_result(None)

    async def _receive(self):
        return await self.to_app.get()

    async def _send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.startup.set_result(None)
        elif kind == "lifespan.startup.failed":
            self.startup.set_exception(LifespanFailed(
                "lifespan startup failed: %s" % message.get("message", "")))
        elif kind == "lifespan.shutdown.complete":
            self.shutdown.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            self.shutdown.set_exception(LifespanFailed(
                "lifespan shutdown failed: %s" % message.get("message", "")))

    def shut_down(self):
        if not self.supported or not self.startup.done() \
                or self.startup.exception() is not None:
            return
        self.rt.loop.call_soon_threadsafe(
            self.to_app.put_nowait, {"type": "lifespan.shutdown"})
        try:
            _wait(self.shutdown, timeout=_GRACE)
        except Exception as e:
            print("mod_wsgi_rs: ASGI lifespan shutdown: %s" % e,
                  file=sys.stderr)


class AsgiApplication:
    """An ASGI application, callable as a WSGI one."""

    def __init__(self, app):
        self.app = app
        self.lifespan = None
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        rt = runtime()
        state = self._started(rt)
        return _Exchange(self.app, rt, environ, start_response, state)

    def _started(self, rt):
        with self.lock:
            lifespan = self.lifespan
            if lifespan is None:
                lifespan = self.lifespan = _Lifespan(self.app, rt)
        try:
            _wait(lifespan.startup)
        except BaseException:
            with self.lock:
                if self.lifespan is lifespan:
                    # The next request tries again, as after a failed import.
                    self.lifespan = None
            raise
        if lifespan.supported and lifespan not in rt.lifespans:
            with self.lock:
                if lifespan not in rt.lifespans:
                    rt.lifespans.append(lifespan)
        return lifespan.state if lifespan.supported else None


def _text(value):
    """A PEP 3333 environ string (one character per byte) as the text the
    bytes spell in UTF-8."""
    return value.encode("latin-1").decode("utf-8", "replace")


def _address(host, port):
    try:
        return [host, int(port)] if host else None
    except (TypeError, ValueError):
        return [host, 0]


def make_scope(environ, state):
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
            headers.append((name.encode("latin-1"), value.encode("latin-1")))
    for key, name in (("CONTENT_TYPE", b"content-type"),
                      ("CONTENT_LENGTH", b"content-length")):
        if environ.get(key):
            headers.append((name, environ[key].encode("latin-1")))
    script_name = environ.get("SCRIPT_NAME", "")
    path_info = environ.get("PATH_INFO", "")
    request_uri = environ.get("REQUEST_URI", "")
    raw_path = request_uri.split("?", 1)[0] or (script_name + path_info)
    protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    version = protocol.split("/", 1)[-1]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "2" if version.startswith("2") else version,
        "method": environ.get("REQUEST_METHOD", "GET"),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": _text(script_name + path_info),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": _text(script_name),
        "headers": headers,
        "client": _address(environ.get("REMOTE_ADDR"),
                           environ.get("REMOTE_PORT")),
        "server": _address(environ.get("SERVER_ADDR")
                           or environ.get("SERVER_NAME"),
                           environ.get("SERVER_PORT")),
        "extensions": {"mod_wsgi": {
            "process_group": environ.get("mod_wsgi.process_group", ""),
            "application_group": environ.get("mod_wsgi.application_group",
                                             ""),
            "environ": environ,
            "event_loop": runtime().kind,
        }},
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Exchange:
    """One request: the WSGI iterable the request path consumes, fed by
    the application's coroutine on the loop."""

    def __init__(self, app, rt, environ, start_response, state):
        self.rt = rt
        self.loop = rt.loop
        self.start_response = start_response
        self.input = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH", "")
        self.remaining = int(length) if length.isdigit() else None
        # No Content-Length and no Transfer-Encoding: no body (RFC 9112).
        self.bodiless = self.remaining == 0 or (
            self.remaining is None
            and not environ.get("HTTP_TRANSFER_ENCODING"))
        self.body_read = False
        # Set once the response is complete or can no longer be: from then
        # on receive() answers http.disconnect.
        self.over = False
        self.disconnected = False
        self.started = False
        self.finished = False
        self.unacked = None
        self.parked = []
        # The coroutine's "done" event has been taken.
        self.ended = False
        self.events = queue.SimpleQueue()
        scope = make_scope(environ, state)
        self.future = rt.submit(self._run(app, scope))

    async def _run(self, app, scope):
        try:
            await app(scope, self._receive, self._send)
        finally:
            self.events.put(("done",))

    async def _receive(self):
        if self.over:
            return {"type": "http.disconnect"}
        if self.bodiless and not self.body_read:
            # Nothing to read: answered here, without a trip to the
            # request thread.
            self.body_read = True
            return {"type": "http.request", "body": b"", "more_body": False}
        future = self.loop.create_future()
        self.events.put(("receive", future))
        return await future

    async def _send(self, message):
        if self.disconnected:
            raise OSError("the client is gone")
        kind = message.get("type")
        if kind == "http.response.start" or (
                kind == "http.response.body"
                and not message.get("more_body", False)):
            # Nothing to hold the application back for: the head goes out
            # with the first body bytes, and after the last ones there is
            # nothing more to send. Each trip between the loop and the
            # request thread costs two thread wake-ups.
            self.events.put(("send", message, None))
            return
        future = self.loop.create_future()
        self.events.put(("send", message, future))
        await future

    def _resolve(self, future, value=None, error=None):
        if future is None:
            if error is not None:
                # The application did not wait for this message: the
                # response fails instead.
                raise error
            return

        def settle():
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
        self.loop.call_soon_threadsafe(settle)

    def _next_event(self):
        while True:
            try:
                return self.events.get(timeout=_WAIT)
            except queue.Empty:
                continue

    def _read_body(self):
        if self.body_read:
            return None
        want = _CHUNK if self.remaining is None \
            else min(_CHUNK, self.remaining)
        try:
            chunk = self.input.read(want) if want > 0 else b""
        except OSError:
            self.disconnected = self.over = True
            return {"type": "http.disconnect"}
        if self.remaining is not None:
            self.remaining -= len(chunk)
            more = self.remaining > 0 and bool(chunk)
        else:
            more = bool(chunk)
        if not more:
            self.body_read = True
        return {"type": "http.request", "body": chunk, "more_body": more}

    def _ack(self):
        if self.unacked is not None:
            self._resolve(self.unacked)
            self.unacked = None

    def __iter__(self):
        return self

    def __next__(self):
        # The previous block has been written: its send() returns now.
        self._ack()
        if self.finished or self.ended:
            raise StopIteration
        while True:
            event = self._next_event()
            kind = event[0]
            if kind == "receive":
                message = self._read_body()
                if message is None:
                    # Body all read: the next message is the disconnect,
                    # once the response is over.
                    self.parked.append(event[1])
                else:
                    self._resolve(event[1], message)
                continue
            if kind == "done":
                self.ended = True
                error = self.future.exception()
                if error is not None:
                    raise error
                if not self.started:
                    raise RuntimeError(
                        "ASGI application returned without starting "
                        "a response")
                raise RuntimeError(
                    "ASGI application returned before the end of its "
                    "response body")
            message, future = event[1], event[2]
            block = self._sent(message, future)
            if block is not None:
                return block
            if self.finished:
                raise StopIteration

    def _sent(self, message, future):
        """Takes one message the application sent; returns body bytes to
        write (the send returns once they are written), else None."""
        kind = message.get("type")
        if kind == "http.response.start":
            if self.started:
                self._resolve(future, error=RuntimeError(
                    "http.response.start sent twice"))
                return None
            status = int(message["status"])
            headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                       for k, v in message.get("headers", ())]
            self.start_response("%d %s" % (status, _reason(status)), headers)
            self.started = True
            self._resolve(future)
            return None
        if kind == "http.response.body":
            if not self.started or self.finished:
                self._resolve(future, error=RuntimeError(
                    "http.response.body %s" % (
                        "before http.response.start" if not self.started
                        else "after the response ended")))
                return None
            body = bytes(message.get("body", b""))
            if not message.get("more_body", False):
                self.finished = True
            if body:
                self.unacked = future
                return body
            self._resolve(future)
            return None
        # Extensions this server does not offer (trailers, pathsend, ...)
        # were not announced in the scope; anything else is ignored as
        # uvicorn does.
        self._resolve(future)
        return None

    def close(self):
        """After the response (complete or not): the application sees the
        disconnect, and the request ends when its coroutine does; one
        that outlives a failed response by _GRACE is cancelled."""
        self._ack()
        self.over = True
        if not self.finished:
            self.disconnected = True
        for future in self.parked:
            self._resolve(future, {"type": "http.disconnect"})
        self.parked = []
        deadline = None if self.finished else time.monotonic() + _GRACE
        cancelled = False
        while not self.ended:
            if deadline is not None and time.monotonic() > deadline:
                if cancelled:
                    break
                self.future.cancel()
                cancelled = True
                deadline = time.monotonic() + _GRACE
            try:
                event = self.events.get(timeout=_WAIT)
            except queue.Empty:
                continue
            if event[0] == "done":
                self.ended = True
            elif event[0] == "receive":
                self._resolve(event[1], {"type": "http.disconnect"})
            elif event[0] == "send" and event[2] is not None:
                self._resolve(event[2], error=OSError(
                    "the response is over"))
        if self.finished and self.ended and not cancelled:
            # The coroutine has ended ("done" is its last step): its outcome
            # is there at once. An error after a complete response is only
            # logged (the request path reports what close() raises).
            error = self.future.exception(timeout=_GRACE)
            if error is not None:
                raise error
