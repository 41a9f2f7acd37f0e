"""A key ring read from a file reads it again on an unknown key id: a
running server learns a key another process added."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.errors import SpoolError
from mailsflux.spool import SpoolKeys


def test_a_ring_meeting_an_unknown_key_id_reads_its_file_again(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    server = SpoolKeys.load(path)
    old = server.current_id
    before = server.seal(b"sealed before", b"ctx")
    rotator = SpoolKeys.load(path, create=False)
    new = rotator.rotate()
    # Until it meets the new id the server seals with the old key, which the
    # file still holds.
    meanwhile = server.seal(b"sealed meanwhile", b"ctx")
    assert server.key_id(meanwhile) == old
    assert rotator.open(meanwhile, b"ctx") == b"sealed meanwhile"
    assert server.open(rotator.seal(b"after", b"ctx"), b"ctx") == b"after"
    assert server.current_id == new and server.ids == [new, old]
    assert server.open(before, b"ctx") == b"sealed before"
    # An id no file holds is still refused, naming the file.
    stranger = SpoolKeys.generate().seal(b"x", b"ctx")
    with pytest.raises(SpoolError, match="no longer holds"):
        server.open(stranger, b"ctx")
