"""Type stub for the compiled SMTP exchange floor (core/mailsflux/benchmark/_exchange.pyx)."""

def exchange(
    host: str,
    port: int,
    envelope: bytes,
    data: bytes,
    count: int,
    connections: int = 8,
    timeout: float = 30.0,
) -> tuple[int, float, float, float, bool, str]:
    """``(delivered, user_s, system_s, wall_s, pipelining, error)`` of sending
    ``data`` ``count`` times over ``connections`` connections."""
