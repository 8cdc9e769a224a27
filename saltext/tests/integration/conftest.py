"""
A real salt-master and two salt-minions on 127.0.0.1 (pytest-salt-factories),
the extension installed, the real kubesalt binaries, and a network namespace
per minion for its routes.

The two minions are cluster nodes (their ids are node names); a third node,
master-0, has no minion. Each minion's namespace holds eth0 in the node
network (a veth to the other minion's namespace), so every node's host IP is
on-link and the kernel accepts routes via it.
"""

import json
import shutil
import subprocess
import tempfile
import textwrap
import time
import uuid

import pytest

from ..conftest import real_bin_dir

DRIVER_XML = textwrap.dedent(
    """\
    <node>
      <network>
        <name>kstest</name>
        <uuid>aaf224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
        <bridge name="br-kstest"/>
        <forward mode="nat"/>
        <ip address="192.168.170.1" netmask="255.255.255.0"/>
      </network>
      <pool type="dir">
        <name>default-pool</name>
        <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
        <target><path>/default-pool</path></target>
        <volume type="file">
          <name>base.qcow2</name>
          <capacity unit="GiB">2</capacity>
          <target><format type="qcow2"/></target>
        </volume>
      </pool>
    </node>
    """
)


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True).stdout


def routes_in(ns):
    """The routes kubesalt owns (protocol 201) in ns, as {dst: via}."""
    out = ip("-j", "-n", ns, "route", "show", "proto", "201")
    return {r["dst"]: r.get("gateway") for r in json.loads(out or "[]")}


@pytest.fixture(scope="session")
def salt_factories_config():
    """Every daemon's root_dir and the CLI scripts under one temp dir, removed afterwards."""
    root = tempfile.mkdtemp(prefix="kubesalt-salt-")
    try:
        yield {"root_dir": root}
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def cluster(tmp_path_factory, require_root):
    """Names, namespaces and files of the test cluster."""
    bin_dir = real_bin_dir()
    for b in ("kubesalt", "kubesalt-virt"):
        if not (bin_dir / b).is_file():
            pytest.skip(f"{b} is not built in {bin_dir}; run `make build` (make test does)")
    tag = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("kubesalt-cluster")
    c = {
        "tag": tag,
        "root": root,
        "bin_dir": str(bin_dir),
        "minions": [f"ksw0-{tag}", f"ksw1-{tag}"],
        "ips": {f"ksw0-{tag}": "192.168.170.20", f"ksw1-{tag}": "192.168.170.21"},
        "plan_file": str(root / "master" / "plan.json"),
        "pki_dir": str(root / "master" / "pki"),
        "status_db": str(root / "master" / "status.db"),
        "driver": str(root / "driver.xml"),
    }
    (root / "driver.xml").write_text(DRIVER_XML)
    nodes = {
        "master-0": {"role": "master", "ip": "192.168.170.10"},
        **{m: {"role": "worker", "ip": c["ips"][m]} for m in c["minions"]},
    }
    definition = {
        "cluster_name": "kstest",
        "network": {
            "node_cidr": "192.168.170.0/24",
            "cluster_cidr": "10.200.0.0/16",
            "service_cidr": "10.32.0.0/24",
        },
        "nodes": nodes,
        "libvirt": {
            "uri": f"test://{c['driver']}",
            "network": {
                "name": "kstest",
                "bridge": "br-kstest",
                "forward": "nat",
                "gateway": "192.168.170.1",
            },
            "pool": "default-pool",
            "base_image": "base.qcow2",
            "salt_master": "192.168.170.1",
            "ssh_authorized_keys": [
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMk5Qw0ZVtxC5Rk4J9F3jQGzJ2QfZ5bQ0Yc2Zb7k5uVh a@b"
            ],
            "domain_type": "qemu",
            "roles": {
                "master": {"vcpu": 2, "memory_mib": 2048, "disk_gib": 5},
                "worker": {"vcpu": 2, "memory_mib": 2048, "disk_gib": 5},
            },
        },
    }
    pillar_dir = root / "pillar"
    state_dir = root / "states"
    pillar_dir.mkdir()
    state_dir.mkdir()
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - kubernetes\n")
    # JSON is YAML: the pillar file is also a definition file for the binary.
    (pillar_dir / "kubernetes.sls").write_text(json.dumps({"kubernetes": definition}, indent=2))
    (state_dir / "kubesalt_routes.sls").write_text(
        "pod-routes:\n  kubesalt_net.routes_synced:\n    - netns: ks-{{ grains['id'] }}\n"
    )
    c["pillar_dir"], c["state_dir"] = str(pillar_dir), str(state_dir)
    c["definition_file"] = str(pillar_dir / "kubernetes.sls")

    # The minions' namespaces, joined by a veth pair.
    a, b = (f"ks-{m}" for m in c["minions"])
    c["netns"] = dict(zip(c["minions"], (a, b), strict=True))
    try:
        ip("netns", "add", a)
        ip("netns", "add", b)
        ip("link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", b)
        for ns, m in ((a, c["minions"][0]), (b, c["minions"][1])):
            ip("-n", ns, "addr", "add", c["ips"][m] + "/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield c
    finally:
        for ns in (a, b):
            ip("netns", "delete", ns, check=False)
        assert not any(ns in ip("netns", "list") for ns in (a, b)), "a namespace was left behind"


@pytest.fixture(scope="package")
def salt_master(salt_factories, cluster):
    opts = {
        "kubesalt.bin_dir": cluster["bin_dir"],
        "kubesalt.status_db": cluster["status_db"],
        "kubesalt.plan_file": cluster["plan_file"],
        "file_roots": {"base": [cluster["state_dir"]]},
        "pillar_roots": {"base": [cluster["pillar_dir"]]},
        "ext_pillar": [{"kubesalt": {"plan_file": cluster["plan_file"], "pki_dir": cluster["pki_dir"]}}],
        "event_return": "kubesalt",
        "log_level_logfile": "info",
    }
    master = salt_factories.salt_master_daemon(f"ksmaster-{cluster['tag']}", overrides=opts)
    with master.started(start_timeout=120):
        yield master


@pytest.fixture(scope="package")
def salt_minions(salt_master, cluster):
    minions = []
    for m in cluster["minions"]:
        opts = {
            "kubesalt.bin_dir": cluster["bin_dir"],
            # routes sync registers the protocol's name here, never in the host's /etc.
            "kubesalt.rt_protos_dir": str(cluster["root"] / "rt_protos.d" / m),
            "log_level_logfile": "info",
        }
        minions.append(salt_master.salt_minion_daemon(m, overrides=opts))
    for m in minions:
        m.start(start_timeout=120)
    try:
        yield minions
    finally:
        for m in minions:
            m.terminate()


@pytest.fixture(scope="package")
def salt_cli(salt_master):
    return salt_master.salt_cli(timeout=180)


@pytest.fixture(scope="package")
def salt_run_cli(salt_master):
    return salt_master.salt_run_cli(timeout=120)


def wait_for(fn, timeout=60, interval=1.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
