"""
kubesalt.routes_publish: which minions synced, which are asked again (one
that answered with a failure), which are waited for and never asked twice
(a slow one), which are skipped (not connected, or kubesalt not installed
yet), and when the step fails.
"""

import pytest
import salt.client
import salt.utils.minions

import saltext.kubesalt.runners.kubesalt as runner

NOT_LOADED = "'kubesalt_net.routes_sync' is not available."
# What a VM answered before its highstate installed the binary.
VIRTUAL_FALSE = (
    "'kubesalt_net' __virtual__ returned False: kubesalt_net: the kubesalt binary is not at "
    "/usr/local/bin/kubesalt; install it there or set kubesalt.bin_dir"
)


def synced(comment="1 route added"):
    return {"ret": {"result": True, "changes": {}, "comment": comment, "data": {}}, "retcode": 0}


@pytest.fixture
def configure_loader_modules():
    return {runner: {"__opts__": {"conf_file": "/etc/salt/master"}, "__context__": {}}}


@pytest.fixture
def publish(monkeypatch):
    """The master's answers, one dict per publish; records each publish."""
    state = {"answers": [], "sent": [], "targets": set(), "connected": set(), "nodes": None, "compiled": []}

    class Client:
        def cmd(self, tgt, fun, **kw):
            state["sent"].append((tgt, kw["tgt_type"], fun, kw["kwarg"], kw["timeout"]))
            return state["answers"].pop(0)

    monkeypatch.setattr(salt.client, "get_local_client", lambda conf: Client())
    monkeypatch.setattr(salt.utils.minions.CkMinions, "__init__", lambda self, opts: None)
    targets = lambda self, tgt, tgt_type: {"minions": state["targets"]}  # noqa: E731
    monkeypatch.setattr(salt.utils.minions.CkMinions, "check_minions", targets)
    monkeypatch.setattr(salt.utils.minions.CkMinions, "connected_ids", lambda self: state["connected"])
    monkeypatch.setattr("time.sleep", lambda s: None)

    def node_list(minion):
        state["compiled"].append(minion)
        return state["nodes"], state.get("revision")

    monkeypatch.setattr(runner, "_node_list", node_list)
    return state


def test_every_connected_minion_answers_once(publish):
    publish["targets"] = publish["connected"] = {"w0", "w1"}
    publish["answers"] = [{"w0": synced(), "w1": synced()}]
    ret = runner.routes_publish("I@kubesalt:node:* and not L@w2", record="/r.json", protocol=201)
    assert ret["result"] is True and sorted(ret["synced"]) == ["w0", "w1"]
    assert publish["sent"] == [
        (
            ["w0", "w1"],
            "list",
            "kubesalt_net.routes_sync",
            {"adopt": False, "protocol": 201, "record": "/r.json", "fresh_pillar": True},
            300,
        )
    ]
    assert "retcode" not in runner.__context__


def test_a_failed_sync_is_asked_again_then_fails_the_step(publish):
    publish["targets"] = publish["connected"] = {"w0", "w1"}
    failed = {"ret": {"result": False, "comment": "netlink: permission denied"}, "retcode": 1}
    publish["answers"] = [{"w0": failed, "w1": synced()}, {"w0": failed}, {"w0": failed}]
    ret = runner.routes_publish("I@kubesalt:node:*", attempts=3)
    assert ret["result"] is False and [s[0] for s in publish["sent"]] == [["w0", "w1"], ["w0"], ["w0"]]
    assert ret["failed"] == {"w0": "netlink: permission denied"} and list(ret["synced"]) == ["w1"]
    assert "w0: netlink: permission denied" in ret["comment"]
    assert runner.__context__["retcode"] == 1


def test_a_failure_then_success(publish):
    publish["targets"] = publish["connected"] = {"w0"}
    failed = {"ret": {"result": False, "comment": "locked"}, "retcode": 1}
    publish["answers"] = [{"w0": failed}, {"w0": synced()}]
    ret = runner.routes_publish("w0", tgt_type="glob")
    assert ret["result"] is True and ret["failed"] == {} and list(ret["synced"]) == ["w0"]


def test_a_silent_minion_is_waited_for_not_asked_again(publish):
    # Asking a slow machine again only piles another job on it.
    publish["targets"] = publish["connected"] = {"vm-1"}
    publish["answers"] = [{"vm-1": {"failed": True}}]
    ret = runner.routes_publish("vm-1", tgt_type="glob", timeout=120)
    assert len(publish["sent"]) == 1 and publish["sent"][0][4] == 120
    assert ret["result"] is False and ret["failed"] == {"vm-1": "gave no answer within 120 s"}


def test_skipped_not_connected_and_not_installed_yet(publish):
    publish["targets"] = {"w0", "w3", "w4", "master-2"}
    publish["connected"] = {"w0", "w3", "w4"}
    not_loaded, virtual_false = {"ret": NOT_LOADED, "retcode": 254}, {"ret": VIRTUAL_FALSE, "retcode": 1}
    publish["answers"] = [{"w0": synced(), "w3": not_loaded, "w4": virtual_false}]
    ret = runner.routes_publish("I@kubesalt:node:*")
    # Asked once: a machine without kubesalt is not asked again.
    assert ret["result"] is True and [s[0] for s in publish["sent"]] == [["w0", "w3", "w4"]]
    assert sorted(ret["skipped"]) == ["master-2", "w3", "w4"]
    assert "not connected" in ret["skipped"]["master-2"]
    assert "not installed yet" in ret["skipped"]["w3"] and "not installed yet" in ret["skipped"]["w4"]
    assert "skipped on 3 (master-2, w3, w4)" in ret["comment"]


def test_no_connection_seen_asks_every_target(publish):
    # Salt tells a connection by the address in the minion's grains: behind
    # NAT it sees none, and nothing may be skipped for that.
    publish["targets"] = {"w0", "w1"}
    publish["answers"] = [{"w0": synced(), "w1": synced()}]
    ret = runner.routes_publish("I@kubesalt:node:*")
    assert ret["result"] is True and publish["sent"][0][0] == ["w0", "w1"] and not ret["skipped"]


def test_the_node_list_compiled_once_goes_to_every_minion(publish):
    publish["targets"] = publish["connected"] = {"w0", "w1", "w2"}
    publish["revision"] = 7
    publish["nodes"] = [{"name": "w0", "ips": ["192.168.170.10"], "pod_cidrs": ["10.200.0.0/24"]}]
    publish["answers"] = [{"w0": synced(), "w1": synced(), "w2": synced()}]
    ret = runner.routes_publish("I@kubesalt:node:*", record="/r.json")
    assert ret["result"] is True and publish["compiled"] == ["w0"]
    assert publish["sent"][0][3] == {
        "adopt": False,
        "record": "/r.json",
        "nodes": publish["nodes"],
        "revision": 7,
    }


def test_nothing_compiled_when_no_minion_is_asked(publish):
    publish["targets"] = {"w0"}
    publish["connected"] = {"m0"}
    ret = runner.routes_publish("w0", tgt_type="glob")
    assert ret["result"] is True and publish["compiled"] == [] and publish["sent"] == []
