"""hybrid: a pre-fork application server for WSGI and ASGI apps."""

import os
from typing import Any

from hybrid import native

__version__ = "0.1.0"

# Before any other module of hybrid loads: compiled or interpreted, never a mix.
native.choose(os.path.dirname(__file__))


def run(app: Any, **settings: Any) -> None:
    """Serve `app` as `hybrid run` does, for `if __name__ == "__main__":` scripts.

    `app` is an import string ("module:app") or the app object itself (then
    served as under --preload, and --reload is refused: new workers could not
    import new code). `settings` are named as the settings table names them:
    `hybrid.run("main:app", workers=4, worker_class="asgi", bind=["0.0.0.0:8000"])`,
    or as `uvicorn.run()` names them, with its types (`host="0.0.0.0", port=8000,
    headers=[("x-a", "b")], log_level=logging.INFO`...): each means what the same
    flag of uvicorn's means to `hybrid run`. A name neither has, a uvicorn name
    with no meaning here, or two names of one setting raise TypeError.
    Returns once the server stopped cleanly; a bad setting or an app that cannot
    start raises SystemExit with the status `hybrid run` exits with (after its
    one-line message).
    """
    from hybrid.cli import run_app  # (importing hybrid stays light)

    status = run_app(app, settings)
    if status:
        raise SystemExit(status)
