"""
Argument building of the execution modules: what command line and what
standard input each function hands the binary (the run itself is captured).
"""

import pytest

import saltext.kubesalt.modules.kubesalt_addons as addons
import saltext.kubesalt.modules.kubesalt_etcd as etcd
import saltext.kubesalt.modules.kubesalt_net as net
import saltext.kubesalt.modules.kubesalt_pki as pki
import saltext.kubesalt.modules.kubesalt_virt as virt
import saltext.kubesalt.utils.binary as kb

DEFINITION = {"nodes": {"worker-0": {"role": "worker", "ip": "192.168.170.20"}}}
NODES = [{"name": "worker-0", "ips": ["192.168.170.20"], "pod_cidrs": ["10.200.0.0/24"]}]
OK = {"result": True, "changes": {}, "comment": "", "data": {}}

events = []


@pytest.fixture
def configure_loader_modules():
    events.clear()
    opts = {"kubesalt.bin_dir": "/opt/ks", "test": False, "id": "worker-0"}
    pillar = {"kubernetes": DEFINITION, "kubesalt": {"node": "worker-0", "nodes": NODES}}
    salt = {"event.send": lambda tag, data: events.append((tag, data)) or True}
    ctx = {}
    return {
        mod: {"__opts__": opts, "__pillar__": pillar, "__salt__": salt, "__context__": ctx, "__grains__": {}}
        for mod in (addons, etcd, net, pki, virt)
    }


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def run(opts, binary, args, stdin=None, timeout=None):
        seen.append((binary, list(args), stdin))
        return seen_result[0]

    seen_result = [OK]
    monkeypatch.setattr(kb, "run", run)
    return seen


def test_plan_defaults_to_pillar_definition(calls):
    net.plan()
    binary, args, stdin = calls[0]
    assert binary == "kubesalt"
    assert args == ["cidr", "plan", "--definition", "-", "--plan", "/var/lib/kubesalt/plan.json"]
    assert stdin == DEFINITION


def test_plan_file_definition_and_test(calls):
    net.plan(definition="/srv/cluster.yaml", plan_file="/tmp/p.json", test=True)
    assert calls[0][1] == [
        "cidr",
        "plan",
        "--definition",
        "/srv/cluster.yaml",
        "--plan",
        "/tmp/p.json",
        "--test",
    ]
    assert calls[0][2] is None


def test_test_mode_follows_opts(calls):
    net.__opts__["test"] = True
    try:
        net.routes_sync()
    finally:
        net.__opts__["test"] = False
    assert "--test" in calls[0][1]


def test_routes_sync_from_ext_pillar(calls):
    net.routes_sync(netns="ns1", adopt=True)
    binary, args, stdin = calls[0]
    assert args == ["routes", "sync", "--nodes", "-", "--self", "worker-0", "--netns", "ns1", "--adopt"]
    assert stdin == NODES


def test_routes_sync_explicit_nodes_file(calls):
    net.routes_sync(nodes="/tmp/nodes.json", self_name="w1", protocol=202, table=100, test=True)
    assert calls[0][1] == [
        "routes", "sync", "--nodes", "/tmp/nodes.json", "--self", "w1",
        "--protocol", "202", "--table", "100", "--test",
    ]  # fmt: skip


def test_routes_sync_record(calls):
    """record= keeps the node list for the watcher: --record FILE."""
    net.routes_sync(record="/var/lib/kubesalt/routes.json")
    assert calls[0][1][-2:] == ["--record", "/var/lib/kubesalt/routes.json"]
    net.routes_sync()
    assert "--record" not in calls[1][1]


def test_routes_sync_fresh_pillar(calls, monkeypatch):
    """fresh_pillar=True: the node list of a pillar the master compiles for
    the call (a node added since the minion's pillar was loaded), as a
    MaskedDict in Salt 3008; without it, the loaded pillar's."""
    added = NODES + [{"name": "worker-1", "ips": ["192.168.170.21"], "pod_cidrs": ["10.200.1.0/24"]}]
    compiled = {"kubesalt": {"node": "worker-0", "nodes": added}}
    try:
        from salt.utils.secret import hide  # pylint: disable=import-outside-toplevel

        compiled = hide(compiled)
    except ImportError:  # Salt before 3008: no masking
        pass
    asked = []

    class Remote:
        def compile_pillar(self):
            return compiled

    def get_pillar(opts, grains, minion_id, **kwargs):
        asked.append(minion_id)
        return Remote()

    monkeypatch.setattr(net.salt.pillar, "get_pillar", get_pillar)
    net.routes_sync(fresh_pillar=True)
    _, args, stdin = calls[0]
    assert asked == ["worker-0"]
    assert args == ["routes", "sync", "--nodes", "-", "--self", "worker-0"]
    assert [n["name"] for n in stdin] == ["worker-0", "worker-1"]
    assert stdin[1]["pod_cidrs"] == ["10.200.1.0/24"]
    net.routes_sync()
    assert calls[1][2] == NODES and asked == ["worker-0"]


