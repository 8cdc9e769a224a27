"""States: the binary's result becomes the state return, failures never raise."""

import pytest

import saltext.kubesalt.states.kubesalt_addons as addons_state
import saltext.kubesalt.states.kubesalt_net as net_state
import saltext.kubesalt.states.kubesalt_pki as pki_state
import saltext.kubesalt.states.kubesalt_virt as virt_state
import saltext.kubesalt.utils.binary as kb

captured = {}


def routes_sync(**kwargs):
    captured.update(kwargs)
    return captured["_result"]


@pytest.fixture
def configure_loader_modules():
    captured.clear()
    opts = {"test": False}
    pillar = {"kubesalt": {"node": "worker-0", "pod_cidrs": ["10.200.3.0/24"]}}
    return {
        net_state: {
            "__opts__": opts,
            "__pillar__": pillar,
            "__salt__": {"kubesalt_net.routes_sync": routes_sync, "kubesalt_net.set_cidrs": routes_sync},
        },
        addons_state: {
            "__opts__": opts,
            "__pillar__": pillar,
            "__salt__": {"kubesalt_addons.apply": routes_sync},
        },
    }


def test_changes_pass_through_with_block():
    added = [{"dst": "10.200.4.0/24", "via": "192.168.170.21", "node": "worker-1"}]
    captured["_result"] = {
        "result": True,
        "changes": {"added": added},
        "comment": "1 route added",
        "data": {"desired": 1, "present": 0, "added": added},
    }
    ret = net_state.routes_synced("routes", netns="ns1", record="/r.json")
    assert ret["name"] == "routes" and ret["result"] is True
    assert ret["changes"] == {"added": added} and ret["comment"] == "1 route added"
    assert ret["kubesalt"]["command"] == "routes sync"
    assert ret["kubesalt"]["node"] == "worker-0" and ret["kubesalt"]["pod_cidrs"] == ["10.200.3.0/24"]
    assert ret["kubesalt"]["result"]["data"]["desired"] == 1
    assert captured["netns"] == "ns1" and captured["test"] is False and captured["record"] == "/r.json"


def test_test_mode():
    net_state.__opts__["test"] = True
    try:
        captured["_result"] = {"result": None, "changes": {"added": [1]}, "comment": "would add", "data": {}}
        ret = net_state.routes_synced("routes")
    finally:
        net_state.__opts__["test"] = False
    assert ret["result"] is None and ret["changes"] == {"added": [1]}
    assert captured["test"] is True and ret["kubesalt"]["test"] is True


def test_failure_is_result_false_not_exception():
    def boom(**kwargs):
        raise kb.KubesaltError(
            "kubesalt routes sync: failed (exit 1): 1 route failed; stderr: EPERM",
            result={"result": False, "changes": {}, "comment": "1 route failed", "data": {"failed": [{}]}},
            retcode=1,
        )

    net_state.__salt__["kubesalt_net.routes_sync"] = boom
    ret = net_state.routes_synced("routes")
    assert ret["result"] is False and "stderr: EPERM" in ret["comment"]
    assert ret["kubesalt"]["result"]["data"]["failed"] == [{}]

    def missing(**kwargs):
        raise kb.KubesaltError("kubesalt routes sync: the kubesalt binary is not at /x/kubesalt")

    net_state.__salt__["kubesalt_net.routes_sync"] = missing
    ret = net_state.routes_synced("routes")
    assert ret == {
        "name": "routes",
        "result": False,
        "changes": {},
        "comment": "kubesalt routes sync: the kubesalt binary is not at /x/kubesalt",
    }


def test_node_cidrs_set():
    set_ = {"worker-0": {"old": [], "new": ["10.200.3.0/24"]}}
    captured["_result"] = {
        "result": True,
        "changes": set_,
        "comment": "Node.spec.podCIDRs: 1 set; 0 unchanged; 1 not registered yet (worker-3; ...)",
        "data": {"set": [{"node": "worker-0"}], "waiting": ["worker-3"]},
    }
    ret = net_state.node_cidrs_set("cidrs", kubeconfig="/p/admin.kubeconfig", nodes=[{"name": "worker-0"}])
    assert ret["result"] is True and ret["changes"] == set_ and "worker-3" in ret["comment"]
    assert ret["kubesalt"]["command"] == "nodes set-cidrs"
    assert ret["kubesalt"]["result"]["data"]["waiting"] == ["worker-3"]
    assert captured["kubeconfig"] == "/p/admin.kubeconfig" and captured["nodes"] == [{"name": "worker-0"}]
    assert captured["test"] is False and captured["timeout"] is None


def test_node_cidrs_set_mismatch_fails_with_what_was_set():
    """A mismatch is exit 1: the state fails with the binary's reason and
    still shows the nodes that were set in the same run."""
    set_ = {"worker-0": {"old": [], "new": ["10.200.3.0/24"]}}
    result = {
        "result": False,
        "changes": set_,
        "comment": "worker-1 has 10.99.0.0/24, the plan says ...",
        "data": {},
    }

    def mismatch(**kwargs):
        raise kb.KubesaltError(
            "kubesalt nodes set-cidrs: failed (exit 1): " + result["comment"], result=result, retcode=1
        )

    net_state.__salt__["kubesalt_net.set_cidrs"] = mismatch
    ret = net_state.node_cidrs_set("cidrs", kubeconfig="/p/admin.kubeconfig")
    assert ret["result"] is False and "worker-1 has 10.99.0.0/24" in ret["comment"]
    assert ret["changes"] == set_ and ret["kubesalt"]["command"] == "nodes set-cidrs"


def test_other_states_virtual_without_binary(tmp_path):
    for mod in (pki_state, virt_state):
        mod.__opts__ = {"kubesalt.bin_dir": str(tmp_path)}
        ok, reason = mod.__virtual__()
        assert ok is False and "is not at" in reason


def test_addons_applied_test_mode_reports_what_it_would_apply():
    would = {"dns": {"objects": ["apps.v1.Deployment.kube-system.coredns"], "diff": "..."}}
    captured["_result"] = {
        "result": None,
        "changes": would,
        "comment": "cluster DNS: would apply apps.v1.Deployment.kube-system.coredns",
        "data": {"changed": ["apps.v1.Deployment.kube-system.coredns"]},
    }
    addons_state.__opts__["test"] = True
    try:
        ret = addons_state.applied("dns", kubeconfig="/p/admin.kubeconfig", kubectl="/opt/kubectl")
    finally:
        addons_state.__opts__["test"] = False
    assert ret["result"] is None and ret["changes"] == would and "would apply" in ret["comment"]
    assert ret["kubesalt"]["command"] == "addons apply" and ret["kubesalt"]["test"] is True
    assert captured["test"] is True and captured["kubectl"] == "/opt/kubectl"
