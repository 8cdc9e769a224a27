"""The kubernetes formula, rendered and applied masterless by a real
salt-call with pillar.example and the kubesalt binary's own plan and PKI."""

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import tomllib
import yaml
from conftest import (
    FORMULA_SLS,
    PILLAR_EXAMPLE,
    REPO,
    SALT_DIR,
    default_versions,
    example_pillar,
    kubesalt_bin,
    local_binaries,
    local_etcd,
    pillar_override,
    run_kubesalt,
    stop_daemon,
)

# One node of each role, and a master that is not the first one (the first
# master also applies the RBAC and the Node podCIDRs).
RENDER_CASES = [
    ("example", "master-0"),
    ("example", "master-1"),
    ("example", "worker-0"),
    ("dual-stack", "master-0"),
    ("dual-stack", "worker-1"),
    ("controller", "master-0"),
    ("controller", "worker-2"),
]


def states_by_id(rendered):
    assert isinstance(rendered, dict), f"render failed: {rendered}"
    return rendered


def state_args(state):
    """The keyword arguments of one show_sls entry."""
    for key, value in state.items():
        if key.startswith("__"):
            continue
        args = {}
        for item in value:
            if isinstance(item, dict):
                args.update(item)
        return key, next(i for i in value if isinstance(i, str)), args
    raise AssertionError(f"no state function in {state}")


@pytest.mark.render
@pytest.mark.parametrize("variant,node", RENDER_CASES)
def test_every_sls_renders(make_cluster, variant, node):
    minion = make_cluster(variant).minion(node)
    rendered = states_by_id(minion.show_sls(*FORMULA_SLS))
    # Each SLS contributes states (an SLS that failed to render would have
    # made show_sls return the error list instead).
    seen = {s["__sls__"] for s in rendered.values()}
    for sls in FORMULA_SLS[1:]:
        assert sls in seen, f"{sls} rendered no state for {node} ({variant})"
    nodes = make_cluster(variant).nodes
    role = nodes[node]["role"]
    ids = set(rendered)
    # The first master keeps etcd's members to the definition's masters.
    masters = sorted(n for n, v in nodes.items() if v["role"] == "master")
    assert ("kubernetes-etcd-members" in ids) == (node == masters[0])
    if node == masters[0]:
        _, _, args = state_args(rendered["kubernetes-etcd-members"])
        assert args["keep"] == masters and len(args["endpoints"]) == len(masters)
    if role == "master":
        assert {"kubernetes-etcd-launch", "kubernetes-kube-apiserver-launch"} <= ids
        assert "kubernetes-kubelet-config" not in ids
    else:
        assert "kubernetes-kubelet-config" in ids
        assert "kubernetes-etcd-launch" not in ids
        # In controller mode a node's CIDR is known once the API reports it.
        cni = "kubernetes-cni-no-pod-cidr" if variant == "controller" else "kubernetes-cni-bridge"
        assert cni in ids
    # The bundle's files only: a worker gets no control plane key.
    pki_files = {
        i.removeprefix("kubernetes-pki-") for i in ids if i.startswith("kubernetes-pki-") and i != "kubernetes-pki-dir"
    }
    assert ("kube-apiserver-key.pem" in pki_files) == (role == "master")
    assert "ca-key.pem" not in pki_files


@pytest.mark.render
def test_etcd_backup_schedule_and_restore_render(make_cluster):
    """Masters schedule kubesalt_etcd.snapshot (kubernetes:etcd:backup);
    the restore SLS stops the control plane and etcd, then restores this
    member as one of the initial cluster."""
    minion = make_cluster("example").minion("master-1")
    rendered = states_by_id(minion.show_sls("kubernetes.etcd"))
    mod, fun, args = state_args(rendered["kubernetes-etcd-backup-schedule"])
    assert (mod, fun) == ("schedule", "present")
    assert args["function"] == "kubesalt_etcd.snapshot" and args["seconds"] == 3600
    assert args["job_kwargs"]["member"] == "master-1" and args["job_kwargs"]["keep"] == 24
    off = states_by_id(
        minion.call("state.show_sls", "kubernetes.etcd", pillar_override(etcd={"backup": {"enabled": False}}))
    )
    assert state_args(off["kubernetes-etcd-backup-schedule"])[:2] == ("schedule", "absent")

    override = "pillar=" + json.dumps(
        {"kubernetes": {"services": {"manager": "process"}}, "etcd_restore": {"snapshot": "/b/restore.db"}}
    )
    rendered = states_by_id(minion.call("state.show_sls", "kubernetes.etcd-restore", override))
    for d in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        assert state_args(rendered[f"kubernetes-{d}-stopped"])[:2] == ("cmd", "run")
    mod, fun, args = state_args(rendered["kubernetes-etcd-restored"])
    assert (mod, fun) == ("kubesalt_etcd", "restored")
    assert args["member"] == "master-1" and args["snapshot"] == "/b/restore.db"
    assert args["peer_url"] == "https://192.168.170.11:2380"
    assert "master-0=https://192.168.170.10:2380" in args["initial_cluster"]
    # Without a snapshot it refuses and names what is missing.
    refused = states_by_id(minion.show_sls("kubernetes.etcd-restore"))
    assert list(refused) == ["kubernetes-etcd-restore-refused"]


@pytest.mark.render
def test_upgrade_steps_render(make_cluster):
    """kubernetes.upgrade, one step of orch.kubernetes.upgrade per run: the
    new binaries and the role's daemons stopped after them (the role's
    state starts them again), the snapshot, drain and uncordon on the
    coordinating master; no step given is a failure that says so."""

    def step(minion, **s):
        pillar = {"kubernetes": {"services": {"manager": "process"}}, "upgrade_step": s}
        return states_by_id(minion.call("state.show_sls", "kubernetes.upgrade", "pillar=" + json.dumps(pillar)))

    cluster = make_cluster("example")
    for node, daemons in [
        ("master-1", ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]),
        ("worker-0", ["kubelet", "kube-proxy"]),
    ]:
        rendered = step(cluster.minion(node), action="replace")
        stopped = sorted(
            i.removeprefix("kubernetes-").removesuffix("-stopped") for i in rendered if i.endswith("-stopped")
        )
        assert stopped == sorted(daemons), (node, sorted(rendered))
        for d in daemons:
            mod, fun, args = state_args(rendered[f"kubernetes-{d}-stopped"])
            assert (mod, fun) == ("cmd", "run") and {"sls": "kubernetes.binaries"} in args["require"]
        assert any(i.startswith("kubernetes-bin-") for i in rendered), "the new binaries are in the same run"
    master = cluster.minion("master-0")
    mod, fun, args = state_args(step(master, action="snapshot")["kubernetes-upgrade-snapshot"])
    assert (mod, fun) == ("module", "run")
    assert args["kubesalt_etcd.snapshot"][1] == {"member": "master-0"}
    _, _, args = state_args(step(master, action="drain", nodes=["worker-0", "worker-1"])["kubernetes-upgrade-drain"])
    assert (
        args["name"].endswith("drain worker-0 worker-1 --ignore-daemonsets --delete-emptydir-data --timeout=5m")
        and "admin.kubeconfig" in args["name"]
    )
    _, _, args = state_args(step(master, action="uncordon", nodes=["worker-0"])["kubernetes-upgrade-uncordon"])
    assert args["name"].endswith("uncordon worker-0")
    assert list(step(master)) == ["kubernetes-upgrade-no-step"]


