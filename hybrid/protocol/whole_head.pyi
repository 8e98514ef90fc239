"""The type checker's view of whole_head.pyx (a Cython extension of the compiled build)."""

from hybrid.protocol.events import Event

KNOWN_NAMES: dict[bytes, int]
METHODS: tuple[str, ...]

class WholeHeads:
    @property
    def closes(self) -> bool: ...
    def __init__(self, max_line: int, max_field_line: int, max_fields: int, head_limit: int,
                 body_limit: int) -> None: ...
    def read(self, data: bytes, events: list[Event]) -> int: ...
