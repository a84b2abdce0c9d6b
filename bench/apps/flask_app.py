# The Flask contender endpoint (`/api`): a JSON document built per request.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flask import Flask, jsonify, request  # noqa: E402

app = Flask(__name__)
ITEMS = [{"id": i, "name": "item %d" % i, "price": round(i * 1.25, 2)}
         for i in range(1, 21)]


@app.get("/api")
def api():
    limit = int(request.args.get("limit", 20))
    items = ITEMS[:limit]
    return jsonify(count=len(items), total=sum(i["price"] for i in items),
                   items=items)


application = app