@pytest.mark.render
def test_node_states_have_no_run_checks(make_cluster):
    """No state of a node's highstate but file.* carries onlyif, unless or
    creates: for the first one in a run Salt 3008 looks up the state
    module's mod_run_check (only file has one), and the miss loads every
    state module (about a second of CPU per state run and minion, 12 s each
    with 20 minions at once). Commands check for themselves (stateful), the
    kubesalt states that need the API take if_api_ready."""
    cluster = make_cluster("example")
    for node in ("worker-0", "master-0"):
        rendered = states_by_id(
            cluster.minion(node).call("state.show_sls", "kubernetes", pillar_override(services={"manager": "process"}))
        )
        checked = {sid: args for sid, (_, _, args) in ((i, state_args(st)) for i, st in rendered.items())}
        modules = {sid: mod for sid, (mod, _, _) in ((i, state_args(st)) for i, st in rendered.items())}
        for sid, args in checked.items():
            if modules[sid] != "file":
                assert not {"onlyif", "unless", "creates"} & set(args), (node, sid, args)
        commands = [sid for sid in checked if modules[sid] == "cmd"]
        assert any(sid == "kubernetes-kubelet-registered" for sid in commands) or node != "worker-0", sorted(commands)
        for sid in commands:
            if "onchanges" not in checked[sid]:  # else it runs only after a change
                assert checked[sid].get("stateful"), (node, sid, "the command must say whether it changed anything")
        daemon_states = [sid for sid in checked if sid.endswith(("-stopped", "-stop-changed", "-process", "-reload"))]
        assert any(sid.endswith("-process") for sid in daemon_states), (node, sorted(checked))
        for sid in daemon_states:
            assert not {"onlyif", "unless", "creates"} & set(checked[sid]), (node, sid, checked[sid])
            assert checked[sid].get("stateful"), (node, sid, "the command must say whether it changed anything")


@pytest.mark.render
def test_routes_watch_and_reconcile_schedule_render(make_cluster):
    """Every node runs `kubesalt routes watch` supervised, from the record
    the route sync keeps (routing:watch, on by default), and schedules
    `state.apply kubernetes` every reconcile:interval with splay (on by
    default); each switch turns its part off."""
    minion = make_cluster("example").minion("worker-0")
    root = str(minion.root)
    sls = "kubernetes.routes-watch,kubernetes.reconcile"
    rendered = states_by_id(minion.call("state.show_sls", sls, pillar_override(services={"manager": "process"})))
    record = root + "/var/lib/kubesalt/routes.json"
    _, _, args = state_args(rendered["kubernetes-routes"])
    assert args["record"] == record
    _, _, args = state_args(rendered["kubernetes-kubesalt-routes-watch-launch"])
    assert f"exec {root}/usr/local/bin/kubesalt routes watch \\\n  --record={record}\n" in args["contents"]
    mod, fun, args = state_args(rendered["kubernetes-kubesalt-routes-watch-process"])
    assert "kubesalt supervise --name kubesalt-routes-watch" in args["name"]
    # Restarted when the binary changes.
    _, _, args = state_args(rendered["kubernetes-kubesalt-routes-watch-stop-changed"])
    assert {"file": "kubernetes-bin-kubesalt"} in args["onchanges"]
    mod, fun, args = state_args(rendered["kubernetes-reconcile-schedule"])
    assert (mod, fun) == ("schedule", "present")
    assert args["name"] == "kubesalt-reconcile" and args["function"] == "state.apply"
    assert args["job_args"] == ["kubernetes"] and args["job_kwargs"] == {"queue": True}
    assert args["seconds"] == 3600 and args["splay"] == 300

    systemd = states_by_id(minion.call("state.show_sls", sls, pillar_override(services={"manager": "systemd"})))
    _, _, args = state_args(systemd["kubernetes-kubesalt-routes-watch-unit"])
    assert "Restart=always" in args["contents"]

    changed = states_by_id(
        minion.call(
            "state.show_sls",
            sls,
            pillar_override(
                services={"manager": "process"}, routing={"watch": False}, reconcile={"interval": 600, "splay": 30}
            ),
        )
    )
    assert "kubernetes-kubesalt-routes-watch-process" not in changed
    assert state_args(changed["kubernetes-kubesalt-routes-watch-stopped"])[:2] == ("cmd", "run")
    _, _, args = state_args(changed["kubernetes-reconcile-schedule"])
    assert args["seconds"] == 600 and args["splay"] == 30
    off = states_by_id(
        minion.call("state.show_sls", "kubernetes.reconcile", pillar_override(reconcile={"enabled": False}))
    )
    assert state_args(off["kubernetes-reconcile-schedule"])[:2] == ("schedule", "absent")
    # The whole highstate of a node includes both.
    highstate = states_by_id(minion.show_sls("kubernetes"))
    assert {"kubernetes-kubesalt-routes-watch-launch", "kubernetes-reconcile-schedule"} <= set(highstate)
    # A new node routes right after its binaries, before its certificates,
    # load balancer and daemons (an add waits for it).
    order = {sid: state_args(body)[2]["order"] for sid, body in highstate.items()}
    sls = {sid: body["__sls__"] for sid, body in highstate.items()}
    later = [sid for sid in highstate if sls[sid] not in ("kubernetes.binaries", "kubernetes.routes")]
    assert sls["kubernetes-routes"] == "kubernetes.routes"
    first = [sid for sid in later if order[sid] <= order["kubernetes-routes"]]
    assert later and not first, first


@pytest.mark.render
@pytest.mark.parametrize(
    "reconcile,key",
    [
        ({"interval": "hourly"}, "kubernetes:reconcile:interval"),
        ({"interval": 30}, "kubernetes:reconcile:interval"),
        ({"interval": True}, "kubernetes:reconcile:interval"),
        ({"splay": 3600}, "kubernetes:reconcile:splay"),
        ({"splay": -1}, "kubernetes:reconcile:splay"),
        ({"enabled": "yes"}, "kubernetes:reconcile:enabled"),
    ],
)
def test_reconcile_pillar_refused_naming_the_key(make_cluster, reconcile, key):
    """A bad reconcile value renders one failing state that names the key
    and the fix, and no schedule."""
    minion = make_cluster("example").minion("worker-0")
    rendered = states_by_id(minion.call("state.show_sls", "kubernetes.reconcile", pillar_override(reconcile=reconcile)))
    assert list(rendered) == ["kubernetes-reconcile-invalid"], rendered
    mod, fun, args = state_args(rendered["kubernetes-reconcile-invalid"])
    assert (mod, fun) == ("test", "fail_without_changes")
    assert args["name"].startswith(key + ": ") and "use e.g." in args["name"], args["name"]


@pytest.mark.render
def test_ca_sls_and_smoke_render(make_cluster):
    minion = make_cluster("example").minion("master-0")
    rendered = states_by_id(minion.show_sls("kubernetes.ca", "kubernetes.smoke"))
    mod, fun, args = state_args(rendered["kubernetes-certificates"])
    assert (mod, fun) == ("kubesalt_pki", "certificates_issued")
    assert args["pki_dir"] == "/var/lib/kubesalt/pki"
    # Rotation (kubernetes:ca:rotation), on by default: the CA minion's
    # schedule runs kubesalt_pki.rotate; off, the schedule goes.
    mod, fun, args = state_args(rendered["kubernetes-certificates-rotation-schedule"])
    assert (mod, fun) == ("schedule", "present")
    assert args["function"] == "kubesalt_pki.rotate" and args["seconds"] == 3600
    assert args["job_kwargs"] == {"pki_dir": "/var/lib/kubesalt/pki", "retry_after": "1h", "renew_before": "720h"}
    off = states_by_id(
        minion.call("state.show_sls", "kubernetes.ca", pillar_override(ca={"rotation": {"enabled": False}}))
    )
    assert state_args(off["kubernetes-certificates-rotation-schedule"])[:2] == ("schedule", "absent")


