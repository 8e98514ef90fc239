"""A real Flask app, to show hybrid serves what people actually run."""

import hashlib
import tempfile
import threading

from flask import Flask, Response, jsonify, request, send_file

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


# --- what the bridge tests use ---------------------------------------------------------

CLOSED = {"endless": 0}


@app.post("/form")
def form():
    response = jsonify(fields=request.form.to_dict(), cookie=request.cookies.get("session"))
    response.set_cookie("seen", "yes")
    return response


@app.post("/upload")
def upload():
    upload = request.files["document"]
    data = upload.read()
    return jsonify(name=upload.filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(), note=request.form.get("note"))


@app.get("/stream")
def stream():
    count = int(request.args.get("n", "3"))
    return Response((f"line {i}\n" for i in range(count)), mimetype="text/plain")


@app.get("/download")
def download():
    size = int(request.args.get("size", "100000"))
    handle = tempfile.TemporaryFile()
    handle.write(bytes(range(256)) * (size // 256) + bytes(size % 256))
    handle.seek(0)
    return send_file(handle, mimetype="application/octet-stream", download_name="blob.bin")


@app.get("/boom")
def boom():
    raise RuntimeError("the view failed on purpose")


@app.get("/endless")
def endless():
    def pieces():
        try:
            while True:
                yield b"x" * 65536
        finally:
            CLOSED["endless"] += 1

    return Response(pieces(), mimetype="application/octet-stream")


@app.get("/endless-closed")
def endless_closed():
    return str(CLOSED["endless"])


@app.get("/thread")
def thread_name():
    return threading.current_thread().name
