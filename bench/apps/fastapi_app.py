# The FastAPI (ASGI) contender endpoints: `/api`, the Flask endpoint's JSON
# document built per request, and `/sleep`, which awaits 10 ms (an
# application waiting on a database or another service) and answers a small
# JSON document.
import asyncio

from fastapi import FastAPI

app = FastAPI()
ITEMS = [{"id": i, "name": "item %d" % i, "price": round(i * 1.25, 2)}
         for i in range(1, 21)]


@app.get("/api")
async def api(limit: int = 20):
    items = ITEMS[:limit]
    return {"count": len(items), "total": sum(i["price"] for i in items),
            "items": items}


@app.get("/sleep")
async def sleep():
    await asyncio.sleep(0.01)
    return {"slept_ms": 10}


application = app
