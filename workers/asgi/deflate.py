"""permessage-deflate (RFC 7692) with the server's memory per WebSocket bounded.

wsproto's `PerMessageDeflate` compresses with zlib's defaults, a 32 KiB
window and memory level 8: about 256 KiB of zlib state per socket once it
has sent one compressed message (measured: 112 KiB of RSS per socket). The
server's own compressor is its choice: RFC 7692 7.1.2.1 lets a server answer
with `server_max_window_bits` whether or not the client offered it, and the
memory level is never negotiated. `BoundedDeflate` answers with
--ws-deflate-window-bits and compresses with --ws-deflate-mem-level (the
websockets library's server defaults are 12 and 5). The client's window,
which sizes our decompressor, is asked for the same size, which a client
may grant only when it offered `client_max_window_bits` (browsers do);
otherwise it keeps 32 KiB.
"""

from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, RsvBits


class BoundedDeflate(PerMessageDeflate):
    """PerMessageDeflate whose compressor uses `window_bits` and `mem_level`."""

    # (wsproto's, declared again for the compiled build, which type-checks this
    # module without wsproto installed)
    server_max_window_bits: int
    _compressor: zlib._Compress | None

    def __init__(self, window_bits: int, mem_level: int) -> None:
        super().__init__(client_max_window_bits=window_bits, server_max_window_bits=window_bits)
        self.mem_level = mem_level

    def accept(self, offer: str) -> bool | None | str:
        ours = self.server_max_window_bits
        parameters = super().accept(offer)
        if not isinstance(parameters, str):
            return parameters
        if "client_max_window_bits" not in parameters:
            # The client did not say it can use a smaller window: it compresses
            # with the full one, and our decompressor must take that.
            self.client_max_window_bits = self.DEFAULT_CLIENT_MAX_WINDOW_BITS
        # The client may have asked for a smaller window than ours; never a larger one.
        self.server_max_window_bits = min(self.server_max_window_bits, ours)
        if "server_max_window_bits" not in parameters:
            parameters = "; ".join(filter(None, [
                parameters, f"server_max_window_bits={self.server_max_window_bits}"]))
        return parameters

    def frame_outbound(self, proto: FrameDecoder | FrameProtocol, opcode: Opcode,
                       rsv: RsvBits, data: bytes, fin: bool) -> tuple[RsvBits, bytes]:
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            self._compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.server_max_window_bits,
                self.mem_level)
        return super().frame_outbound(proto, opcode, rsv, data, fin)
