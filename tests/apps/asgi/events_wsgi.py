# A WSGI script for tests/asgi.rs, in the same process and interpreter as
# the ASGI apps: it records the request events of the requests to /api and
# /ws and answers them, with the requests in mod_wsgi.active_requests, as
# JSON.
import json

import mod_wsgi

_uris = {}
finished = []


def _on_event(name, **event):
    if name == "request_started":
        _uris[event.get("request_id")] = event["request_environ"].get("REQUEST_URI", "")
    elif name == "request_finished":
        uri = _uris.pop(event.get("request_id"), "")
        if uri.startswith(("/api", "/ws")):
            finished.append({
                "uri": uri,
                "status": event["status"],
                "application_time": event["application_time"],
                "output_length": event["output_length"],
            })


mod_wsgi.subscribe_events(_on_event)


def application(environ, start_response):
    body = json.dumps({
        "finished": finished,
        "active": list(mod_wsgi.active_requests),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
