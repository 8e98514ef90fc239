"""The `asgi` worker class: an event loop (uvloop by default), one asyncio
Protocol per connection, ASGI 3 HTTP and WebSocket cycles, and lifespan.

One module a seam:

    worker.py       the worker: the loop, signals, the heartbeat tick, the
                    graceful drain, lifespan around serving
    listener.py     accepting: by the loop, or by the worker near a bound
    connection.py   `HttpProtocol`: bytes to the shared HTTP core, events to
                    cycles (pipelining), a request's start and end; it moves
                    bytes only
    preamble.py     before the first request: the peer, TLS, a PROXY header
    lifetime.py     how a connection ends: its deadline, keep-alive
                    idleness, half-close, the lingering close
    idle.py         kept-alive connections, oldest first
    flow.py         `FlowControl`: reading pauses while the app is behind,
                    `send()` waits while the write buffer is full
    cycle.py        what a cycle sees of its connection and worker (typed
                    interfaces), the waiter, and the ladder that runs the app
    http_cycle.py   `HttpCycle` (a request's body, pace and end, on either
                    protocol), `Http1Cycle` (HTTP/1.1's framing) and
                    `RequestCycle`: one request's scope, `receive`, `send`
    wsgi_cycle.py   `WsgiCycle`: a WSGI app's HTTP/1.1 request, called on the
                    bridge's threads without ASGI between (the direct path)
    websocket.py    `WebSocketCycle`: the ASGI websocket cycle on wsproto
    deflate.py      permessage-deflate with a bounded compressor
    lifespan.py     the ASGI lifespan protocol

The worker class is `hybrid.workers.asgi.worker:AsgiWorker` (registered as
"asgi").
"""
