# A FastAPI application for tests/asgi.rs. Markers go to the directory named
# in the file `marker_dir` (markers.py).
import asyncio
import os
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from markers import mark


@asynccontextmanager
async def lifespan(app):
    mark("startup", str(os.getpid()))
    yield {"started_by": os.getpid()}
    mark("shutdown", str(os.getpid()))


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def token(x_token: str = Header(default="")):
    if x_token != "secret":
        raise HTTPException(status_code=403, detail="bad token")
    return x_token


# Requests in flight in this process, and the most seen at once.
_in_flight = 0
_peak = 0


@app.get("/nap")
async def nap(seconds: float = 1.0):
    global _in_flight, _peak
    _in_flight += 1
    _peak = max(_peak, _in_flight)
    try:
        await asyncio.sleep(seconds)
    finally:
        _in_flight -= 1
    return {"peak": _peak, "pid": os.getpid()}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "total": item.price * 2, "tags": item.tags}


@app.get("/private")
async def private(t: str = Depends(token)):
    return {"ok": True}


@app.get("/stream")
async def stream(n: int = 5):
    async def numbers():
        for i in range(n):
            await asyncio.sleep(0.01)
            yield f"chunk {i}\n".encode()
    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/endless")
async def endless():
    async def forever():
        try:
            i = 0
            while True:
                yield f"tick {i}\n".encode() * 100
                i += 1
                await asyncio.sleep(0.05)
        finally:
            mark("endless-ended", str(os.getpid()))
    return StreamingResponse(forever(), media_type="text/plain")


@app.get("/later")
async def later(tasks: BackgroundTasks, tag: str):
    async def after():
        await asyncio.sleep(0.2)
        mark("background", tag)
    tasks.add_task(after)
    return {"scheduled": tag}


@app.get("/scope")
async def scope(request: Request):
    s = request.scope
    extras = s["extensions"]["mod_wsgi"]
    return {
        "path": s["path"],
        "root_path": s["root_path"],
        "scheme": s["scheme"],
        "client": s["client"],
        "server": s["server"],
        "http_version": s["http_version"],
        "query_string": s["query_string"].decode(),
        "header": request.headers.get("x-probe"),
        "process_group": extras["process_group"],
        "application_group": extras["application_group"],
        "remote_user": extras["environ"].get("REMOTE_USER"),
        "event_loop": extras["event_loop"],
        "loop_class": type(asyncio.get_running_loop()).__module__,
        "started_by": request.state.started_by,
        "pid": os.getpid(),
    }


@app.get("/drill")
async def drill():
    await asyncio.sleep(0.02)
    return PlainTextResponse("hello from the drill")
