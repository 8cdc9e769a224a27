"""
The extension with real daemons and real binaries, in the order a cluster is
brought up: certificates on the CA host, pillar (pod CIDRs, node list, each
minion's own certificates), routes, the status the returner recorded, VMs.
The tests of this module build on each other and run in file order.
"""

import json
import os
import pathlib
import subprocess
import time

import pytest

from .conftest import routes_in, wait_for

pytestmark = [pytest.mark.integration]


def ok(ret):
    assert ret.returncode == 0, f"exit {ret.returncode}: {ret.stdout} {ret.stderr}"
    return ret.data


def only_state(data):
    """The single state return of a state.single/state.apply with one state."""
    assert isinstance(data, dict) and len(data) == 1, data
    return next(iter(data.values()))


def pillar_of(salt_cli, minion):
    ok(salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt=minion))
    # Salt 3008 masks pillar values in output unless asked.
    return ok(salt_cli.run("pillar.get", "kubesalt", "unmask=True", minion_tgt=minion))


def test_certificates_issued_on_the_ca_host(salt_cli, salt_minions, cluster):
    ca_host = cluster["minions"][0]
    pki = pathlib.Path(cluster["pki_dir"])
    args = ["state.single", "kubesalt_pki.certificates_issued", "name=cluster-pki", f"pki_dir={pki}"]

    st = only_state(ok(salt_cli.run(*args, "test=True", minion_tgt=ca_host)))
    assert st["result"] is None, st
    assert "ca" in json.dumps(st["changes"]["issued"])
    assert not (pki / "ca.pem").exists(), "test=True issued a certificate"

    st = only_state(ok(salt_cli.run(*args, minion_tgt=ca_host)))
    assert st["result"] is True and st["changes"]["issued"], st
    assert (pki / "ca.pem").exists()

    st = only_state(ok(salt_cli.run(*args, minion_tgt=ca_host)))
    assert st["result"] is True and st["changes"] == {}, st


def test_pillar_pod_cidrs_differ_and_survive_a_master_restart(salt_master, salt_cli, salt_minions, cluster):
    a, b = cluster["minions"]
    pa, pb = pillar_of(salt_cli, a), pillar_of(salt_cli, b)
    assert pa["node"] == a and pb["node"] == b
    assert pa["ips"] == [cluster["ips"][a]]
    assert len(pa["pod_cidrs"]) == 1 and pa["pod_cidrs"] != pb["pod_cidrs"]
    assert sorted(n["name"] for n in pa["nodes"]) == sorted(["master-0", a, b])
    assert pa["nodes"] == pb["nodes"]
    assert os.path.exists(cluster["plan_file"])

    salt_master.terminate()
    salt_master.start(start_timeout=120)
    # The minions reconnect on their own; a publish sent before they
    # resubscribe is lost, so ping with a short timeout until both answer.
    ping = salt_master.salt_cli(timeout=10)
    wait_for(
        lambda: all(ping.run("test.ping", minion_tgt=m).data is True for m in (a, b)),
        timeout=180,
        interval=3,
        what="the minions to reconnect",
    )
    assert pillar_of(salt_cli, a)["pod_cidrs"] == pa["pod_cidrs"]
    assert pillar_of(salt_cli, b)["pod_cidrs"] == pb["pod_cidrs"]


def test_pillar_holds_own_key_only(salt_cli, salt_minions, cluster):
    a, b = cluster["minions"]
    pa, pb = pillar_of(salt_cli, a), pillar_of(salt_cli, b)
    assert pa["pki"]["node"] == a and pb["pki"]["node"] == b
    key_a = pa["pki"]["files"]["kubelet-key.pem"]
    key_b = pb["pki"]["files"]["kubelet-key.pem"]
    assert key_a["mode"] == "0600" and "PRIVATE KEY" in key_a["contents"]
    assert key_a["contents"] != key_b["contents"]
    assert key_a["contents"] not in json.dumps(pb), "minion b's pillar holds a's key"
    assert key_b["contents"] not in json.dumps(pa), "minion a's pillar holds b's key"
    ca_key = (pathlib.Path(cluster["pki_dir"]) / "ca-key.pem").read_text().strip()
    for p in (pa, pb):
        assert ca_key not in json.dumps(p), "the CA key is in a pillar"


