import pytest_twisted
from twisted.internet import defer, reactor, task


@pytest_twisted.inlineCallbacks
def test_reactor_is_qt_reactor():
    import qreactor

    assert isinstance(reactor, qreactor.QtReactor)
    result = yield task.deferLater(reactor, 0.01, lambda: 42)
    assert result == 42
    yield defer.succeed(None)