@pytest.mark.render
def test_dns_applied_from_the_first_master_only(make_cluster):
    """The cluster DNS add-on goes through the API once, from the first
    master, by `kubesalt addons apply` with the admin kubeconfig; the other
    nodes render a no-op."""
    cluster = make_cluster("example")
    rendered = states_by_id(cluster.minion("master-0").show_sls("kubernetes.dns"))
    mod, fun, args = state_args(rendered["kubernetes-dns"])
    assert (mod, fun) == ("kubesalt_addons", "applied")
    assert args["kubeconfig"].endswith("/admin.kubeconfig") and args["kubectl"].endswith("/kubectl")
    assert args["if_api_ready"] is True and "onlyif" not in args
    for other in ("master-1", "worker-0"):
        assert "kubernetes-dns-elsewhere" in states_by_id(cluster.minion(other).show_sls("kubernetes.dns"))


@pytest.mark.render
def test_ca_host_gets_its_pki_from_init(make_cluster):
    """`salt '*' state.apply kubernetes` reaches the CA host (the master's own
    minion, kubernetes:ca:minion) too: there it issues and renews the
    certificates, nothing else. A minion that is neither is told why."""
    cluster = make_cluster("example")
    rendered = states_by_id(cluster.minion("salt").show_sls("kubernetes"))
    assert {s["__sls__"] for s in rendered.values()} == {"kubernetes.ca"}
    stranger = states_by_id(cluster.minion("stranger").show_sls("kubernetes"))
    assert "kubernetes-no-role" in stranger


@pytest.mark.render
def test_controller_mode_routes_wait_for_discovery(make_cluster):
    """In controller mode the routes come from the API (the mine); with none
    discovered yet, the route state leaves the routes alone instead of
    syncing to an empty list (which would remove every route)."""
    rendered = states_by_id(make_cluster("controller").minion("worker-0").show_sls("kubernetes.network"))
    mod, fun, _ = state_args(rendered["kubernetes-routes"])
    assert (mod, fun) == ("test", "show_notification")


@pytest.mark.render
def test_controller_mode_routes_from_discovered_nodes(make_cluster, tmp_path):
    """Controller mode: the node list is what the masters discovered from
    the API (`kubesalt nodes discover`, shared through the mine), CIDRs the
    controller manager chose, not the plan."""
    cluster = make_cluster("controller")
    items = []
    for i, (name, node) in enumerate(sorted(cluster.nodes.items())):
        cidr = f"10.200.{100 + i}.0/24"
        items.append(
            {
                "metadata": {"name": name},
                "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                "status": {"addresses": [{"type": "InternalIP", "address": node["ips"][0]}]},
            }
        )
    kubectl_json = tmp_path / "nodes.json"
    kubectl_json.write_text(json.dumps({"kind": "List", "items": items}))
    discovered = run_kubesalt("nodes", "discover", "--file", str(kubectl_json))
    # The mine of a masterless minion is its local data store.
    minion = cluster.minion("master-1-mine", extra={"id": "master-1"})
    minion.call("data.update", "mine_cache", json.dumps({"kubesalt_nodes": discovered}))
    rendered = states_by_id(minion.show_sls("kubernetes.network"))
    mod, fun, args = state_args(rendered["kubernetes-routes"])
    assert (mod, fun) == ("kubesalt_net", "routes_synced")
    assert {n["name"]: n["pod_cidrs"] for n in args["nodes"]} == {
        i["metadata"]["name"]: i["spec"]["podCIDRs"] for i in items
    }
    assert args["self_name"] == "master-1"
    # This node's masquerade rule follows its discovered CIDR.
    _, _, masq = state_args(rendered["kubernetes-masquerade-ipv4"])
    assert masq["source"] == "10.200.101.0/24"


def test_first_master_sets_node_pod_cidrs(make_cluster):
    """Planned mode: the first master sets Node.spec.podCIDRs to the plan
    through `kubesalt nodes set-cidrs` (kubesalt_net.node_cidrs_set), once
    the API answers; no other node does, nor does controller mode."""
    cluster = make_cluster("example")
    minion = cluster.minion("master-0")
    rendered = states_by_id(minion.show_sls("kubernetes.network"))
    mod, fun, args = state_args(rendered["kubernetes-node-pod-cidrs"])
    assert (mod, fun) == ("kubesalt_net", "node_cidrs_set")
    assert args["nodes"] == cluster.plan["data"]["nodes"]
    assert args["kubeconfig"] == str(minion.root / "etc/kubernetes/pki/admin.kubeconfig")
    assert args["if_api_ready"] is True and "onlyif" not in args
    for variant, node in (("example", "master-1"), ("example", "worker-0"), ("controller", "master-0")):
        rendered = states_by_id(make_cluster(variant).minion(node).show_sls("kubernetes.network"))
        assert "kubernetes-node-pod-cidrs" not in rendered, (variant, node)


# --- generated configuration, written for real into a node's own tree ------


@pytest.fixture(scope="module")
def applied(make_cluster, tmp_path_factory):
    """The role SLS applied for real (manager none, no binaries) into each
    node's own tree: the files a node gets, to read back and parse. Needs
    no root and changes nothing outside the tree."""
    out = {}

    def apply(variant, node):
        if (variant, node) in out:
            return out[(variant, node)]
        cluster = make_cluster(variant)
        local = tmp_path_factory.mktemp("no-binaries")
        minion = cluster.minion(node + "-apply", extra={"id": node})
        role = cluster.nodes[node]["role"]
        sls = ["kubernetes.etcd", "kubernetes.control-plane"] if role == "master" else ["kubernetes.worker"]
        # Files only: the kernel setting is the host's (test_applied_twice
        # sets it inside a namespace).
        ret = minion.call(
            "state.sls",
            ",".join(sls),
            pillar_override(services={"manager": "none"}, binaries={"source": "local", "local_dir": str(local)}),
            'exclude=[{"id": "kubernetes-bridge-nf-call-iptables"}]',
        )
        failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
        assert not failed, failed
        out[(variant, node)] = (cluster, minion.root)
        return out[(variant, node)]

    return apply


def launch_flags(root, name):
    text = (root / "etc/kubernetes/launch" / f"{name}.sh").read_text()
    flags = {}
    for line in text.splitlines():
        line = line.strip().rstrip("\\").strip()
        if line.startswith("--"):
            key, _, value = line[2:].partition("=")
            flags[key] = value
    return flags


