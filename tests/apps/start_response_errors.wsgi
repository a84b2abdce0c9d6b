# Each bad call of start_response, the exception it raises in the
# application (type and message), one line each; then the response of the
# last good call.
import sys

BAD_CALLS = [
    ("int status", lambda sr: sr(200, [])),
    ("tuple headers", lambda sr: sr("200 OK", ())),
    ("two digits", lambda sr: sr("20 OK", [])),
    ("no space", lambda sr: sr("200OK", [])),
    ("control in reason", lambda sr: sr("200 O\x01K", [])),
    ("non-latin-1 status", lambda sr: sr("200 \u20ac", [])),
    ("short header", lambda sr: sr("200 OK", [("X-A",)])),
    ("list header", lambda sr: sr("200 OK", [["X-A", "b"]])),
    ("bytes name", lambda sr: sr("200 OK", [(b"X-A", "b")])),
    ("empty name", lambda sr: sr("200 OK", [("", "b")])),
    ("space in name", lambda sr: sr("200 OK", [("X A", "b")])),
    ("CRLF in value", lambda sr: sr("200 OK", [("X-A", "a\r\nb")])),
    ("non-latin-1 value", lambda sr: sr("200 OK", [("X-A", "\u20ac")])),
    ("exc_info not a tuple", lambda sr: sr("200 OK", [], "x")),
]


def application(environ, start_response):
    if environ["PATH_INFO"] == "/after-output":
        return after_output(start_response)
    lines = []
    for label, call in BAD_CALLS:
        try:
            call(start_response)
            lines.append("%s: no exception" % label)
        except Exception as e:
            lines.append("%s: %s: %s" % (label, type(e).__name__, e))
    # Before any output a second call replaces the first.
    start_response("500 First", [("X-First", "1")])
    start_response("201 Created", [("X-Second", "1")])
    return [("\n".join(lines) + "\n").encode()]


def after_output(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one|"
    try:
        start_response("500 Again", [])
        yield b"no exception"
    except RuntimeError as e:
        yield ("RuntimeError: %s" % e).encode()
