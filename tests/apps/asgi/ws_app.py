# Starlette WebSocket endpoints for tests/asgi.rs. Markers go to the
# directory named in the file `marker_dir` (markers.py).
import asyncio

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from markers import mark


async def echo(ws):
    # Text comes back upper-cased, bytes reversed; "close" and "boom" end
    # the session from the application's side.
    subprotocols = ws.scope.get("subprotocols", [])
    await ws.accept(subprotocol=subprotocols[0] if subprotocols else None)
    await ws.send_text("hello %s %s" % (ws.scope["path"], ws.scope["root_path"]))
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            mark("ws_disconnect", str(message.get("code")))
            return
        text = message.get("text")
        if text is None:
            await ws.send_bytes(message["bytes"][::-1])
        elif text == "close":
            await ws.close(code=4000, reason="asked to")
            return
        elif text == "boom":
            raise RuntimeError("boom inside a websocket")
        else:
            await ws.send_text(text.upper())


async def deny(ws):
    await ws.close()


async def ticker(ws):
    # The server speaks first, unasked, while the client says nothing.
    await ws.accept()
    for i in range(3):
        await ws.send_text("tick %d" % i)
        await asyncio.sleep(0.05)
    await ws.close()


app = Starlette(routes=[
    WebSocketRoute("/echo", echo),
    WebSocketRoute("/deny", deny),
    WebSocketRoute("/ticker", ticker),
])
