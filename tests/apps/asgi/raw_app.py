# A bare ASGI 3 callable named `app` (no framework): echoes what it read of
# the request body, in how many messages, and the scope's method and path;
# a header value of UTF-8 bytes.
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # no lifespan: the server must go on without it
    total, messages, digest = 0, 0, 0
    while True:
        message = await receive()
        messages += 1
        body = message.get("body", b"")
        total += len(body)
        for b in body[:16]:
            digest = (digest * 31 + b) % 1000003
        if not message.get("more_body"):
            break
    answer = json.dumps({"method": scope["method"], "path": scope["path"],
                         "bytes": total, "messages": messages}).encode()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(answer)).encode()),
                            # Any bytes but CR, LF and NUL go out as sent.
                            (b"x-bytes", "caf\u00e9 \u2713".encode())]})
    await send({"type": "http.response.body", "body": answer})
