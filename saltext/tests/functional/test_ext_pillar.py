"""The ext_pillar with the real kubesalt binary: plans, caches, hands out bundles."""

import json
import logging
import subprocess

import pytest
import yaml

import saltext.kubesalt.pillar.kubesalt as ext

from .conftest import CLUSTER


@pytest.fixture
def configure_loader_modules(kubesalt_bin_dir):
    return {ext: {"__opts__": {"kubesalt.bin_dir": str(kubesalt_bin_dir)}}}


@pytest.fixture
def pillar():
    return yaml.safe_load(CLUSTER)


def test_each_minion_its_own_cidr_and_every_node(tmp_path, pillar):
    plan = str(tmp_path / "plan.json")
    w0 = ext.ext_pillar("worker-0", pillar, plan_file=plan)["kubesalt"]
    w1 = ext.ext_pillar("worker-1", pillar, plan_file=plan)["kubesalt"]
    assert w0["node"] == "worker-0" and w1["node"] == "worker-1"
    assert w0["ips"] == ["192.168.170.20"]
    assert len(w0["pod_cidrs"]) == 1 and w0["pod_cidrs"] != w1["pod_cidrs"]
    assert [n["name"] for n in w0["nodes"]] == ["master-0", "worker-0", "worker-1"]
    assert w0["nodes"] == w1["nodes"]
    # The cluster's facts, derived by the binary, the same for every minion.
    assert w0["cluster"] == w1["cluster"]
    assert w0["cluster"] == {
        "api_host": "192.168.170.10",
        "api_url": "https://192.168.170.10:6443",
        "masters": [
            {
                "name": "master-0",
                "ips": ["192.168.170.10"],
                "etcd_client_url": "https://192.168.170.10:2379",
                "etcd_peer_url": "https://192.168.170.10:2380",
            }
        ],
        "etcd_endpoints": ["https://192.168.170.10:2379"],
        "etcd_initial_cluster": "master-0=https://192.168.170.10:2380",
        # The node-local load balancer's endpoint and backends; no VIP.
        "local_api_url": "https://127.0.0.1:6444",
        "local_api_port": 6444,
        "api_backends": [{"name": "master-0", "host": "192.168.170.10", "port": 6443}],
        "api_vip": "",
    }
    # Stable: planning again (a refresh) gives the same blocks.
    assert ext.ext_pillar("worker-0", pillar, plan_file=plan)["kubesalt"]["pod_cidrs"] == w0["pod_cidrs"]
    # Not a cluster minion, or no definition: nothing.
    assert ext.ext_pillar("hypervisor", pillar, plan_file=plan) == {}
    assert ext.ext_pillar("worker-0", {}, plan_file=plan) == {}


def test_minion_id_matches_exactly_or_with_its_domain(tmp_path, pillar, cluster_file, kubesalt_bin_dir):
    """The pillar holds the node's private keys: only the node's own id, or
    that id with the configured domain, gets it. master-0.evil (whose first
    label is a master's name) gets no PKI and no pod CIDR: no kubesalt key."""
    pki = tmp_path / "pki"
    subprocess.run(
        [kubesalt_bin_dir / "kubesalt", "pki", "issue", "--definition", cluster_file, "--dir", pki],
        check=True,
        capture_output=True,
    )
    kw = {"plan_file": str(tmp_path / "plan.json"), "pki_dir": str(pki), "domain": "lab.example"}
    exact = ext.ext_pillar("master-0", pillar, **kw)["kubesalt"]
    fqdn = ext.ext_pillar("master-0.lab.example", pillar, **kw)["kubesalt"]
    assert exact["node"] == fqdn["node"] == "master-0"
    assert "service-account-key.pem" in exact["pki"]["files"]
    assert fqdn["pki"] == exact["pki"] and fqdn["pod_cidrs"] == exact["pod_cidrs"]
    for stranger in (
        "master-0.evil",
        "master-0.lab.example.evil",
        "master-0.evil.lab.example",
        "master-0lab.example",
        "evil.master-0",
        "master-0.",
    ):
        assert ext.ext_pillar(stranger, pillar, **kw) == {}, stranger
    # Without a configured domain only the exact id matches.
    del kw["domain"]
    assert ext.ext_pillar("master-0.lab.example", pillar, **kw) == {}
    assert ext.ext_pillar("master-0", pillar, **kw)["kubesalt"]["node"] == "master-0"


def test_definition_file(tmp_path, cluster_file):
    got = ext.ext_pillar("master-0", {}, definition=str(cluster_file), plan_file=str(tmp_path / "p.json"))
    assert got["kubesalt"]["role"] == "master"


