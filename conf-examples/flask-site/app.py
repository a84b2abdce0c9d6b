"""A small Flask application: a JSON endpoint and a form that is posted
back (served by ../flask.conf)."""
import os

from flask import Flask, jsonify, request

app = Flask(__name__)

FORM = """<!doctype html>
<title>Greeting</title>
<form method="post" action="greet">
  <label>Name <input name="name"></label>
  <button>Send</button>
</form>
"""


@app.get("/api/status")
def status():
    return jsonify(
        app="flask-example",
        pid=os.getpid(),
        process_group=request.environ.get("mod_wsgi.process_group", ""),
    )


@app.get("/greet")
def greet_form():
    return FORM


@app.post("/greet")
def greet():
    name = request.form.get("name", "").strip()
    if not name:
        return "a name is needed\n", 400
    return jsonify(greeting=f"Hello, {name}!")
