"""States: the binary's result becomes the state return, failures never raise."""

import pytest

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
            "__salt__": {"kubesalt_net.routes_sync": routes_sync},
        }
    }


def test_changes_pass_through_with_block():
    added = [{"dst": "10.200.4.0/24", "via": "192.168.170.21", "node": "worker-1"}]
    captured["_result"] = {
        "result": True,
        "changes": {"added": added},
        "comment": "1 route added",
        "data": {"desired": 1, "present": 0, "added": added},
    }
    ret = net_state.routes_synced("routes", netns="ns1")
    assert ret["name"] == "routes" and ret["result"] is True
    assert ret["changes"] == {"added": added} and ret["comment"] == "1 route added"
    assert ret["kubesalt"]["command"] == "routes sync"
    assert ret["kubesalt"]["node"] == "worker-0" and ret["kubesalt"]["pod_cidrs"] == ["10.200.3.0/24"]
    assert ret["kubesalt"]["result"]["data"]["desired"] == 1
    assert captured["netns"] == "ns1" and captured["test"] is False


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


def test_other_states_virtual_without_binary(tmp_path):
    for mod in (pki_state, virt_state):
        mod.__opts__ = {"kubesalt.bin_dir": str(tmp_path)}
        ok, reason = mod.__virtual__()
        assert ok is False and "is not at" in reason
