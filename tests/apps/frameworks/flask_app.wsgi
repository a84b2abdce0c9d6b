# Flask application for tests/frameworks.rs, loaded from a virtualenv.
import sys
import zlib
from importlib.metadata import version

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@app.route("/")
def index():
    return "flask %s prefix=%s" % (version("flask"), sys.prefix)


@app.route("/hello/<name>")
def hello(name):
    return "Hello, %s! (%s %s)" % (name, request.method, request.path)


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    data = f.read()
    return "upload %s size=%d adler=%08x note=%s" % (
        f.filename, len(data), zlib.adler32(data), request.form.get("note", ""))


@app.route("/stream")
def stream():
    count = int(request.args.get("n", "10"))

    def rows():
        # stream_with_context keeps the request usable while streaming.
        tag = request.args.get("tag", "")
        for i in range(count):
            yield "row %d %s\n" % (i, tag)

    return Response(stream_with_context(rows()), mimetype="text/plain")


application = app
