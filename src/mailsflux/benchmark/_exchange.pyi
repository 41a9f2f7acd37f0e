"""Type stub for the compiled SMTP exchange floor (core/mailsflux/benchmark/_exchange.pyx)."""

def exchange(
    host: str,
    port: int,
    envelope: bytes,
    data: bytes,
    count: int,
    connections: int = 8,
    timeout: float = 30.0,
    sized_envelope: bytes | None = None,
) -> tuple[int, float, float, float, bool, str, bool]:
    """``(delivered, user_s, system_s, wall_s, pipelining, error, sized)`` of
    sending ``data`` ``count`` times over ``connections`` connections;
    ``sized``: ``sized_envelope`` went instead, the server offering SIZE."""
