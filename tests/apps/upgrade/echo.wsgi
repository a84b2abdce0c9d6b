# Switches to a line protocol through the ASGI adapter's hook (daemon mode
# only): echoes each line upper-cased until the client sends "bye" or
# closes; "shout" sends three lines unasked.
import os
import socket


def application(environ, start_response):
    if environ.get("HTTP_UPGRADE", "").lower() != "echo":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"pid=%d" % os.getpid()]
    try:
        fd = start_response.switch_protocols("echo", [("X-Echo", "1")])
    except RuntimeError as e:
        start_response("501 Not Implemented", [("Content-Type", "text/plain")])
        return [str(e).encode()]
    conn = socket.socket(fileno=fd)
    with conn, conn.makefile("rwb", buffering=0) as stream:
        for line in stream:
            line = line.rstrip(b"\r\n")
            if line == b"bye":
                stream.write(b"BYE\n")
                break
            if line == b"shout":
                stream.write(b"ONE\nTWO\nTHREE\n")
                continue
            stream.write(line.upper() + b"\n")
    return []
