"""The master's side of a node add's pillar refresh, at 20 to 1,000 nodes
(``make bench-fanout``; skipped unless KUBESALT_BENCH_FANOUT is set): what
one minion's ext_pillar costs with N nodes, that a refresh of all N runs the
planner once, and the refresh's ext_pillar time on this machine's cores.
Every minion's own route sync runs on its own machine (``kubesalt routes
sync`` of 1,000 routes: ``make bench``); the master's part is what grows."""

import os
import subprocess
import time

import pytest
import yaml

import saltext.kubesalt.pillar.kubesalt as ext

pytestmark = pytest.mark.skipif(
    not os.environ.get("KUBESALT_BENCH_FANOUT"), reason="make bench-fanout runs it"
)

SAMPLE = 10  # minions compiled per node count, besides the first


@pytest.fixture
def configure_loader_modules(kubesalt_bin_dir):
    return {ext: {"__opts__": {"kubesalt.bin_dir": str(kubesalt_bin_dir)}}}


def definition(n):
    nodes = {"master-0": {"role": "master", "ip": "10.0.0.10"}}
    for i in range(n - 1):
        nodes[f"worker-{i}"] = {"role": "worker", "ip": f"10.0.{(i + 20) // 256}.{(i + 20) % 256}"}
    return {
        "kubernetes": {
            "cluster_name": "fanout",
            "network": {
                "node_cidr": "10.0.0.0/16",
                "cluster_cidr": "10.128.0.0/9",
                "service_cidr": "10.32.0.0/24",
            },
            "nodes": nodes,
        }
    }


def test_refresh_fanout(tmp_path, kubesalt_bin_dir):
    cores = os.cpu_count()
    lines = []
    for n in (20, 50, 100, 200, 500, 1000):
        pillar = definition(n)
        cluster = tmp_path / f"cluster{n}.yaml"
        cluster.write_text(yaml.safe_dump(pillar))
        pki = tmp_path / f"pki{n}"
        subprocess.run(
            [kubesalt_bin_dir / "kubesalt", "pki", "issue", "--definition", cluster, "--dir", pki],
            check=True,
            capture_output=True,
        )
        plan = str(tmp_path / f"plan{n}.json")
        start = time.monotonic()
        ext.ext_pillar("master-0", pillar, plan_file=plan, pki_dir=str(pki))
        first = time.monotonic() - start
        start = time.monotonic()
        for i in range(SAMPLE):
            got = ext.ext_pillar(f"worker-{i}", pillar, plan_file=plan, pki_dir=str(pki))
            assert len(got["kubesalt"]["nodes"]) == n
        each = (time.monotonic() - start) / SAMPLE
        with open(plan + ".planner.json", encoding="utf-8") as f:
            counts = yaml.safe_load(f)
        assert counts == {"runs": 1, "served": SAMPLE}, counts
        refresh = first + (n - 1) * each / cores
        lines.append(
            f"{n:5d} nodes: first minion (plans) {first:.3f}s, each other {each:.3f}s, planner runs 1 for "
            f"{SAMPLE + 1} minions; a refresh of all {n} minions: {refresh:.1f}s of ext_pillar "
            f"on {cores} cores"
        )
    print("\nbench-fanout: the master's ext_pillar work for one pillar refresh of every minion")
    for line in lines:
        print("bench-fanout: " + line)
