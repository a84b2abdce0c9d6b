import sys
import zlib

import django
from django.http import HttpResponse, StreamingHttpResponse
from django.template import engines
from django.views.decorators.csrf import csrf_exempt

FORM = engines["django"].from_string(
    '<form method="post" action="">{% csrf_token %}<input name="message"></form>'
)


def index(request):
    return HttpResponse(
        "django %s prefix=%s script=%s" % (django.get_version(), sys.prefix, request.META["SCRIPT_NAME"]),
        content_type="text/plain",
    )


def form(request):
    if request.method == "POST":
        return HttpResponse("posted: %s" % request.POST["message"], content_type="text/plain")
    return HttpResponse(FORM.render({}, request))


@csrf_exempt
def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return HttpResponse(
        "upload %s size=%d adler=%08x note=%s" % (f.name, len(data), zlib.adler32(data), request.POST.get("note", "")),
        content_type="text/plain",
    )


def stream(request):
    count = int(request.GET.get("n", "10"))
    return StreamingHttpResponse(("item %d\n" % i for i in range(count)), content_type="text/plain")