def test_routes_synced_into_the_namespaces(salt_cli, salt_minions, cluster):
    a, b = cluster["minions"]
    pillars = {m: pillar_of(salt_cli, m) for m in (a, b)}
    plan = {n["name"]: n for n in pillars[a]["nodes"]}

    # test=True: every state predicts, nothing reaches the kernel.
    for m in (a, b):
        st = only_state(ok(salt_cli.run("state.apply", "kubesalt_routes", "test=True", minion_tgt=m)))
        assert st["result"] is None, st
        assert len(st["changes"]["added"]) == 2
        assert routes_in(cluster["netns"][m]) == {}, "test=True programmed routes"

    for m in (a, b):
        st = only_state(ok(salt_cli.run("state.apply", "kubesalt_routes", minion_tgt=m)))
        assert st["result"] is True and len(st["changes"]["added"]) == 2, st
        want = {plan[o]["pod_cidrs"][0]: plan[o]["ips"][0] for o in plan if o != m}
        assert routes_in(cluster["netns"][m]) == want
        assert pillars[m]["pod_cidrs"][0] not in routes_in(cluster["netns"][m]), "own CIDR routed away"
        # The protocol's name went where the minion's option says, not to /etc.
        registered = cluster["root"] / "rt_protos.d" / m / "kubesalt.conf"
        assert "201\tkubesalt" in registered.read_text()

    for m in (a, b):
        st = only_state(ok(salt_cli.run("state.apply", "kubesalt_routes", minion_tgt=m)))
        assert st["result"] is True and st["changes"] == {}, f"second run changed: {st}"


def test_execution_module_through_the_master(salt_cli, salt_minions, cluster):
    a = cluster["minions"][0]
    res = ok(salt_cli.run("kubesalt_net.routes_list", f"netns={cluster['netns'][a]}", minion_tgt=a))
    assert len(res["data"]["routes"]) == 2
    # A clear error, not a traceback: the namespace does not exist.
    ret = salt_cli.run("kubesalt_net.routes_list", "netns=ks-no-such-ns", minion_tgt=a)
    text = json.dumps(ret.data) + ret.stdout
    assert "kubesalt routes list" in text and "Traceback" not in text


def test_returner_recorded_and_status_shows_it(salt_run_cli, salt_minions, cluster):
    a, b = cluster["minions"]

    def converged():
        res = salt_run_cli.run("kubesalt.status", f"definition={cluster['definition_file']}")
        if res.returncode != 0 or not isinstance(res.data, dict):
            return None
        nodes = {n["name"]: n for n in res.data["data"]["nodes"]}
        if all(nodes[m]["routes"]["converged"] for m in (a, b)):
            return nodes
        return None

    nodes = wait_for(converged, timeout=60, what="the returner to record both minions' route syncs")
    assert nodes["master-0"]["last_run"] is None and not nodes["master-0"]["routes"]["converged"]
    for m in (a, b):
        assert nodes[m]["routes"]["last"]["desired"] == 2
        assert (
            nodes[m]["ips"] == [cluster["ips"][m]] and nodes[m]["pod_cidrs"] == nodes[m]["reported_pod_cidrs"]
        )
    # pki check ran after issuance on the CA host: days left are recorded.
    assert any(c["days_left"] > 300 for c in nodes[a]["certificates"])

    table = subprocess.run(
        [
            os.path.join(cluster["bin_dir"], "kubesalt"), "status", "show", "--db", cluster["status_db"],
            "--definition", cluster["definition_file"], "--plan", cluster["plan_file"], "--output", "table",
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    lines = {ln.split()[0]: ln for ln in table.splitlines() if ln.strip()}
    assert "converged" in lines[a] and "converged" in lines[b] and "never" in lines["master-0"]


def test_virt_states_on_the_test_driver(salt_master, salt_cli, salt_run_cli, salt_minions, cluster):
    hv = cluster["minions"][1]  # plays the hypervisor

    # test:///default is fresh in every process: the network is missing.
    net = ["state.single", "kubesalt_virt.network_running", "name=kstest", "connect=test:///default"]
    st = only_state(ok(salt_cli.run(*net, "test=True", minion_tgt=hv)))
    assert st["result"] is None and st["changes"], st
    st = only_state(ok(salt_cli.run(*net, minion_tgt=hv)))
    assert st["result"] is True and st["changes"], st

    # The pillar's URI is a test driver file holding the network, pool and base image.
    node = ["state.single", "kubesalt_virt.node_running", "name=master-0"]
    st = only_state(ok(salt_cli.run(*node, "test=True", minion_tgt=hv)))
    assert st["result"] is None and "domain" in st["changes"]["master-0"]["created"], st
    start = time.time()
    st = only_state(ok(salt_cli.run(*node, minion_tgt=hv)))
    assert st["result"] is True and "domain" in st["changes"]["master-0"]["created"], st
    events = salt_master.event_listener.wait_for_events(
        [(salt_master.id, "kubesalt/virt/master-0/created")], after_time=start, timeout=60
    )
    assert events.found_all_events, "no kubesalt/virt/master-0/created event"

    gone = ["state.single", "kubesalt_virt.node_absent", "name=worker-9"]
    st = only_state(ok(salt_cli.run(*gone, "test=True", minion_tgt=hv)))
    assert st["result"] is True and st["changes"] == {}, st

    def vm_running():
        res = salt_run_cli.run("kubesalt.status", f"definition={cluster['definition_file']}")
        nodes = {n["name"]: n for n in res.data["data"]["nodes"]} if isinstance(res.data, dict) else {}
        return nodes.get("master-0", {}).get("vm_state") == "running"

    wait_for(vm_running, timeout=60, what="the returner to record master-0's VM state")
