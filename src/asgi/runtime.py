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

A WebSocket request (daemon mode) becomes a `websocket` scope: the request
thread answers the handshake through the request path (101 and a tunnel,
`start_response.switch_protocols`, or a denial as an HTTP response), and
the session then runs on the loop over the connection the Apache child
relays, with the frames of RFC 6455 made and parsed here.
"""

import asyncio
import atexit
import base64
import concurrent.futures
import hashlib
import http
import queue
import socket
import struct
import sys
import threading
import traceback
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
        # Tasks started by start() and still running.
        self.held = set()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="mod_wsgi_rs-asgi",
            daemon=True)
        self.thread.start()
        ready.wait()
        self.lifespans = []
        # The WebSockets open in this interpreter (touched on the loop only).
        self.websockets = set()
        atexit.register(self.shutdown)
        try:
            import mod_wsgi
            mod_wsgi.subscribe_shutdown(self._going_away)
        except Exception:
            pass

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def submit(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def start(self, coroutine_function):
        """Runs coroutine_function() as a task of the loop, from another
        thread, with nothing to wait on: cheaper than submit() (no
        concurrent Future). The task is held until it ends (the loop keeps
        only weak references to its tasks)."""
        self.loop.call_soon_threadsafe(self._start, coroutine_function)

    def _start(self, coroutine_function):
        task = self.loop.create_task(coroutine_function())
        self.held.add(task)
        task.add_done_callback(self.held.discard)

    def _going_away(self, *args, **event):
        """The process is stopping (mod_wsgi's process_stopping): every open
        WebSocket is closed with 1001, so that clients see a clean close
        and reconnect, rather than a cut connection. Not waited for here:
        the process waits for its requests (shutdown-timeout)."""
        async def close_all():
            sessions = list(self.websockets)
            await asyncio.gather(*(ws.going_away() for ws in sessions),
                                 return_exceptions=True)
        self.submit(close_all())

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
        if _is_websocket(environ):
            return _WebSocket(self.app, rt, environ, start_response, state)
        detach = getattr(start_response, "detach", None)
        exchange = detach() if detach is not None else None
        if exchange is not None:
            # Daemon mode: the loop serves it; this thread is free at once.
            _LoopHttp(self.app, rt, exchange, environ, state)
            return ()
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


def _response_start(message):
    """Status and headers (latin-1 text, as start_response takes them) of
    an `http.response.start` message."""
    headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
               for k, v in message.get("headers", ())]
    return int(message["status"]), headers


def _reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _RequestBody:
    """How much of a request's body is still to come, and the
    `http.request` messages that carry it (_CHUNK bytes at most each)."""

    def __init__(self, environ):
        length = environ.get("CONTENT_LENGTH", "")
        self.remaining = int(length) if length.isdigit() else None
        # No Content-Length and no Transfer-Encoding: no body (RFC 9112).
        self.none = self.remaining == 0 or (
            self.remaining is None
            and not environ.get("HTTP_TRANSFER_ENCODING"))
        # All of it was given to the application.
        self.read = False

    def want(self):
        """How many bytes to ask for next."""
        return _CHUNK if self.remaining is None \
            else min(_CHUNK, self.remaining)

    def message(self, chunk):
        """The `http.request` message for `chunk` (b"" at the end)."""
        if self.remaining is not None:
            self.remaining -= len(chunk)
            more = self.remaining > 0 and bool(chunk)
        else:
            more = bool(chunk)
        if not more:
            self.read = True
        return {"type": "http.request", "body": chunk, "more_body": more}


class _LoopHttp:
    """One request the event loop serves by itself (daemon mode): its
    request thread handed the exchange over (`start_response.detach()`,
    src/daemon/loop_exchange.rs) and went back to take the next one. The
    frames to and from the Apache child go through `exchange` without
    blocking; the loop waits for the socket to be readable (the request
    body) or writable (the response: each send() returns once the socket
    took its bytes, which is the back-pressure). So requests that await
    are held by the loop, as many as come, not one per request thread."""

    def __init__(self, app, rt, exchange, environ, state):
        self.app = app
        self.loop = rt.loop
        self.ex = exchange
        self.fd = exchange.fileno()
        self.body = _RequestBody(environ)
        self.head_request = environ.get("REQUEST_METHOD") == "HEAD"
        self.started = False
        self.finished = False
        # The exchange failed (Failure queued) or the worker is gone.
        self.failed = False
        self.lost = False
        self.timed_out = False
        self.declared = None
        self.produced = 0
        self.status = 0
        self.scope = make_scope(environ, state)
        rt.start(self._run)

    async def _run(self):
        ex = self.ex
        self.over = asyncio.Event()
        self.writing = asyncio.Lock()
        timer = None
        if ex.request_timeout > 0:
            timer = self.loop.call_later(
                ex.request_timeout, self._time_out, asyncio.current_task())
        try:
            try:
                await self.app(self.scope, self._receive, self._send)
                if not self.started:
                    raise RuntimeError(
                        "ASGI application returned without starting "
                        "a response")
                if not self.finished and not self.failed:
                    raise RuntimeError(
                        "ASGI application returned before the end of its "
                        "response body")
            except BaseException as error:
                if self.timed_out and isinstance(error,
                                                 asyncio.CancelledError):
                    import mod_wsgi
                    error = mod_wsgi.RequestTimeout(
                        "request-timeout=%gs" % ex.request_timeout)
                if not self.lost:
                    # After a complete response only logged (as WSGI).
                    ex.fail(error)
                    self.failed = True
            if timer is not None:
                timer.cancel()
            self.over.set()
            self.scope = None
            try:
                await self._flush()
            except OSError:
                self.lost = True
        finally:
            ex.close(self.finished and not self.failed and not self.lost)

    def _time_out(self, task):
        self.timed_out = True
        task.cancel()

    async def _wait_for(self, add, remove):
        future = self.loop.create_future()

        def ready():
            if not future.done():
                future.set_result(None)
        add(self.fd, ready)
        try:
            await future
        finally:
            remove(self.fd)

    async def _flush(self):
        async with self.writing:
            while not self.ex.flush():
                await self._wait_for(self.loop.add_writer,
                                     self.loop.remove_writer)

    async def _receive(self):
        if self.body.read or self.lost:
            # Nothing more comes: the disconnect, once the response is
            # over (as uvicorn).
            await self.over.wait()
            return {"type": "http.disconnect"}
        if self.body.none:
            return self.body.message(b"")
        try:
            self.ex.want_body(self.body.want())
            await self._flush()
            chunk = self.ex.read_body()
            while chunk is None:
                await self._wait_for(self.loop.add_reader,
                                     self.loop.remove_reader)
                chunk = self.ex.read_body()
        except OSError:
            self._lose()
            return {"type": "http.disconnect"}
        return self.body.message(chunk)

    async def _send(self, message):
        if self.lost:
            raise OSError("the client is gone")
        kind = message.get("type")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status, headers = _response_start(message)
            for name, value in headers:
                if name.lower() == "content-length" and value.strip().isdigit():
                    self.declared = int(value)
            self.ex.start(status, _reason(status), headers)
            self.status = status
            self.started = True
            # The head goes out with the first body bytes.
            return
        if kind != "http.response.body":
            # Extensions not announced in the scope: ignored, as uvicorn.
            return
        if not self.started or self.finished or self.failed:
            raise RuntimeError("http.response.body %s" % (
                "before http.response.start" if not self.started
                else "after the response ended"))
        body = bytes(message.get("body", b""))
        self._body(body)
        if not message.get("more_body", False):
            self.finished = True
            self._end()
        try:
            await self._flush()
        except OSError:
            # These bytes are lost with the client; the application hears
            # of it from receive() (http.disconnect), and from the next
            # send(), which raises.
            self._lose()

    def _lose(self):
        """The Apache child closed the connection (its client went away):
        a receive() waiting for the end hears the disconnect now."""
        self.lost = self.body.read = True
        self.over.set()

    def _body(self, body):
        """Queues body bytes, no more than the Content-Length declared
        (what is past it is not sent, as on the WSGI path)."""
        produced = self.produced + len(body)
        if self.declared is not None and produced > self.declared:
            if self.produced <= self.declared:
                self.ex.log("warning", "response body of more than %d bytes "
                            "is longer than its Content-Length of %d: only "
                            "%d were sent" % (self.declared, self.declared,
                                              self.declared))
            body = body[:max(0, self.declared - self.produced)]
        self.produced = produced
        self.ex.body(body)

    def _end(self):
        bodiless = (self.head_request or self.status < 200
                    or self.status in (204, 304))
        if (self.declared is not None and self.produced < self.declared
                and not bodiless):
            self.failed = True
            self.ex.fail(
                "response body ended after %d of the %d bytes its "
                "Content-Length declared" % (self.produced, self.declared))
        else:
            self.ex.end()
        self.over.set()


class _Exchange:
    """One request: the WSGI iterable the request path consumes, fed by
    the application's coroutine on the loop."""

    def __init__(self, app, rt, environ, start_response, state):
        self.rt = rt
        self.loop = rt.loop
        self.start_response = start_response
        self.input = environ["wsgi.input"]
        self.body = _RequestBody(environ)
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
        if self.body.none and not self.body.read:
            # Nothing to read: answered here, without a trip to the
            # request thread.
            return self.body.message(b"")
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
        if self.body.read:
            return None
        want = self.body.want()
        try:
            chunk = self.input.read(want) if want > 0 else b""
        except OSError:
            self.disconnected = self.over = True
            return {"type": "http.disconnect"}
        return self.body.message(chunk)

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
            status, headers = _response_start(message)
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


# RFC 6455: the key's suffix for Sec-WebSocket-Accept, and the largest
# message taken (uvicorn's default; a larger one is closed with 1009).
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_WS_MAX_MESSAGE = 16 * 1024 * 1024
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY = 0x0, 0x1, 0x2
_OP_CLOSE, _OP_PING, _OP_PONG = 0x8, 0x9, 0xA


def _is_websocket(environ):
    """An HTTP/1.1 GET asking to upgrade to a WebSocket."""
    return (environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            and environ.get("REQUEST_METHOD") == "GET"
            and environ.get("SERVER_PROTOCOL") == "HTTP/1.1"
            and "HTTP_SEC_WEBSOCKET_KEY" in environ)


def _ws_frame(opcode, payload=b""):
    """A final, unmasked frame (the server's)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def _ws_close_payload(code, reason=""):
    if code in (1005, 1006):
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")[:123]


def _ws_unmask(data, mask):
    n = len(data)
    if not n:
        return data
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big")
            ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class _WsProtocolError(Exception):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


class _WebSocket:
    """One WebSocket. The request thread iterates this as the request's
    (empty) WSGI response while the session runs on the loop: it answers a
    denial as an HTTP response. Once accepted, the thread is released: in
    daemon mode the session is handed to the loop with its exchange
    (`start_response.detach()`) and the thread goes back to serve others;
    in embedded mode the thread, Apache's, returns to relay the client
    connection to the loop's end of a socket pair. A daemon process at
    loop-held-limit keeps the thread, which waits for the session's end."""

    def __init__(self, app, rt, environ, start_response, state):
        self.rt = rt
        self.loop = rt.loop
        self.start_response = start_response
        self.key = environ["HTTP_SEC_WEBSOCKET_KEY"]
        self.version = environ.get("HTTP_SEC_WEBSOCKET_VERSION", "")
        # From the loop to the request thread: ("deny", status) and
        # ("done", error).
        self.events = queue.SimpleQueue()
        # connecting -> accepted -> closed (or connecting -> denied).
        self.state = "connecting"
        self.close_sent = False
        self.client_gone = False
        self.disconnect = None
        self.writer = None
        self.reader_task = None
        self.finished = False
        self.ended = False
        # The session's exchange once the loop holds it (the thread left).
        self.exchange = None
        self.embedded = not environ.get("mod_wsgi.process_group")
        # The request thread has left; the session reports its own end.
        self.released = False
        scope = make_scope(environ, state)
        del scope["method"]
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = [
            p.strip() for p in
            environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",")
            if p.strip()]
        self.future = rt.submit(self._run(app, scope))

    # The loop's side.

    async def _run(self, app, scope):
        self.incoming = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        error = None
        try:
            if self.version != "13":
                # RFC 6455 4.4: the versions this server speaks.
                self._deny(426)
                return
            await app(scope, self._receive, self._send)
        except BaseException as e:
            error = e
        finally:
            try:
                await self._end(error)
            finally:
                if self.exchange is not None:
                    self._end_exchange(error)
                elif self.released and error is not None and not isinstance(
                        error, asyncio.CancelledError):
                    # Embedded mode: the request is over; the error log is
                    # where the traceback goes (stderr is the error log).
                    print("mod_wsgi_rs: the WebSocket application failed "
                          "after accepting:", file=sys.stderr)
                    traceback.print_exception(error, file=sys.stderr)
                self.events.put(("done", error))

    def _end_exchange(self, error):
        """The loop-held session is over: its failure logged as the request
        thread would have, and the request counted done."""
        exchange, self.exchange = self.exchange, None
        try:
            if error is not None and not isinstance(
                    error, asyncio.CancelledError):
                exchange.fail(error)
        finally:
            exchange.close(False)

    async def going_away(self):
        if self.state == "accepted" and not self.client_gone:
            await self._write_close(1001, "server going away")

    async def _end(self, error):
        self.rt.websockets.discard(self)
        if self.state == "connecting":
            # Returned (or raised) without accepting: a plain 403, as
            # uvicorn answers (a raise becomes the request path's 500).
            if error is None:
                self._deny(403)
            return
        if self.state == "accepted" and not self.close_sent \
                and not self.client_gone:
            await self._write_close(1011 if error is not None else 1000)
        if self.reader_task is not None:
            self.reader_task.cancel()
        if self.writer is not None:
            self.writer.close()

    def _deny(self, status):
        self.state = "denied"
        self.events.put(("deny", status))

    async def _receive(self):
        if self.disconnect is not None and self.incoming.empty():
            return self.disconnect
        return await self.incoming.get()

    async def _send(self, message):
        kind = message.get("type")
        if self.state == "connecting":
            if kind == "websocket.accept":
                await self._accept(message)
            elif kind == "websocket.close":
                self._deny(403)
            else:
                raise RuntimeError("%s before websocket.accept" % kind)
            return
        if self.state != "accepted" or self.close_sent:
            if self.client_gone:
                raise OSError("the WebSocket client is gone")
            raise RuntimeError("%s after the WebSocket closed" % kind)
        if kind == "websocket.send":
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                await self._write(_ws_frame(_OP_BINARY, bytes(data)))
            elif text is not None:
                await self._write(_ws_frame(_OP_TEXT, text.encode("utf-8")))
            else:
                raise RuntimeError("websocket.send with neither bytes nor text")
        elif kind == "websocket.close":
            await self._write_close(int(message.get("code", 1000)),
                                    message.get("reason") or "")
            self.state = "closed"
        else:
            raise RuntimeError("unexpected ASGI message %r" % kind)

    async def _accept(self, message):
        digest = hashlib.sha1(self.key.encode("latin-1") + _WS_GUID).digest()
        headers = [("Sec-WebSocket-Accept", base64.b64encode(digest).decode())]
        if message.get("subprotocol"):
            headers.append(("Sec-WebSocket-Protocol", message["subprotocol"]))
        for name, value in message.get("headers", ()):
            headers.append((bytes(name).decode("latin-1"),
                            bytes(value).decode("latin-1")))
        fd = self.start_response.switch_protocols("websocket", headers,
                                                  after_return=True)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        reader, self.writer = await asyncio.open_connection(sock=sock)
        self.state = "accepted"
        self.rt.websockets.add(self)
        self.reader_task = self.loop.create_task(self._read_frames(reader))
        detach = getattr(self.start_response, "detach", None)
        self.exchange = detach() if detach is not None else None
        if self.exchange is not None or self.embedded:
            self.released = True
            self.events.put(("detached", None))

    async def _write(self, data):
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            self._client_gone()
            raise OSError("the WebSocket client is gone: %s" % e) from None

    async def _write_close(self, code, reason=""):
        if self.close_sent:
            return
        self.close_sent = True
        try:
            self.writer.write(_ws_frame(_OP_CLOSE,
                                        _ws_close_payload(code, reason)))
            await self.writer.drain()
        except (ConnectionError, OSError):
            self._client_gone()
            return
        # The client answers with its own close; then the connection ends.
        if self.reader_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.reader_task),
                                       _GRACE)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass

    def _client_gone(self, code=1006):
        self.client_gone = True
        self._disconnected(code)

    def _disconnected(self, code, reason=""):
        if self.disconnect is None:
            self.disconnect = {"type": "websocket.disconnect", "code": code,
                               "reason": reason}
            self.incoming.put_nowait(self.disconnect)

    async def _read_frames(self, reader):
        """Parses the client's frames into websocket.receive messages,
        answers pings, and ends at the close handshake or the
        connection's end."""
        try:
            await self._frames(reader)
        except _WsProtocolError as e:
            if not self.close_sent:
                self.close_sent = True
                try:
                    self.writer.write(_ws_frame(
                        _OP_CLOSE, _ws_close_payload(e.code, str(e))))
                    await self.writer.drain()
                except (ConnectionError, OSError):
                    pass
            self._disconnected(e.code, str(e))
            self.writer.close()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._client_gone()

    async def _frames(self, reader):
        parts, first_op, size = None, None, 0
        while True:
            b0, b1 = await reader.readexactly(2)
            fin, opcode, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b0 & 0x70:
                raise _WsProtocolError(1002, "reserved bits set")
            if not b1 & 0x80:
                raise _WsProtocolError(1002, "client frame not masked")
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            if opcode >= _OP_CLOSE and (not fin or length > 125):
                raise _WsProtocolError(1002, "bad control frame")
            if size + length > _WS_MAX_MESSAGE:
                raise _WsProtocolError(1009, "message too big")
            mask = await reader.readexactly(4)
            payload = _ws_unmask(await reader.readexactly(length), mask)
            if opcode == _OP_CLOSE:
                await self._closed_by_client(payload)
                return
            if opcode == _OP_PING:
                if not self.close_sent:
                    self.writer.write(_ws_frame(_OP_PONG, payload))
                    await self.writer.drain()
                continue
            if opcode == _OP_PONG:
                continue
            if opcode in (_OP_TEXT, _OP_BINARY):
                if parts is not None:
                    raise _WsProtocolError(1002, "new message inside a fragmented one")
                if fin:
                    self._deliver(opcode, payload)
                else:
                    parts, first_op, size = [payload], opcode, length
                continue
            if opcode == _OP_CONTINUATION:
                if parts is None:
                    raise _WsProtocolError(1002, "continuation of nothing")
                parts.append(payload)
                size += length
                if fin:
                    self._deliver(first_op, b"".join(parts))
                    parts, first_op, size = None, None, 0
                continue
            raise _WsProtocolError(1002, "unknown opcode %d" % opcode)

    def _deliver(self, opcode, payload):
        if opcode == _OP_TEXT:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise _WsProtocolError(1007, "text message not UTF-8") from None
            message = {"type": "websocket.receive", "text": text}
        else:
            message = {"type": "websocket.receive", "bytes": payload}
        self.incoming.put_nowait(message)

    async def _closed_by_client(self, payload):
        if len(payload) == 1:
            raise _WsProtocolError(1002, "close frame of one byte")
        code = struct.unpack("!H", payload[:2])[0] if payload else 1005
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _WsProtocolError(1007, "close reason not UTF-8") from None
        if not self.close_sent:
            # Echo the close (RFC 6455 5.5.1), then the connection ends.
            self.close_sent = True
            try:
                self.writer.write(_ws_frame(_OP_CLOSE,
                                            _ws_close_payload(code)))
                await self.writer.drain()
            except (ConnectionError, OSError):
                pass
        self._disconnected(code, reason)
        self.writer.close()

    # The request thread's side: the WSGI iterable.

    def __iter__(self):
        return self

    def __next__(self):
        while not self.finished:
            try:
                event = self.events.get(timeout=_WAIT)
            except queue.Empty:
                continue
            if event[0] == "deny":
                status = event[1]
                headers = [("Content-Length", "0")]
                if status == 426:
                    headers.append(("Sec-WebSocket-Version", "13"))
                self.start_response("%d %s" % (status, _reason(status)),
                                    headers)
                return b""
            if event[0] == "detached":
                # The loop holds the session now; it ends it there.
                self.finished = self.ended = True
                break
            self.finished = self.ended = True
            error = event[1]
            if error is not None and not isinstance(
                    error, asyncio.CancelledError):
                raise error
        raise StopIteration

    def close(self):
        if self.ended:
            return
        # The request thread stops early (an error, request-timeout): the
        # session ends with it.
        self.future.cancel()
        deadline = time.monotonic() + _GRACE
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=_WAIT)
            except queue.Empty:
                continue
            if event[0] == "done":
                break
        self.ended = True
