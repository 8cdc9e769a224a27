"""The returner hands job returns to `kubesalt status record` and never fails a job."""

import pytest

import saltext.kubesalt.returners.kubesalt as returner
import saltext.kubesalt.utils.binary as kb


@pytest.fixture
def configure_loader_modules():
    return {returner: {"__opts__": {"kubesalt.status_db": "/tmp/x/status.db"}}}


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(kb, "run", lambda opts, binary, args, stdin=None: seen.append((args, stdin)) or {})
    return seen


def test_returner_records_one(calls):
    ret = {"id": "w0", "fun": "state.apply", "jid": "1", "return": {}}
    returner.returner(ret)
    assert calls == [(["status", "record", "--db", "/tmp/x/status.db"], [ret])]


def test_event_return_takes_job_returns_only(calls):
    job = {"id": "w0", "fun": "kubesalt_net.routes_sync", "jid": "2", "return": {}}
    returner.event_return(
        [
            {"tag": "salt/job/2/ret/w0", "data": job},
            {"tag": "salt/job/2/new", "data": {"jid": "2"}},
            {"tag": "salt/auth", "data": {"id": "w0"}},
            {"tag": "kubesalt/virt/w0/created", "data": {}},
        ]
    )
    assert calls == [(["status", "record", "--db", "/tmp/x/status.db"], [job])]
    calls.clear()
    returner.event_return([{"tag": "salt/auth", "data": {}}])
    assert calls == []


def test_failure_is_logged_not_raised(monkeypatch, caplog):
    def boom(*a, **k):
        raise kb.KubesaltError("kubesalt status record: failed (exit 1): disk full")

    monkeypatch.setattr(kb, "run", boom)
    returner.returner({"id": "w0", "fun": "state.apply", "jid": "3", "return": {}})
    assert (
        "could not record 1 job return(s): kubesalt status record: failed (exit 1): disk full" in caplog.text
    )
