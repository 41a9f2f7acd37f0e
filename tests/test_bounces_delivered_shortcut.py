"""The scheduler records a 2xx reply without the classifier (issue 17): what
it writes must be what the classifier says of every 2xx reply."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.delivery.bounce import classify, find_enhanced_status


@settings(max_examples=2000, deadline=None)
@given(st.integers(200, 299), st.text(alphabet="0123456789. 245abX-", max_size=60))
@example(250, "2.0.0 Ok: queued as 4Xy")
@example(250, "5.1.1 odd but 2xx")
@example(250, "")
@example(250, "1.2.3.4 2.6.0 ok")
def test_2xx_is_delivered_with_its_enhanced_status(code: int, text: str) -> None:
    c = classify(code, text)
    assert str(c.category) == "delivered"
    assert c.enhanced_status == find_enhanced_status(text)
