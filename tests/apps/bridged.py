"""tests.apps.basic's WSGI app wrapped in WSGIBridge by hand: an ASGI app, so the
asgi class serves it through the bridge as an ASGI adapter, not the direct path."""

from hybrid.bridge import WSGIBridge
from tests.apps.basic import app as wsgi_app

app = WSGIBridge(wsgi_app)
