"""HTTP/2 on the asgi class: the connection that takes over from HTTP/1.1's
(ALPN, h2c by prior knowledge or by upgrade), its streams as ASGI HTTP
cycles, and the one room that knows the engine (`ngh2`, the `http2` extra).

Nothing here is imported unless the worker serves HTTP/2
(`hybrid.http2_options.serves_h2`): the engine may not be installed.

    connection.py   `H2Connection`: bytes to the engine, after the flood
                    budgets; events to the streams
    lifetime.py     writing once per turn of the loop, idleness, the stop
    stream.py       `StreamCycle`: one stream's `send()`, held to the
                    client's window; the body credited as the app reads
    tunnel.py       a WebSocket over one stream (RFC 8441)
    engine.py       `Engine`: ngh2, behind the least the connection needs
"""
