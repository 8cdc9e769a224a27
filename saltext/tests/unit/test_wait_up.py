"""
kubesalt.wait_up: nothing is published while the minion is not connected,
one ping at a time waits its full time, and the step fails when the minion
never answers.
"""

import pytest
import salt.client
import salt.utils.minions

import saltext.kubesalt.runners.kubesalt as runner


@pytest.fixture
def configure_loader_modules():
    return {runner: {"__opts__": {"conf_file": "/etc/salt/master"}, "__context__": {}}}


@pytest.fixture
def master(monkeypatch):
    """A fake clock; connections by time; answers by publish."""
    state = {"now": 0.0, "connected_from": None, "answers": [], "sent": []}

    class Client:
        def cmd(self, tgt, fun, tgt_type, timeout):
            state["sent"].append((state["now"], tgt, fun, tgt_type, timeout))
            answer = state["answers"].pop(0) if state["answers"] else {}
            if not answer:
                state["now"] += timeout  # no answer: the publish waited its time
            return answer

    def connected(self):
        start = state["connected_from"]
        return {"m0"} | ({"w3"} if start is not None and state["now"] >= start else set())

    def sleep(seconds):
        state["now"] += seconds

    monkeypatch.setattr(salt.client, "get_local_client", lambda conf: Client())
    monkeypatch.setattr(salt.utils.minions.CkMinions, "__init__", lambda self, opts: None)
    monkeypatch.setattr(salt.utils.minions.CkMinions, "connected_ids", connected)
    monkeypatch.setattr("time.monotonic", lambda: state["now"])
    monkeypatch.setattr("time.sleep", sleep)
    return state


def test_no_publish_before_the_minion_connects(master):
    master["connected_from"] = 100
    master["answers"] = [{"w3": True}]
    ret = runner.wait_up("w3")
    assert ret["result"] is True and "1 ping(s)" in ret["comment"]
    assert [(t, tgt, fun) for t, tgt, fun, _, _ in master["sent"]] == [(100, "w3", "test.ping")]
    assert "retcode" not in runner.__context__


def test_a_ping_without_answer_waits_its_time_before_the_next(master):
    master["connected_from"] = 0
    master["answers"] = [{}, {"w3": True}]
    ret = runner.wait_up("w3", answer_within=300, interval=2)
    assert ret["result"] is True
    assert [(t, timeout) for t, _, _, _, timeout in master["sent"]] == [(0, 300), (302, 300)]


def test_behind_nat_every_minion_unseen_it_pings(master, monkeypatch):
    monkeypatch.setattr(salt.utils.minions.CkMinions, "connected_ids", lambda self: set())
    master["answers"] = [{"w3": True}]
    assert runner.wait_up("w3")["result"] is True and len(master["sent"]) == 1


def test_never_connected_fails_the_step_without_a_publish(master):
    ret = runner.wait_up("w3", timeout=60)
    assert ret["result"] is False and "not connected to the master" in ret["comment"]
    assert master["sent"] == [] and runner.__context__["retcode"] == 1


def test_connected_but_silent_fails_after_the_timeout(master):
    master["connected_from"] = 0
    ret = runner.wait_up("w3", timeout=700, answer_within=300)
    assert ret["result"] is False and "connected, no answer" in ret["comment"]
    # The last ping gets only what is left of the timeout.
    assert [timeout for *_, timeout in master["sent"]] == [300, 300, 96]
