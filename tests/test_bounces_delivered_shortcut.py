"""The scheduler records a 2xx reply without the classifier (issue 17): what
it writes must be what the classifier says of every 2xx reply."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.delivery.bounce import _search_enhanced, classify, find_enhanced_status


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


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789. 245abX-\t\u0663", max_size=40))
@example("2.0.0 Ok")
@example("2.0.0")
@example("2.0.0.1 no")
@example("2.0.00 no")
@example("4.7.1 try later")
@example("3.0.0 not a class")
@example("2.\u0663.0 arabic digit")
@example("2.0.0\tOk")
def test_the_leading_status_shortcut_is_the_search(text: str) -> None:
    # A reply that starts "D.D.D " is answered from its first five
    # characters; everything must be what the pattern search finds.
    assert find_enhanced_status(text) == _search_enhanced(text)
    assert find_enhanced_status("x " + text) == _search_enhanced("x " + text)