def test_routes_sync_rt_protos_dir_option(calls, tmp_path):
    """kubesalt.rt_protos_dir is passed on (tests point it at a temp dir, so
    nothing registers the name in the host's /etc); unset, no flag."""
    net.__opts__["kubesalt.rt_protos_dir"] = str(tmp_path)
    try:
        net.routes_sync()
    finally:
        del net.__opts__["kubesalt.rt_protos_dir"]
    assert calls[0][1][-2:] == ["--rt-protos-dir", str(tmp_path)]
    net.routes_sync()
    assert "--rt-protos-dir" not in calls[1][1]


def test_routes_without_node_list(calls):
    net.__pillar__.pop("kubesalt")
    try:
        with pytest.raises(kb.KubesaltError, match="no node list.*kubesalt ext_pillar"):
            net.routes_sync()
    finally:
        net.__pillar__["kubesalt"] = {"node": "worker-0", "nodes": NODES}
    assert not calls


def test_routes_diff_list_flush_discover(calls):
    net.routes_diff(nodes=NODES, self_name="w")
    net.routes_list(netns="n")
    net.routes_flush(netns="n", test=True)
    net.discover(kubeconfig="/etc/k/admin.kubeconfig")
    assert [c[1] for c in calls] == [
        ["routes", "diff", "--nodes", "-", "--self", "w"],
        ["routes", "list", "--netns", "n"],
        ["routes", "flush", "--netns", "n", "--test"],
        ["nodes", "discover", "--kubeconfig", "/etc/k/admin.kubeconfig"],
    ]


def test_set_cidrs(calls):
    net.set_cidrs("/p/admin.kubeconfig")
    net.set_cidrs("/p/admin.kubeconfig", nodes="/tmp/nodes.json", test=True, timeout="10s")
    assert [c[1] for c in calls] == [
        ["nodes", "set-cidrs", "--nodes", "-", "--kubeconfig", "/p/admin.kubeconfig"],
        ["nodes", "set-cidrs", "--nodes", "/tmp/nodes.json", "--kubeconfig", "/p/admin.kubeconfig",
         "--timeout", "10s", "--test"],
    ]  # fmt: skip
    # The planned node list of the ext_pillar goes on stdin; a file does not.
    assert calls[0][2] == NODES and calls[1][2] is None


def test_addons_apply(calls):
    addons.apply("/p/admin.kubeconfig")
    addons.apply(
        "/p/admin.kubeconfig",
        definition="/srv/cluster.yaml",
        kubectl="/opt/kubectl",
        test=True,
        timeout="30s",
    )
    assert [c[1] for c in calls] == [
        ["addons", "apply", "--definition", "-", "--kubeconfig", "/p/admin.kubeconfig"],
        ["addons", "apply", "--definition", "/srv/cluster.yaml", "--kubectl", "/opt/kubectl",
         "--kubeconfig", "/p/admin.kubeconfig", "--timeout", "30s", "--test"],
    ]  # fmt: skip
    # The kubernetes pillar goes on stdin; a file does not.
    assert calls[0][2] == DEFINITION and calls[1][2] is None


def test_etcd_prune(calls):
    etcd.prune(["master-0", "master-1"], ["https://10.0.0.10:2379"], "/p/ca.pem", "/p/s.pem", "/p/s-key.pem")
    etcd.prune(
        ("master-0",),
        ("https://10.0.0.10:2379",),
        "/p/ca.pem",
        "/p/s.pem",
        "/p/s-key.pem",
        etcdctl="/opt/ks/etcdctl",
        timeout="5s",
        test=True,
    )
    assert [c[1] for c in calls] == [
        ["etcd", "prune", "--keep", "master-0", "--keep", "master-1", "--endpoints", "https://10.0.0.10:2379",
         "--cacert", "/p/ca.pem", "--cert", "/p/s.pem", "--key", "/p/s-key.pem"],
        ["etcd", "prune", "--keep", "master-0", "--endpoints", "https://10.0.0.10:2379",
         "--cacert", "/p/ca.pem", "--cert", "/p/s.pem", "--key", "/p/s-key.pem",
         "--etcdctl", "/opt/ks/etcdctl", "--timeout", "5s", "--test"],
    ]  # fmt: skip


def test_no_definition(calls):
    pki.__pillar__.pop("kubernetes")
    try:
        with pytest.raises(kb.KubesaltError, match="no cluster definition"):
            pki.issue()
    finally:
        pki.__pillar__["kubernetes"] = DEFINITION


