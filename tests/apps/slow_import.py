"""A WSGI app whose import takes $SLOW_IMPORT seconds (a big project's start-up)."""

import os
import time

time.sleep(float(os.environ.get("SLOW_IMPORT", "3")))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"loaded at last"]
