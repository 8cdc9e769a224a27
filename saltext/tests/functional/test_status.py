"""Returner -> real `kubesalt status record`; runner -> real `kubesalt status show`."""

import pytest

import saltext.kubesalt.returners.kubesalt as returner
import saltext.kubesalt.runners.kubesalt as runner


@pytest.fixture
def configure_loader_modules(kubesalt_bin_dir, tmp_path):
    opts = {
        "kubesalt.bin_dir": str(kubesalt_bin_dir),
        "kubesalt.status_db": str(tmp_path / "status.db"),
        "kubesalt.plan_file": str(tmp_path / "plan.json"),
    }
    return {returner: {"__opts__": opts}, runner: {"__opts__": opts}}


def state_return(minion, desired, test=False):
    block = {
        "command": "routes sync",
        "test": test,
        "node": minion,
        "pod_cidrs": ["10.200.1.0/24"],
        "result": {
            "result": True,
            "changes": {},
            "comment": "",
            "data": {"desired": desired, "present": desired},
        },
    }
    return {
        "id": minion,
        "fun": "state.apply",
        "jid": "20261124120000000001",
        "success": True,
        "return": {
            "kubesalt_net_|-routes_|-routes_|-routes_synced": {
                "name": "routes",
                "result": True,
                "changes": {},
                "comment": "",
                "kubesalt": block,
            }
        },
    }


def test_record_and_show(cluster_file):
    # Plan first: the plan's age is what "reported since the plan changed" is measured against.
    runner_opts = runner.__opts__
    import saltext.kubesalt.utils.binary as kb

    kb.run(
        runner_opts,
        kb.KUBESALT,
        ["cidr", "plan", "--definition", str(cluster_file), "--plan", runner_opts["kubesalt.plan_file"]],
    )
    returner.returner(state_return("worker-0", desired=2))
    returner.event_return(
        [
            {"tag": "salt/job/1/ret/worker-1", "data": state_return("worker-1", desired=2, test=True)},
            {"tag": "salt/auth", "data": {}},
        ]
    )
    res = runner.status(definition=str(cluster_file))
    nodes = {n["name"]: n for n in res["data"]["nodes"]}
    assert set(nodes) == {"master-0", "worker-0", "worker-1"}
    assert nodes["worker-0"]["routes"]["converged"] is True
    assert nodes["worker-0"]["reported_pod_cidrs"] == ["10.200.1.0/24"]
    # A test-mode run is recorded as a run, not as converged routes.
    assert nodes["worker-1"]["last_run"] and nodes["worker-1"]["routes"]["converged"] is False
    assert nodes["master-0"]["last_run"] is None
    assert "3 nodes: 1 with routes converged" in res["comment"]

    table = runner.status(definition=str(cluster_file), table=True)
    assert "worker-0" in table and "converged" in table and "never" in table

    # The minion-start reactor's question: worker-0 converged, worker-1's
    # test run converged nothing, master-0 never reported.
    needed = {n: runner.add_needed(n, definition=str(cluster_file))["data"]["add_needed"] for n in nodes}
    assert needed == {"worker-0": False, "worker-1": True, "master-0": True}
    assert runner.add_needed("web-1", definition=str(cluster_file))["comment"].endswith(
        "not a node of the cluster definition"
    )
