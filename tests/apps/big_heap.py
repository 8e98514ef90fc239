"""A WSGI app whose import makes a large heap of objects the garbage collector
tracks (about 40 MB of small lists), as a big framework's does: what --preload
shares with the workers."""

HEAP = [[n] for n in range(300_000)]


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(len(HEAP)).encode()]