def test_pki(calls):
    pki.issue(pki_dir="/p", renew_before="720h", reissue="kube-apiserver")
    pki.bundle("worker-0", pki_dir="/p")
    pki.check()
    assert [c[1] for c in calls] == [
        [
            "pki",
            "issue",
            "--definition",
            "-",
            "--dir",
            "/p",
            "--renew-before",
            "720h",
            "--reissue",
            "kube-apiserver",
        ],
        ["pki", "bundle", "--node", "worker-0", "--dir", "/p", "--definition", "-"],
        ["pki", "check", "--dir", "/var/lib/kubesalt/pki"],
    ]


def test_pki_check_due_returns_the_result(monkeypatch):
    due = {"result": False, "changes": {}, "comment": "1 due", "data": {"certificates": [{"days_left": 3}]}}

    def run(*a, **k):
        raise kb.KubesaltError("failed", result=due, retcode=1)

    monkeypatch.setattr(kb, "run", run)
    assert pki.check() == due
    assert pki.__context__["retcode"] == 1


def test_pki_rotate_fires_the_dispatched_nodes(monkeypatch):
    res = {"result": True, "changes": {"dispatch": ["master-0", "worker-0"]}, "comment": "",
           "data": {"dispatch": ["master-0", "worker-0"], "waiting": []}}  # fmt: skip
    seen = []
    monkeypatch.setattr(kb, "run", lambda opts, binary, args, stdin=None: seen.append(args) or res)
    assert pki.rotate(pki_dir="/p", retry_after="10m") == res
    assert seen[0] == ["pki", "rotate", "--definition", "-", "--dir", "/p", "--retry-after", "10m"]
    assert events == [("kubesalt/pki/rotate", {"nodes": ["master-0", "worker-0"]})]


def test_pki_rotate_nothing_due_or_test_fires_nothing(monkeypatch):
    due = {"result": None, "changes": {}, "comment": "", "data": {"dispatch": ["worker-0"]}}
    monkeypatch.setattr(kb, "run", lambda *a, **k: due)
    pki.rotate(test=True)
    monkeypatch.setattr(kb, "run", lambda *a, **k: OK)
    pki.rotate()
    assert not events


def test_pki_distributed(calls):
    pki.distributed("worker-0,worker-1", pki_dir="/p")
    assert calls[0][1] == ["pki", "distributed", "--dir", "/p", "--node", "worker-0", "--node", "worker-1"]


def test_virt_args(calls):
    # The minion names itself as the hypervisor (the binary places the
    # nodes when the definition has several); an explicit one wins.
    virt.network_ensure(connect="test:///default", update=True)
    virt.node_ensure(node=["worker-0", "worker-1"], master_pki_dir="/etc/salt/pki/master", test=True)
    virt.node_remove("worker-0", hypervisor="hv-1")
    virt.list_(connect="test:///default")
    assert [(c[0], c[1]) for c in calls] == [
        ("kubesalt-virt", ["network", "ensure", "--definition", "-",
                           "--connect", "test:///default", "--hypervisor", "worker-0", "--update"]),
        ("kubesalt-virt", ["node", "ensure", "--definition", "-", "--node", "worker-0", "--node", "worker-1",
                           "--hypervisor", "worker-0", "--master-pki-dir", "/etc/salt/pki/master", "--test"]),
        ("kubesalt-virt", ["node", "remove", "--definition", "-", "--node", "worker-0",
                           "--hypervisor", "hv-1"]),
        ("kubesalt-virt", ["list", "--connect", "test:///default"]),
    ]  # fmt: skip
    assert not events, "test mode fired an event"


def test_virt_fires_created_events(monkeypatch):
    res = {
        "result": True,
        "changes": {"worker-0": {"created": ["disk", "seed", "domain"]}, "worker-1": {"fixed": ["started"]}},
        "comment": "",
        "data": {"nodes": {"worker-0": {"state": "running", "ip": "192.168.170.20"}}},
    }
    monkeypatch.setattr(kb, "run", lambda *a, **k: res)
    assert virt.node_ensure() == res
    assert events == [
        (
            "kubesalt/virt/worker-0/created",
            {
                "node": "worker-0",
                "created": ["disk", "seed", "domain"],
                "state": "running",
                "ip": "192.168.170.20",
            },
        )
    ]


def test_virtual_without_binary(tmp_path):
    for mod in (net, pki, virt):
        mod.__opts__["kubesalt.bin_dir"] = str(tmp_path)
        ok, reason = mod.__virtual__()
        assert ok is False and "binary is not at" in reason and "kubesalt.bin_dir" in reason


def test_virtual_without_netlink(monkeypatch, tmp_path):
    exe = tmp_path / "kubesalt"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    net.__opts__["kubesalt.bin_dir"] = str(tmp_path)
    monkeypatch.setattr(kb.sys, "platform", "darwin")
    ok, reason = net.__virtual__()
    assert ok is False and reason == "kubesalt_net: routes need Linux netlink; this is darwin"
    # pki needs no netlink.
    pki.__opts__["kubesalt.bin_dir"] = str(tmp_path)
    assert pki.__virtual__() == "kubesalt_pki"