@pytest.mark.parametrize("variant,node", [("example", "worker-0"), ("dual-stack", "worker-1")])
def test_worker_configs(applied, variant, node):
    cluster, root = applied(variant, node)
    pod_cidrs = cluster.nodes[node]["pod_cidrs"]
    cluster_cidrs = cluster.pillar["kubernetes"]["network"]["cluster_cidr"]
    cluster_cidrs = cluster_cidrs if isinstance(cluster_cidrs, list) else [cluster_cidrs]

    kubelet = yaml.safe_load((root / "var/lib/kubelet/kubelet-config.yaml").read_text())
    assert kubelet["kind"] == "KubeletConfiguration"
    assert kubelet["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    assert kubelet["podCIDR"] == pod_cidrs[0]
    assert kubelet["clusterDNS"] == ["10.32.0.10"]
    assert kubelet["tlsCertFile"].endswith("/pki/kubelet.pem")

    proxy = yaml.safe_load((root / "etc/kubernetes/kube-proxy-config.yaml").read_text())
    assert proxy["kind"] == "KubeProxyConfiguration"
    assert proxy["apiVersion"] == "kubeproxy.config.k8s.io/v1alpha1"
    assert proxy["clusterCIDR"].split(",") == cluster_cidrs

    cni = json.loads((root / "etc/cni/net.d/10-kubesalt-bridge.conflist").read_text())
    bridge = [p for p in cni["plugins"] if p["type"] == "bridge"]
    assert len(bridge) == 1, cni
    bridge = bridge[0]
    assert bridge["ipMasq"] is False, "pod-to-pod traffic must keep its source address"
    assert bridge["ipam"]["type"] == "host-local"
    assert [r[0]["subnet"] for r in bridge["ipam"]["ranges"]] == pod_cidrs
    for subnet in pod_cidrs:
        net = ipaddress.ip_network(subnet)
        assert any(
            net.subnet_of(ipaddress.ip_network(c))
            for c in cluster_cidrs
            if ipaddress.ip_network(c).version == net.version
        )

    flags = launch_flags(root, "kubelet")
    assert flags["node-ip"].split(",") == cluster.nodes[node]["ips"]
    # Keys and kubeconfigs 0600, certificates 0644, as the bundle says.
    assert oct((root / "etc/kubernetes/pki/kubelet-key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct((root / "etc/kubernetes/pki/kubelet.kubeconfig").stat().st_mode & 0o777) == "0o600"
    assert oct((root / "etc/kubernetes/pki/ca.pem").stat().st_mode & 0o777) == "0o644"
    assert not (root / "etc/kubernetes/pki/ca-key.pem").exists()


def containerd_config(minion, *override) -> str:
    rendered = states_by_id(minion.call("state.show_sls", "kubernetes.worker", *override))
    return state_args(rendered["kubernetes-containerd-config"])[2]["contents"]


@pytest.mark.render
def test_containerd_config_version_follows_containerd(make_cluster, tmp_path):
    """containerd 2 (the default) gets config version 3, whose CRI plugin is
    split into images and runtime; a pinned containerd 1.x gets version 2.
    Where `make containerd` built containerd, it loads the version 3 file and
    reports the settings back (`containerd config dump`)."""
    minion = make_cluster("example").minion("worker-0")
    oom = pillar_override(worker={"containerd": {"restrict_oom_score_adj": True}})
    v3 = tomllib.loads(containerd_config(minion, oom))
    assert v3["version"] == 3
    runtime = v3["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2" and runc["options"]["SystemdCgroup"] is False
    assert v3["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10"
    old = tomllib.loads(
        containerd_config(
            minion,
            "pillar="
            + json.dumps(
                {
                    "kubernetes": {
                        "versions": {"containerd": "1.7.24"},
                        "worker": {"containerd": {"restrict_oom_score_adj": True}},
                    }
                }
            ),
        )
    )
    assert old["version"] == 2
    assert old["plugins"]["io.containerd.grpc.v1.cri"]["restrict_oom_score_adj"] is True

    built = REPO / "bin/containerd" / default_versions()["containerd"] / "containerd"
    if not built.exists():
        return
    path = tmp_path / "config.toml"
    path.write_text(containerd_config(minion, oom))
    out = subprocess.run(
        [str(built), "--config", str(path), "config", "dump"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    dumped = tomllib.loads(out.stdout)
    assert dumped["plugins"]["io.containerd.cri.v1.runtime"]["restrict_oom_score_adj"] is True
    assert dumped["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10"


@pytest.mark.parametrize("variant", ["example", "dual-stack", "controller"])
def test_control_plane_flags(applied, variant):
    cluster, root = applied(variant, "master-0")
    net = cluster.pillar["kubernetes"]["network"]
    service = net["service_cidr"] if isinstance(net["service_cidr"], list) else [net["service_cidr"]]
    cluster_cidrs = net["cluster_cidr"] if isinstance(net["cluster_cidr"], list) else [net["cluster_cidr"]]

    api = launch_flags(root, "kube-apiserver")
    assert api["service-cluster-ip-range"].split(",") == service
    # The API URL and etcd members are the binary's facts (kubesalt:cluster).
    facts = cluster.plan["data"]["cluster"]
    assert api["service-account-issuer"] == facts["api_url"] == "https://192.168.170.10:6443"
    assert api["authorization-mode"] == "Node,RBAC"
    # Its own etcd member only (kubeadm's stacked etcd).
    assert api["etcd-servers"] == "https://192.168.170.10:2379"
    assert api["encryption-provider-config"].endswith("/pki/encryption-config.yaml")
    assert (root / "etc/kubernetes/pki/encryption-config.yaml").exists()
    # The aggregation layer: webhooks and aggregated API servers reached at
    # their pods (a master runs no kube-proxy), proxied to as front-proxy-client.
    assert api["enable-aggregator-routing"] == "true"
    assert api["requestheader-allowed-names"] == "front-proxy-client"
    assert api["proxy-client-cert-file"].endswith("/pki/front-proxy-client.pem")
    assert (root / "etc/kubernetes/pki/front-proxy-client.pem").exists()
    assert (root / "etc/kubernetes/pki/front-proxy-client-key.pem").exists()

    kcm = launch_flags(root, "kube-controller-manager")
    assert kcm["leader-elect"] == "true"
    if variant == "controller":
        assert kcm["allocate-node-cidrs"] == "true"
        assert kcm["cluster-cidr"].split(",") == cluster_cidrs
    else:
        assert kcm["allocate-node-cidrs"] == "false"
        assert "cluster-cidr" not in kcm

    sched_config = yaml.safe_load((root / "etc/kubernetes/kube-scheduler.yaml").read_text())
    assert sched_config["kind"] == "KubeSchedulerConfiguration"
    assert sched_config["leaderElection"]["leaderElect"] is True

    etcd = (root / "etc/kubernetes/launch/etcd.sh").read_text()
    assert "--client-cert-auth=true" in etcd and "--peer-client-cert-auth=true" in etcd
    assert "member add master-0" in etcd and "--initial-cluster-state=$STATE" in etcd
    assert f"INITIAL={facts['etcd_initial_cluster']}\n" in etcd
    assert "--advertise-client-urls=https://192.168.170.10:2379" in etcd


def test_apiserver_certificate_has_first_service_ip(applied):
    """The API server's certificate on the master, as `kubesalt pki check`
    reads it from the PKI directory, carries the first service IP, and the
    node got exactly that certificate."""
    cluster, root = applied("dual-stack", "master-0")
    check = run_kubesalt("pki", "check", "--dir", str(cluster.pki_dir))
    certs = {c["name"]: c for c in check["data"]["certificates"]}
    sans = certs["kube-apiserver"]["sans"]
    for svc in cluster.pillar["kubernetes"]["network"]["service_cidr"]:
        first = str(ipaddress.ip_network(svc).network_address + 1)
        assert first in sans, (first, sans)
    on_node = (root / "etc/kubernetes/pki/kube-apiserver.pem").read_text()
    assert on_node == (cluster.pki_dir / "kube-apiserver.pem").read_text()
    # And the scheduler's identity has its one system:kube-scheduler O.
    assert "O=system:kube-scheduler" in certs["kube-scheduler"]["subject"].replace(" ", "")


# --- test mode on a real minion ---------------------------------------------


def read(path):
    with open(path) as f:
        return f.read()


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_local_binaries_from_the_master_file_server(make_cluster, tmp_path):
    """binaries:local_dir as a salt:// directory (the lab's VMs, whose disks
    hold no copy of the binaries): what the file server has is installed
    from it, what it lacks is listed as missing, as with a local path."""
    served = tmp_path / "fileserver"
    served.mkdir()
    (served / "kubesalt-binaries").symlink_to(local_binaries(tmp_path / "binaries"))
    minion = make_cluster("example").minion(
        "vm-binaries", extra={"id": "worker-0", "file_roots": {"base": [str(SALT_DIR), str(served)]}}
    )
    ret = minion.call(
        "state.sls",
        "kubernetes.binaries",
        pillar_override(binaries={"source": "local", "local_dir": "salt://kubesalt-binaries"}),
    )
    failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
    assert not failed, failed
    installed = minion.root / "usr/local/bin/kubesalt"
    assert installed.read_bytes() == kubesalt_bin().read_bytes()
    if Path("/usr/lib/cni/bridge").exists():
        assert (minion.root / "opt/cni/bin/bridge").exists()
    missing = [v["comment"] for k, v in ret.items() if "kubernetes-bin-missing" in k]
    assert missing and "not in salt://kubesalt-binaries" in missing[0] and "kubelet" in missing[0], ret


def owned_routes():
    out = subprocess.run(["ip", "-j", "route", "show", "proto", "201"], capture_output=True, text=True, check=False)
    return out.stdout


@pytest.mark.parametrize("node", ["master-0", "worker-0"])
def test_apply_test_mode_changes_nothing(make_cluster, tmp_path, node):
    """state.apply kubernetes test=True, as the lab profile runs it (local
    binaries, daemons started by the formula): it reports pending changes and
    writes no file, starts no daemon, sets no sysctl, adds no route."""
    minion = make_cluster("example").minion(node + "-test", extra={"id": node, "kubesalt.bin_dir": str(REPO / "bin")})
    binaries = local_binaries(tmp_path / "binaries")
    forward = read("/proc/sys/net/ipv4/ip_forward")
    routes = owned_routes()
    ret = minion.call(
        "state.apply",
        "kubernetes",
        "test=True",
        pillar_override(services={"manager": "process"}, binaries={"source": "local", "local_dir": str(binaries)}),
        check=False,
    )
    assert isinstance(ret, dict), ret
    failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
    assert not failed, failed
    pending = [k for k, v in ret.items() if v["result"] is None]
    assert "kubernetes-pki-ca.pem" in [k.split("_|-")[1] for k in pending]
    assert any("kubernetes-routes" in k for k in ret), "the route state ran in test mode"
    assert tree(minion.root) == [], "test=True wrote files"
    assert read("/proc/sys/net/ipv4/ip_forward") == forward
    assert owned_routes() == routes


@pytest.mark.render
def test_routes_state_is_loaded(make_cluster):
    """The formula's own state modules exist in a real minion's loader."""
    minion = make_cluster("example").minion("loader", extra={"id": "worker-0", "kubesalt.bin_dir": str(REPO / "bin")})
    funcs = minion.call("sys.list_state_functions")
    for fun in ("kubesalt_net.routes_synced", "kubesalt_pki.certificates_issued"):
        assert fun in funcs, f"{fun} not loaded: install saltext-kubesalt (make venv)"


@pytest.mark.root
@pytest.mark.parametrize("sls", ["kubernetes.network", "kubernetes"])
def test_applied_twice_changes_nothing_the_second_time(make_cluster, tmp_path, sls):
    """The network part (and the whole highstate, the lab's way: local
    binaries, daemons started by the formula) applied for real inside a
    network namespace holding worker-0's address: routes to every other
    node's pod CIDR (never its own), ip_forward, masquerading, the worker's
    files; the second run changes nothing."""
    cluster = make_cluster("example")
    minion = cluster.minion(f"worker-0-{sls}", extra={"id": "worker-0", "kubesalt.bin_dir": str(REPO / "bin")})
    binaries = local_binaries(tmp_path / "binaries")
    override = pillar_override(
        services={"manager": "process"}, binaries={"source": "local", "local_dir": str(binaries)}
    )
    ns = f"ksf-{os.getpid()}"

    def sh(*args):
        subprocess.run(["ip", "-n", ns, *args], check=True)

    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh("link", "add", "node0", "type", "veth", "peer", "name", "node0p")
        sh("link", "set", "node0", "up")
        sh("link", "set", "node0p", "up")
        sh("link", "set", "lo", "up")
        sh("addr", "add", "192.168.170.20/24", "dev", "node0")
        salt_call = ["ip", "netns", "exec", ns]

        def apply():
            cmd = [*salt_call, *minion.salt_call_cmd("state.sls", sls, override)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
            ret = json.loads(out.stdout)["local"]
            failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
            assert not failed, failed
            return ret

        first = apply()
        assert any(v["changes"] for k, v in first.items() if "kubernetes-routes" in k), first
        second = apply()
        changed = {k: v["changes"] for k, v in second.items() if v["changes"]}
        assert not changed, changed
        # The formula names the routes' protocol in the node's own tree.
        proto_name = (minion.root / "etc/iproute2/rt_protos.d/kubesalt.conf").read_text()
        assert "\n201\tkubesalt\n" in proto_name, proto_name
        if sls == "kubernetes":
            assert (minion.root / "usr/local/bin/kubesalt").exists()
            assert (minion.root / "etc/cni/net.d/10-kubesalt-bridge.conflist").exists()
            # The routes watcher runs supervised: a route deleted by hand
            # is back within seconds, without a state run.
            victim = sorted(n["pod_cidrs"][0] for name, n in cluster.nodes.items() if name != "worker-0")[0]
            subprocess.run(["ip", "-n", ns, "route", "del", victim], check=True)
            start = time.monotonic()
            while (
                victim
                not in subprocess.run(
                    ["ip", "-n", ns, "route", "show", "proto", "201"], capture_output=True, text=True, check=True
                ).stdout
            ):
                log = minion.root / "var/log/kubernetes/kubesalt-routes-watch.log"
                assert time.monotonic() - start < 3, "deleted route not back: " + (
                    log.read_text()[-2000:] if log.exists() else "no watcher log"
                )
                time.sleep(0.05)
            print(f"the watcher put a deleted route back after {time.monotonic() - start:.2f}s")
        routes = json.loads(
            subprocess.run(
                ["ip", "-n", ns, "-j", "route", "show", "proto", "201"], capture_output=True, text=True, check=True
            ).stdout
        )
        dsts = sorted(r["dst"] for r in routes)
        want = sorted(n["pod_cidrs"][0] for name, n in cluster.nodes.items() if name != "worker-0")
        assert dsts == want
        assert (
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            == "1"
        )
    finally:
        stop_daemon(minion.root / "run/kubesalt/kubesalt-routes-watch.pid")
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.render
def test_systemd_manager_units_watch_certificates(make_cluster):
    """Where systemd runs: a unit per daemon, service.running restarted by
    its launch script, its unit and its certificates."""
    minion = make_cluster("example").minion("systemd", extra={"id": "master-0"})
    rendered = minion.call("state.show_sls", "kubernetes.etcd", pillar_override(services={"manager": "systemd"}))
    _, fun, args = state_args(rendered["kubernetes-etcd-service"])
    assert fun == "running" and args["enable"] is True
    # etcd reads its certificate again at each connection: a renewed one
    # needs no restart, a new CA does.
    assert {"file": "kubernetes-pki-ca.pem"} in args["watch"]
    assert {"file": "kubernetes-pki-etcd-server.pem"} not in args["watch"]
    assert {"file": "kubernetes-etcd-unit"} in args["watch"]
    _, _, unit = state_args(rendered["kubernetes-etcd-unit"])
    assert "ExecStart=" + str(minion.root) + "/etc/kubernetes/launch/etcd.sh" in unit["contents"]


@pytest.mark.root
def test_etcd_started_without_systemd(make_cluster, tmp_path):
    """The lab's way (manager process, local binaries, no Kubernetes
    binaries): the master's highstate inside a namespace holding master-0's
    address starts etcd, which answers over mutual TLS on the issued
    certificates; a second highstate changes nothing."""
    binaries = local_binaries(tmp_path / "binaries")
    if not (local_etcd(binaries) / "etcd").exists():
        pytest.skip("no etcd: make etcd builds it (make test-formula does), or install Debian's etcd-server")
    cluster = make_cluster("single-master")
    # kubesalt_net loads from where the formula installs kubesalt: not there
    # before the first run, so the formula reloads the modules after it.
    minion = cluster.minion("master-0-etcd", extra={"id": "master-0"})
    minion.set_option("kubesalt.bin_dir", str(minion.root / "usr/local/bin"))
    ns = f"ksf-etcd-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    pki = minion.root / "etc/kubernetes/pki"
    try:
        for args in (
            ["link", "add", "node0", "type", "veth", "peer", "name", "node0p"],
            ["link", "set", "node0", "up"],
            ["link", "set", "node0p", "up"],
            ["link", "set", "lo", "up"],
            ["addr", "add", "192.168.170.10/24", "dev", "node0"],
        ):
            subprocess.run(["ip", "-n", ns, *args], check=True)
        override = pillar_override(
            services={"manager": "process"}, binaries={"source": "local", "local_dir": str(binaries)}
        )

        def apply():
            cmd = ["ip", "netns", "exec", ns, *minion.salt_call_cmd("state.apply", "kubernetes", override)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
            ret = json.loads(out.stdout)["local"]
            failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
            log = minion.root / "var/log/kubernetes/etcd.log"
            assert not failed, (failed, log.read_text()[-3000:] if log.exists() else "no etcd log")
            return ret

        first = apply()
        assert any("kubernetes-etcd-process" in k and v["changes"] for k, v in first.items())
        health = None
        for _ in range(30):
            health = subprocess.run(
                ["ip", "netns", "exec", ns, str(local_etcd(binaries) / "etcdctl"), "--endpoints=https://192.168.170.10:2379",
                 f"--cacert={pki}/ca.pem", f"--cert={pki}/etcd-server.pem", f"--key={pki}/etcd-server-key.pem",
                 "endpoint", "health"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if health.returncode == 0:
                break
            time.sleep(0.5)
        assert health.returncode == 0, health.stderr + (minion.root / "var/log/kubernetes/etcd.log").read_text()
        second = apply()
        changed = {k: v["changes"] for k, v in second.items() if v["changes"]}
        assert not changed, changed

        # Supervised: etcd killed with SIGKILL is started again by its
        # supervisor (whose pid the pid file holds), without a highstate.
        pidfile = minion.root / "run/kubesalt/etcd.pid"
        supervisor = int(pidfile.read_text())
        etcd = children(supervisor)
        assert len(etcd) == 1, etcd
        os.kill(etcd[0], signal.SIGKILL)
        start = time.monotonic()
        while time.monotonic() - start < 15:
            again = children(supervisor)
            if again and again != etcd and etcdctl_ok(ns, binaries, pki):
                break
            time.sleep(0.2)
        else:
            pytest.fail(
                "etcd not back 15 s after kill -9:\n"
                + (minion.root / "var/log/kubernetes/etcd.log").read_text()[-3000:]
            )
        took = time.monotonic() - start
        print(f"etcd killed with SIGKILL, healthy again after {took:.1f}s")
        assert "supervise etcd: exited (signal: killed)" in (minion.root / "var/log/kubernetes/etcd.log").read_text()

        # One snapshot taken by the function the backup schedule runs.
        snap = subprocess.run(
            ["ip", "netns", "exec", ns, *minion.salt_call_cmd("kubesalt_etcd.snapshot",
             f"dir={minion.root}/var/lib/kubesalt/etcd-backup", "member=master-0", "keep=1", "push=False",
             f"cacert={pki}/ca.pem", f"cert={pki}/etcd-server.pem", f"key={pki}/etcd-server-key.pem",
             f"etcdctl={local_etcd(binaries)}/etcdctl")],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        res = json.loads(snap.stdout)["local"]
        assert res["result"] is True, res
        assert os.path.getsize(res["changes"]["saved"]) > 0
    finally:
        supervisor = int(pidfile.read_text()) if (pidfile := minion.root / "run/kubesalt/etcd.pid").exists() else 0
        etcd = children(supervisor) if supervisor else []
        stop_daemon(minion.root / "run/kubesalt/etcd.pid")
        stop_daemon(minion.root / "run/kubesalt/kubesalt-routes-watch.pid")
        subprocess.run(["ip", "netns", "del", ns], check=False)
    # The stop took the daemon along: no etcd left.
    for pid in etcd:
        assert not alive(pid), f"etcd {pid} outlived its supervisor"


def children(pid):
    """The child processes of pid (every thread's)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return sorted(out)


def alive(pid):
    """pid runs and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def etcdctl_ok(ns, binaries, pki):
    cmd = ["ip", "netns", "exec", ns, str(local_etcd(binaries) / "etcdctl"), "--endpoints=https://192.168.170.10:2379"]
    cmd += [f"--cacert={pki}/ca.pem", f"--cert={pki}/etcd-server.pem", f"--key={pki}/etcd-server-key.pem"]
    return (
        subprocess.run([*cmd, "--dial-timeout=1s", "endpoint", "health"], capture_output=True, check=False).returncode
        == 0
    )


@pytest.mark.root
def test_new_master_joins_the_running_etcd_cluster(make_cluster, tmp_path):
    """master-0 runs a one-member cluster; master-1 is added to the
    definition and its etcd state applied: it joins by `member add` and
    --initial-cluster-state existing, so the cluster keeps its ID and data."""
    binaries = local_binaries(tmp_path / "binaries")
    if not (local_etcd(binaries) / "etcd").exists() or not (local_etcd(binaries) / "etcdctl").exists():
        pytest.skip(
            "no etcd: make etcd builds it (make test-formula does), or install Debian's etcd-server and etcd-client"
        )
    cluster = make_cluster("single-master", fresh=True)
    pid = os.getpid()
    nodes = {"master-0": (f"ksf-m0-{pid}", "192.168.170.10"), "master-1": (f"ksf-m1-{pid}", "192.168.170.11")}
    minions = {name: cluster.minion(name, extra={"id": name}) for name in nodes}
    override = pillar_override(
        services={"manager": "process"}, binaries={"source": "local", "local_dir": str(binaries)}
    )

    def etcdctl(node, *args):
        ns, ip = nodes[node]
        pki = minions[node].root / "etc/kubernetes/pki"
        cmd = ["ip", "netns", "exec", ns, str(local_etcd(binaries) / "etcdctl"), f"--endpoints=https://{ip}:2379",
               f"--cacert={pki}/ca.pem", f"--cert={pki}/etcd-server.pem", f"--key={pki}/etcd-server-key.pem",
               "--dial-timeout=3s", "-w", "json", *args]  # fmt: skip
        for _ in range(40):
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode == 0:
                return json.loads(out.stdout)
            time.sleep(0.5)
        log = minions[node].root / "var/log/kubernetes/etcd.log"
        raise AssertionError(
            f"etcdctl {args} on {node}: {out.stderr}\n{log.read_text()[-3000:] if log.exists() else ''}"
        )

    def apply(node):
        cmd = [
            "ip",
            "netns",
            "exec",
            nodes[node][0],
            *minions[node].salt_call_cmd("state.sls", "kubernetes.etcd", override),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        ret = json.loads(out.stdout)["local"]
        failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
        assert not failed, failed

    for ns, _ in nodes.values():
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        (ns0, _), (ns1, ip1) = nodes["master-0"], nodes["master-1"]
        veth = ["ip", "link", "add", "eth0", "netns", ns0, "type", "veth", "peer", "name", "eth0", "netns", ns1]
        subprocess.run(veth, check=True)
        for ns, ip in nodes.values():
            for args in (
                ["addr", "add", ip + "/24", "dev", "eth0"],
                ["link", "set", "eth0", "up"],
                ["link", "set", "lo", "up"],
            ):
                subprocess.run(["ip", "-n", ns, *args], check=True)

        apply("master-0")
        before = etcdctl("master-0", "member", "list")
        assert len(before["members"]) == 1
        etcdctl("master-0", "put", "kubesalt-test", "kept")

        # master-1 joins the definition: new certificates, a new pillar.
        pillar = cluster.pillar
        pillar["kubernetes"]["nodes"]["master-1"] = {"role": "master", "ip": ip1}
        cluster.define(pillar)
        apply("master-1")

        after = etcdctl("master-1", "member", "list")
        assert after["header"]["cluster_id"] == before["header"]["cluster_id"], "the cluster was re-initialised"
        names = sorted(m.get("name", "") for m in after["members"])
        assert names == ["master-0", "master-1"], after
        got = etcdctl("master-1", "get", "kubesalt-test")
        assert [kv["key"] for kv in got["kvs"]], got
        launch = (minions["master-1"].root / "etc/kubernetes/launch/etcd.sh").read_text()
        assert "member add master-1" in launch
    finally:
        for name in nodes:
            stop_daemon(minions[name].root / "run/kubesalt/etcd.pid")
        for ns, _ in nodes.values():
            subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.render
@pytest.mark.parametrize("node", ["master-0", "worker-0"])
def test_pillar_example_alone_renders_and_says_what_is_missing(make_cluster, tmp_path, node):
    """pillar.example as is, without the kubesalt ext_pillar: the formula
    still renders for every role, and the states that need the ext_pillar's
    data fail with a message naming the pillar key and the fix."""
    pillar_dir = tmp_path / "pillar"
    pillar_dir.mkdir()
    (pillar_dir / "top.sls").write_text("base:\n  '*': [cluster]\n")
    (pillar_dir / "cluster.sls").write_text(PILLAR_EXAMPLE.read_text())
    minion = make_cluster("example").minion(
        f"bare-{node}", extra={"id": node, "pillar_roots": {"base": [str(pillar_dir)]}}
    )
    rendered = states_by_id(minion.show_sls(*FORMULA_SLS))
    _, fun, args = state_args(rendered["kubernetes-pki-no-bundle"])
    assert fun == "fail_without_changes" and "kubesalt:pki:files" in args["name"] and "ext_pillar" in args["name"]
    if node.startswith("master"):
        # Without the binary's facts (the API URL, the etcd members) etcd and
        # the control plane are left alone, and say why.
        for sid in ("kubernetes-etcd-no-cluster-facts", "kubernetes-control-plane-no-cluster-facts"):
            _, fun, args = state_args(rendered[sid])
            assert fun == "fail_without_changes" and "kubesalt:cluster" in args["name"], args
        assert "kubernetes-etcd-launch" not in rendered and "kubernetes-kube-apiserver-launch" not in rendered
    if node.startswith("worker"):
        _, _, args = state_args(rendered["kubernetes-cni-no-pod-cidr"])
        assert "kubesalt:pod_cidrs" in args["name"]
    # Without the plan the routes are left alone: syncing to no CIDRs would
    # remove every route of a running cluster.
    _, fun, routes = state_args(rendered["kubernetes-routes"])
    assert fun == "fail_without_changes" and "kubesalt:nodes" in routes["name"]


# --- the node-local API load balancer and the VIP ----------------------------


def lb_states(minion, *override):
    return states_by_id(minion.call("state.show_sls", "kubernetes.load-balancer", *override))


def check_with(tool, args, contents, tmp_path, name):
    """Run Debian's haproxy or keepalived on a rendered config: it must
    accept it as it is (skipped where the package is not installed)."""
    found = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if not found:
        return
    path = tmp_path / name
    path.write_text(contents)
    out = subprocess.run([found, *args, str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"{tool} refuses the rendered config:\n{out.stdout}{out.stderr}\n{contents}"


@pytest.mark.render
def test_haproxy_config_has_every_master_as_checked_backend(make_cluster, tmp_path):
    """Every node's haproxy listens on 127.0.0.1:<api:local_port> with each
    master's API server as a backend (the binary's api_backends), checked on
    /readyz over TLS against the cluster's CA; real haproxy accepts the
    config. A config change reloads it (USR2 to its master), and the daemon
    starts only after the config exists."""
    cluster = make_cluster("example")
    facts = cluster.plan["data"]["cluster"]
    assert facts["local_api_url"] == "https://127.0.0.1:6444"
    for node in ("master-1", "worker-0"):
        minion = cluster.minion(node)
        rendered = lb_states(minion, pillar_override(services={"manager": "process"}))
        _, _, args = state_args(rendered["kubernetes-haproxy-config"])
        cfg = args["contents"]
        assert "bind 127.0.0.1:6444" in cfg
        servers = [line.split()[1:] for line in cfg.splitlines() if line.strip().startswith("server ")]
        assert servers == [
            ["master-0", "192.168.170.10:6443"],
            ["master-1", "192.168.170.11:6443"],
            ["master-2", "192.168.170.12:6443"],
        ]
        assert "option httpchk GET /readyz" in cfg
        assert f"check check-ssl verify required ca-file {minion.root}/etc/kubernetes/pki/ca.pem" in cfg
        assert "on-marked-down shutdown-sessions" in cfg
        # No VIP in pillar.example: no keepalived anywhere (one the formula
        # started before is stopped, its files removed).
        assert "kubernetes-keepalived-config" not in rendered and "kubernetes-kube-api-vip-process" not in rendered
        assert state_args(rendered["kubernetes-keepalived-absent"])[:2] == ("file", "absent"), node
        assert state_args(rendered["kubernetes-kube-api-vip-stopped"])[:2] == ("cmd", "run"), node
        check_with(
            "haproxy",
            ["-c", "-q", "-f"],
            cfg.replace(str(minion.root / "etc/kubernetes/pki/ca.pem"), str(cluster.pki_dir / "ca.pem")),
            tmp_path,
            f"{node}.cfg",
        )
        _, _, reload = state_args(rendered["kubernetes-haproxy-reload"])
        assert "kill -USR2" in reload["name"] and {"file": "kubernetes-haproxy-config"} in reload["onchanges"]
        _, _, start = state_args(rendered["kubernetes-kube-api-lb-process"])
        assert {"file": "kubernetes-haproxy-config"} in start["require"]
        _, _, launch = state_args(rendered["kubernetes-kube-api-lb-launch"])
        assert "-W -db -f" in launch["contents"]


@pytest.mark.render
def test_haproxy_backends_follow_the_masters(make_cluster):
    """A master removed from the pillar is no backend on any node once the
    node's pillar is refreshed (no stale backend), and a master added is."""
    cluster = make_cluster("example", fresh=True)
    pillar = example_pillar()
    del pillar["kubernetes"]["nodes"]["master-2"]
    pillar["kubernetes"]["nodes"]["master-3"] = {"role": "master", "ip": "192.168.170.13"}
    cluster.define(pillar)
    _, _, args = state_args(lb_states(cluster.minion("worker-1"))["kubernetes-haproxy-config"])
    servers = [line.split()[1] for line in args["contents"].splitlines() if line.strip().startswith("server ")]
    assert servers == ["master-0", "master-1", "master-3"]


@pytest.mark.render
def test_keepalived_holds_the_vip_on_masters(make_cluster, tmp_path):
    """With api:vip: keepalived on every master (not on workers), VRRP
    unicast from the node's address to the other masters, the VIP with the
    node network's length, tracking the local API server's /readyz; real
    keepalived accepts the config. The admin kubeconfig uses the VIP."""
    cluster = make_cluster("vip")
    assert cluster.plan["data"]["cluster"]["api_vip"] == "192.168.170.5/24"
    assert cluster.plan["data"]["cluster"]["api_url"] == "https://192.168.170.5:6443"
    override = pillar_override(services={"manager": "process"}, keepalived={"interface": "eth0"})
    minion = cluster.minion("master-1")
    rendered = lb_states(minion, override)
    _, _, args = state_args(rendered["kubernetes-keepalived-config"])
    cfg = args["contents"]
    assert "unicast_src_ip 192.168.170.11" in cfg
    peers = cfg.split("unicast_peer {")[1].split("}")[0].split()
    assert peers == ["192.168.170.10", "192.168.170.12"]
    assert "192.168.170.5/24 dev eth0" in cfg
    assert "https://127.0.0.1:6443/readyz" in cfg and "nopreempt" in cfg
    check_with("keepalived", ["-t", "-f"], cfg, tmp_path, "keepalived.conf")
    _, _, reload = state_args(rendered["kubernetes-keepalived-reload"])
    assert "kill -HUP" in reload["name"]
    assert "kubernetes-kube-api-vip-process" in rendered
    worker = lb_states(cluster.minion("worker-0"), override)
    assert "kubernetes-kube-api-lb-process" in worker
    assert "kubernetes-keepalived-config" not in worker and "kubernetes-kube-api-vip-process" not in worker
    # A lone master: no peers, so no unicast block (keepalived refuses an
    # empty one).
    lone = make_cluster("single-master", fresh=True)
    pillar = example_pillar()
    for name in ("master-1", "master-2"):
        del pillar["kubernetes"]["nodes"][name]
    pillar["kubernetes"]["api"]["vip"] = "192.168.170.5"
    lone.define(pillar)
    _, _, args = state_args(lb_states(lone.minion("master-0"), override)["kubernetes-keepalived-config"])
    assert "unicast_peer" not in args["contents"]
    check_with("keepalived", ["-t", "-f"], args["contents"], tmp_path, "lone.conf")
    # Without a pillar interface, the one holding the node's address (this
    # host has none holding 192.168.170.11): the state says what to set.
    rendered = lb_states(minion, pillar_override(services={"manager": "process"}))
    _, fun, args = state_args(rendered["kubernetes-keepalived-no-interface"])
    assert fun == "fail_without_changes" and "kubernetes:keepalived:interface" in args["name"]


@pytest.mark.root
def test_keepalived_stopped_when_the_vip_is_removed(make_cluster, tmp_path):
    """A master's keepalived runs under its supervisor while api:vip is
    set (manager process, Debian's keepalived); api:vip removed from the
    definition, the next kubernetes.load-balancer stops it and removes its
    config and launch script, and the admin kubeconfig names the first
    master again. A second run changes nothing."""
    keepalived = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if not os.path.exists(keepalived):
        pytest.skip("keepalived is not installed (Debian keepalived; make test-formula installs it)")
    binaries = local_binaries(tmp_path / "binaries")
    (binaries / "keepalived").symlink_to(keepalived)
    cluster = make_cluster("single-master", fresh=True)
    pillar = cluster.pillar
    pillar["kubernetes"]["api"]["vip"] = "192.168.170.5"
    cluster.define(pillar)
    minion = cluster.minion("master-0-vip", extra={"id": "master-0"})
    minion.set_option("kubesalt.bin_dir", str(minion.root / "usr/local/bin"))
    override = pillar_override(
        services={"manager": "process"},
        binaries={"source": "local", "local_dir": str(binaries)},
        keepalived={"interface": "eth0"},
    )
    ns = f"ksf-vip-{os.getpid()}"
    pidfile = minion.root / "run/kubesalt/kube-api-vip.pid"
    files = [minion.root / "etc/kubernetes/keepalived.conf", minion.root / "etc/kubernetes/launch/kube-api-vip.sh"]

    def admin_server():
        conf = yaml.safe_load((cluster.pki_dir / "admin.kubeconfig").read_text())
        return conf["clusters"][0]["cluster"]["server"]

    def apply():
        cmd = ["ip", "netns", "exec", ns, *minion.salt_call_cmd("state.sls", "kubernetes.load-balancer", override)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        ret = json.loads(out.stdout)["local"]
        failed = {k: v["comment"] for k, v in ret.items() if v["result"] is False}
        assert not failed, failed
        return {k.split("_|-")[1]: v for k, v in ret.items()}

    subprocess.run(["ip", "netns", "add", ns], check=True)
    supervisor, daemon = 0, []
    try:
        for args in (
            ["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"],
            ["addr", "add", "192.168.170.10/24", "dev", "eth0"],
            ["link", "set", "eth0", "up"],
            ["link", "set", "eth0p", "up"],
            ["link", "set", "lo", "up"],
        ):
            subprocess.run(["ip", "-n", ns, *args], check=True)
        assert admin_server() == "https://192.168.170.5:6443"
        apply()
        supervisor = int(pidfile.read_text())
        for _ in range(25):
            daemon = children(supervisor)
            if daemon:
                break
            time.sleep(0.2)
        assert alive(supervisor) and daemon, "keepalived did not start under its supervisor"
        assert all(f.exists() for f in files)

        del pillar["kubernetes"]["api"]["vip"]
        cluster.define(pillar)
        ret = apply()
        assert ret["kubernetes-kube-api-vip-stopped"]["changes"], ret["kubernetes-kube-api-vip-stopped"]
        assert not alive(supervisor) and not any(alive(p) for p in daemon), "keepalived still runs"
        assert not any(f.exists() for f in files), [str(f) for f in files if f.exists()]
        assert "kubernetes-keepalived-config" not in ret
        assert admin_server() == "https://192.168.170.10:6443"
        again = apply()
        changed = {k: v["changes"] for k, v in again.items() if v["changes"]}
        assert not changed, changed
    finally:
        stop_daemon(pidfile)
        stop_daemon(minion.root / "run/kubesalt/kube-api-lb.pid")
        subprocess.run(["ip", "netns", "del", ns], check=False)
