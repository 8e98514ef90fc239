"""What booting made, moved out of the garbage collector's way (--gc-freeze).

An app, its framework and their imports live as long as the process. Left in
the collector's generations, every full collection walks them all, and full
collections come often where objects outlive a request's turn (the bridge's,
held across threads): in the bridge they were the slowest requests (p99
27-29 ms, 4.6-6.3 ms with the boot heap frozen; benchmarks/RESULTS.md).

`settle()` collects what booting left behind, then moves every object still
alive into the permanent generation, which no collection walks. The arbiter
settles an app it imported before forking (--preload), so that a worker's own
collections never write to, and so copy, the pages it shares with the
arbiter; each worker settles once it has booted, before its first connection.
Frozen objects are freed by reference counting as before; a cycle among them
is never collected, and `gc.get_objects()` and `gc.get_referrers()` no longer
show them.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect the garbage there is, then freeze every object still alive."""
    gc.collect()
    gc.freeze()
