"""A small FastAPI application for conf-examples/fastapi.conf."""
import asyncio
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


@asynccontextmanager
async def lifespan(app):
    # Runs once per daemon process, before its first request; what it
    # yields is every request's `request.state`.
    yield {"started": time.time(), "notes": {"welcome": "Hello from FastAPI"}}


app = FastAPI(lifespan=lifespan)


class Note(BaseModel):
    text: str


@app.get("/status")
async def status(request: Request):
    extras = request.scope["extensions"]["mod_wsgi"]
    return {"app": "fastapi-example", "pid": os.getpid(),
            "process_group": extras["process_group"],
            "up_seconds": round(time.time() - request.state.started, 3)}


@app.post("/echo")
async def echo(note: Note):
    return {"text": note.text, "length": len(note.text)}


@app.get("/notes/{name}")
async def get_note(name: str, request: Request):
    if name not in request.state.notes:
        raise HTTPException(status_code=404, detail="no such note")
    return {"name": name, "text": request.state.notes[name]}


@app.get("/countdown")
async def countdown(start: int = 3):
    async def lines():
        for i in range(start, -1, -1):
            yield f"{i}\n"
            await asyncio.sleep(0.05)
    return StreamingResponse(lines(), media_type="text/plain")


@app.websocket("/chat")
async def chat(websocket: WebSocket):
    # A WebSocket (daemon mode): Apache relays the connection, the session
    # runs on the process's event loop, each message is answered.
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"you said: {text}")
    except WebSocketDisconnect:
        pass
