"""A real Flask app, to show hybrid serves what people actually run."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "hello from flask"


@app.post("/json")
def echo_json():
    return jsonify(received=request.get_json(), path=request.path)


@app.get("/items/<int:item_id>")
def item(item_id):
    return jsonify(id=item_id, q=request.args.get("q"))
