import asyncio
import os
import threading

from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path


async def hello(request):
    await asyncio.sleep(0.01)
    return JsonResponse({
        "async": True,
        "path": request.path,
        "script_name": request.META.get("SCRIPT_NAME"),
        "method": request.method,
        "body_length": len(request.body),
        "name": request.GET.get("name"),
        "thread": threading.current_thread().name,
        "pid": os.getpid(),
    })


async def stream(request):
    async def parts():
        for i in range(3):
            await asyncio.sleep(0.01)
            yield f"part {i}\n"
    return StreamingHttpResponse(parts(), content_type="text/plain")


def sync_view(request):
    return JsonResponse({"async": False,
                         "thread": threading.current_thread().name})


urlpatterns = [
    path("hello", hello),
    path("stream", stream),
    path("sync", sync_view),
]
