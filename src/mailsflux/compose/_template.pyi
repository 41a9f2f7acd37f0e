from collections.abc import Mapping
from typing import Any

class Template:
    """A Mustache template, compiled once, rendered many times."""

    name: str

    def __init__(
        self,
        source: str,
        *,
        partials: Mapping[str, str] | None = None,
        escape: bool = True,
        strict: bool = False,
        name: str = "<template>",
    ) -> None: ...
    @property
    def source(self) -> str: ...
    @property
    def variables(self) -> frozenset[str]: ...
    @property
    def escape(self) -> bool: ...
    @property
    def strict(self) -> bool: ...
    @property
    def missing_partials(self) -> tuple[tuple[str, str, int, int], ...]: ...
    def render(
        self,
        data: Mapping[str, Any],
        *,
        row: int | None = None,
        recipient: str | None = None,
    ) -> str: ...
    def render_bytes(
        self,
        data: Mapping[str, Any],
        *,
        row: int | None = None,
        recipient: str | None = None,
    ) -> bytes: ...

def render(
    source: str, data: Mapping[str, Any], partials: Mapping[str, str] | None = None
) -> str: ...
