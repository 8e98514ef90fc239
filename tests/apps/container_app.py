"""The user's app of the container tests: copied into an image built FROM
hybrid's, as a user's Dockerfile would.

    /                   a greeting
    /slow?seconds=N     answers after N seconds (a request in flight at a stop);
                        says "slow request started" on stderr when it begins
    /orphan             leaves a process whose parent has exited: the kernel
                        hands it to PID 1, which must reap it; the answer is its pid
"""

import subprocess
import sys
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        seconds = float(parse_qs(environ["QUERY_STRING"]).get("seconds", ["1"])[0])
        print("slow request started", file=sys.stderr, flush=True)
        time.sleep(seconds)
        body = b"slept\n"
    elif path == "/orphan":
        # sh starts sleep in the background, prints its pid and exits, so
        # sleep outlives its parent; reaping sh here leaves sleep to PID 1.
        shell = subprocess.run(["sh", "-c", "sleep 1 >/dev/null 2>&1 & echo $!"], capture_output=True, check=True)
        body = shell.stdout
    else:
        body = b"Hello from a container\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
