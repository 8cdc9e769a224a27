"""
kubesalt.routes_publish: which minions synced, which are asked again (a
connected minion that failed or gave no answer), which are skipped (not
connected, or kubesalt not installed yet), and when the step fails.
"""

import pytest
import salt.client
import salt.utils.minions

import saltext.kubesalt.runners.kubesalt as runner

NOT_LOADED = "'kubesalt_net.routes_sync' is not available."


def synced(comment="1 route added"):
    return {"ret": {"result": True, "changes": {}, "comment": comment, "data": {}}, "retcode": 0}


@pytest.fixture
def configure_loader_modules():
    return {runner: {"__opts__": {"conf_file": "/etc/salt/master"}, "__context__": {}}}


@pytest.fixture
def publish(monkeypatch):
    """The master's answers, one dict per publish; records each publish."""
    state = {"answers": [], "sent": [], "connected": set()}

    class Client:
        def cmd(self, tgt, fun, **kw):
            state["sent"].append((tgt, kw["tgt_type"], fun, kw["kwarg"], kw["expect_minions"]))
            return state["answers"].pop(0)

    monkeypatch.setattr(salt.client, "get_local_client", lambda conf: Client())
    monkeypatch.setattr(salt.utils.minions.CkMinions, "__init__", lambda self, opts: None)
    monkeypatch.setattr(salt.utils.minions.CkMinions, "connected_ids", lambda self: state["connected"])
    monkeypatch.setattr("time.sleep", lambda s: None)
    return state


def test_every_minion_answers_once(publish):
    publish["answers"] = [{"w0": synced(), "w1": synced()}]
    ret = runner.routes_publish("I@kubesalt:node:* and not L@w2", record="/r.json", protocol=201)
    assert ret["result"] is True and sorted(ret["synced"]) == ["w0", "w1"]
    assert publish["sent"] == [
        (
            "I@kubesalt:node:* and not L@w2",
            "compound",
            "kubesalt_net.routes_sync",
            {"adopt": False, "protocol": 201, "record": "/r.json", "fresh_pillar": True},
            True,
        )
    ]
    assert "retcode" not in runner.__context__


def test_a_connected_minion_that_gave_no_answer_is_asked_again(publish):
    publish["connected"] = {"w0", "vm-1"}
    publish["answers"] = [{"w0": synced(), "vm-1": {"failed": True}}, {"vm-1": synced()}]
    ret = runner.routes_publish("I@kubesalt:node:*")
    assert ret["result"] is True and sorted(ret["synced"]) == ["vm-1", "w0"]
    assert [(s[0], s[1]) for s in publish["sent"]] == [("I@kubesalt:node:*", "compound"), (["vm-1"], "list")]


def test_a_failed_sync_is_asked_again_then_fails_the_step(publish):
    failed = {"ret": {"result": False, "comment": "netlink: permission denied"}, "retcode": 1}
    publish["answers"] = [{"w0": failed}, {"w0": failed}, {"w0": failed}]
    ret = runner.routes_publish("w0", tgt_type="glob", attempts=3)
    assert ret["result"] is False and len(publish["sent"]) == 3
    assert ret["failed"] == {"w0": "netlink: permission denied"}
    assert "w0: netlink: permission denied" in ret["comment"]
    assert runner.__context__["retcode"] == 1


def test_skipped_not_connected_and_not_installed_yet(publish):
    publish["connected"] = {"w0"}
    publish["answers"] = [
        {"w0": synced(), "master-2": {"failed": True}, "w3": {"ret": NOT_LOADED, "retcode": 254}},
    ]
    ret = runner.routes_publish("I@kubesalt:node:*")
    assert ret["result"] is True and len(publish["sent"]) == 1
    assert sorted(ret["skipped"]) == ["master-2", "w3"]
    assert "not connected" in ret["skipped"]["master-2"]
    assert "not installed yet" in ret["skipped"]["w3"]
    assert "skipped on 2 (master-2, w3)" in ret["comment"]


def test_a_silent_connected_minion_fails_after_the_last_attempt(publish):
    publish["connected"] = {"vm-1"}
    publish["answers"] = [{"vm-1": {"failed": True}}, {"vm-1": {"failed": True}}]
    ret = runner.routes_publish("vm-1", tgt_type="glob", attempts=2)
    assert ret["result"] is False
    assert ret["failed"] == {"vm-1": "connected but gave no answer (attempt 2 of 2)"}