def test_bad_definition_serves_last_good_plan(tmp_path, pillar, caplog):
    plan = str(tmp_path / "plan.json")
    good = ext.ext_pillar("worker-0", pillar, plan_file=plan)["kubesalt"]
    bad = json.loads(json.dumps(pillar))
    bad["kubernetes"]["nodes"]["worker-1"]["ip"] = "192.168.171.21"  # outside node_cidr
    with caplog.at_level(logging.ERROR):
        served = ext.ext_pillar("worker-0", bad, plan_file=plan)["kubesalt"]
    assert served == good
    assert "serving the last good plan" in caplog.text
    assert "kubernetes:nodes:worker-1:ip" in caplog.text  # the binary's message names the field


def test_bad_definition_without_cache(tmp_path, pillar, caplog):
    pillar["kubernetes"]["network"]["cluster_cidr"] = "10.200.0.0/33"
    with caplog.at_level(logging.ERROR):
        assert ext.ext_pillar("worker-0", pillar, plan_file=str(tmp_path / "plan.json")) == {}
    assert "no earlier plan is cached" in caplog.text and "kubernetes:network:cluster_cidr" in caplog.text


def test_own_bundle_only(tmp_path, pillar, cluster_file, kubesalt_bin_dir):
    pki = tmp_path / "pki"
    subprocess.run(
        [kubesalt_bin_dir / "kubesalt", "pki", "issue", "--definition", cluster_file, "--dir", pki],
        check=True,
        capture_output=True,
    )
    plan = str(tmp_path / "plan.json")
    w0 = ext.ext_pillar("worker-0", pillar, plan_file=plan, pki_dir=str(pki))["kubesalt"]["pki"]
    w1 = ext.ext_pillar("worker-1", pillar, plan_file=plan, pki_dir=str(pki))["kubesalt"]["pki"]
    assert w0["node"] == "worker-0" and "kubelet-key.pem" in w0["files"]
    assert w0["files"]["kubelet-key.pem"]["mode"] == "0600"
    assert w0["files"]["kubelet-key.pem"]["contents"] != w1["files"]["kubelet-key.pem"]["contents"]
    assert w0["files"]["kubelet-key.pem"]["contents"] not in json.dumps(w1)
    for key in pki.rglob("ca*key*"):
        assert key.read_text().strip() not in json.dumps(w0) + json.dumps(w1), f"{key} in a pillar"


def _counts(plan):
    with open(plan + ".planner.json", encoding="utf-8") as f:
        return json.load(f)


def test_planner_runs_once_per_change(tmp_path, pillar, cluster_file):
    """A refresh of every minion plans once; a change of the definition (a
    node added) or of the plan file plans once more; the cache never serves
    a plan made from something else."""
    plan = str(tmp_path / "plan.json")
    minions = ["master-0", "worker-0", "worker-1"] * 7
    for m in minions:
        ext.ext_pillar(m, pillar, plan_file=plan)
    assert _counts(plan) == {"runs": 1, "served": len(minions) - 1}
    pillar["kubernetes"]["nodes"]["worker-2"] = {"role": "worker", "ip": "192.168.170.22"}
    got = {m: ext.ext_pillar(m, pillar, plan_file=plan)["kubesalt"] for m in minions + ["worker-2"]}
    assert _counts(plan) == {"runs": 2, "served": 2 * len(minions) - 1}
    assert [n["name"] for n in got["worker-0"]["nodes"]] == ["master-0", "worker-0", "worker-1", "worker-2"]
    assert got["worker-2"]["pod_cidrs"] and got["worker-2"]["pod_cidrs"] != got["worker-1"]["pod_cidrs"]
    # The plan file changed behind the cache (a node released elsewhere): planned again.
    with open(plan, encoding="utf-8") as f:
        doc = json.load(f)
    del doc["nodes"]["worker-2"]
    with open(plan, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    again = ext.ext_pillar("worker-2", pillar, plan_file=plan)["kubesalt"]
    assert _counts(plan)["runs"] == 3
    assert again["pod_cidrs"]
    # A definition file: its content is what counts, not its name.
    fplan = str(tmp_path / "fplan.json")
    ext.ext_pillar("master-0", {}, definition=str(cluster_file), plan_file=fplan)
    ext.ext_pillar("worker-0", {}, definition=str(cluster_file), plan_file=fplan)
    assert _counts(fplan) == {"runs": 1, "served": 1}
    text = cluster_file.read_text().replace("192.168.170.21", "192.168.170.31")
    cluster_file.write_text(text)
    moved = ext.ext_pillar("worker-1", {}, definition=str(cluster_file), plan_file=fplan)["kubesalt"]
    assert moved["ips"] == ["192.168.170.31"]
    assert _counts(fplan)["runs"] == 2
