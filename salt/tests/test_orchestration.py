"""Orchestrations, reactors and the master config snippet: they render (the
orchestrations by the master's own runner, state.orchestrate_show_sls) and
name only states, functions and runners a real master and minion load."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SALT_DIR, kubesalt_bin

# Every test here renders (salt-run, slsutil.renderer); none applies anything.
pytestmark = pytest.mark.render

ROTATE_NODES = {
    "nodes": {
        "master-0": {"role": "master"},
        "master-1": {"role": "master"},
        "worker-0": {"role": "worker"},
        "worker-1": {"role": "worker"},
    }
}

ORCHESTRATIONS = [
    ("orch.kubernetes.bootstrap", {}),
    ("orch.kubernetes.add_node", {"node": "worker-3"}),
    ("orch.kubernetes.add_node", {}),
    # A worker, by the definition: the other masters have nothing to take.
    ("orch.kubernetes.add_node", {"node": "worker-3", "kubernetes": {"nodes": {"worker-3": {"role": "worker"}}}}),
    ("orch.kubernetes.pillar_changed", {}),
    ("orch.kubernetes.etcd_restore", {}),
    ("orch.kubernetes.etcd_restore", {"snapshot": "/srv/backups/etcd.db"}),
    # Certificates issued outside Salt: no CA minion, the PKI step says so.
    ("orch.kubernetes.bootstrap", {"kubernetes": {"ca": {"minion": ""}}}),
    # The rotation schedule's nodes (from the CA minion); by hand, every node.
    (
        "orch.kubernetes.rotate",
        {"nodes": ["master-1", "worker-0", "master-0"], "sender": "salt", "kubernetes": ROTATE_NODES},
    ),
    ("orch.kubernetes.rotate", {"kubernetes": ROTATE_NODES}),
    ("orch.kubernetes.rotate", {"nodes": ["worker-0"], "sender": "worker-0", "kubernetes": ROTATE_NODES}),
]

REACTIONS = [
    ("node-created.sls", "salt/cloud/worker-3/created", {"name": "worker-3"}, "worker-3"),
    ("node-created.sls", "kubesalt/virt/worker-4/created", {"node": "worker-4", "created": ["domain"]}, "worker-4"),
    # minion-start.sls asks a master's runner: test_minion_start_reactor_asks_before_it_orchestrates
    ("pillar-changed.sls", "kubesalt/pillar/changed", {}, None),
    ("pki-rotate.sls", "kubesalt/pki/rotate", {"id": "salt", "data": {"nodes": ["worker-0"]}}, None),
]


def first_json(text):
    """The first JSON document of salt-run's output (it may print more)."""
    return json.JSONDecoder().raw_decode(text.lstrip())[0]


class Master:
    """salt-run with a master config of its own: file_roots = salt/."""

    def __init__(self, base: Path):
        root = base / "root"
        (root / "var/cache/salt/master/proc").mkdir(parents=True)
        self.conf = base / "conf"
        self.conf.mkdir()
        (self.conf / "master").write_text(
            yaml.safe_dump(
                {
                    "root_dir": str(root),
                    "file_roots": {"base": [str(SALT_DIR)]},
                    "log_file": str(base / "master.log"),
                    "kubesalt.bin_dir": str(kubesalt_bin().parent),
                    "kubesalt.plan_file": str(base / "plan.json"),
                    "kubesalt.status_db": str(base / "status.db"),
                }
            )
        )

    def run(self, *args):
        salt_run = Path(sys.executable).parent / "salt-run"
        out = subprocess.run(
            [str(salt_run), "-c", str(self.conf), "--out", "json", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert out.stdout.strip(), f"salt-run {args}: {out.stderr}"
        return first_json(out.stdout)


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    return Master(tmp_path_factory.mktemp("master"))


@pytest.fixture(scope="module")
def loaded(master, make_cluster):
    """What a real master and minion load: runner, state and execution
    functions, returners."""
    minion = make_cluster("example").minion("loaded", extra={"id": "master-0", "kubesalt.bin_dir": str(REPO / "bin")})
    return {
        "runners": set(master.run("doc.runner")),
        "states": set(minion.call("sys.list_state_functions")),
        "functions": set(minion.call("sys.list_functions")),
        "returners": set(minion.call("sys.list_returners")),
        "minion": minion,
    }


def state_order(body):
    (args,) = (v for k, v in body.items() if not k.startswith("__"))
    return next(a["order"] for a in args if isinstance(a, dict) and "order" in a)


def sls_exists(sls):
    path = SALT_DIR / sls.replace(".", "/")
    return path.with_suffix(".sls").is_file() or (path / "init.sls").is_file()


def check_names(rendered, loaded, problems):
    for sid, body in rendered.items():
        for mod, args in body.items():
            if mod.startswith("__"):
                continue
            fun = next(a for a in args if isinstance(a, str))
            kw = {k: v for a in args if isinstance(a, dict) for k, v in a.items()}
            if f"{mod}.{fun}" not in loaded["states"]:
                problems.append(f"{sid}: state {mod}.{fun} is not loaded")
            if (mod, fun) == ("salt", "function") and kw["name"] not in loaded["functions"]:
                problems.append(f"{sid}: function {kw['name']} is not loaded")
            if (mod, fun) == ("salt", "runner") and kw["name"] not in loaded["runners"]:
                problems.append(f"{sid}: runner {kw['name']} is not loaded")
            if (mod, fun) == ("salt", "state"):
                sls = kw.get("sls")
                for s in [sls] if isinstance(sls, str) else sls or []:
                    if not sls_exists(s):
                        problems.append(f"{sid}: no SLS {s}")


@pytest.mark.parametrize("mods,pillar", ORCHESTRATIONS)
def test_orchestration_renders_with_existing_names(master, loaded, mods, pillar):
    args = ["state.orchestrate_show_sls", mods]
    if pillar:
        args.append("pillar=" + json.dumps(pillar))
    out = master.run(*args)
    assert isinstance(out, dict) and len(out) == 1, out
    rendered = next(iter(out.values()))
    assert isinstance(rendered, dict), rendered
    problems = []
    check_names(rendered, loaded, problems)
    assert not problems, problems
    if mods.endswith("add_node") and pillar:
        steps = {sid: next(iter(v for k, v in b.items() if not k.startswith("__"))) for sid, b in rendered.items()}
        assert {"tgt": "worker-3"} in steps["kubernetes-add-node-highstate"]
        # Every node's routes: a publish of routes_sync (no state run
        # queued behind another; kubesalt.routes_publish waits for a slow
        # node and asks a failed one again), in the background as soon as the
        # node answers, each node's pillar compiled for the call: no wait
        # for the certificates or a pillar refresh of every minion.
        routes = steps["kubernetes-add-node-routes"]
        assert {"name": "kubesalt.routes_publish"} in routes
        # The new node too: its routes need not wait for its highstate.
        assert {"tgt": "I@kubesalt:node:* or L@worker-3"} in routes
        # The record the node's routes watcher reconciles from, or the
        # watcher would take the new route away again.
        assert {"record": "/var/lib/kubesalt/routes.json"} in routes
        assert {"adopt": False} in routes and {"protocol": 201} in routes
        assert {"require": [{"salt": "kubernetes-add-node-up"}]} in routes
        assert {"parallel": True} in routes
        order = sorted(rendered, key=lambda sid: state_order(rendered[sid]))
        assert order.index("kubernetes-add-node-routes") == order.index("kubernetes-add-node-up") + 1
        # The pillar refreshed only on the new node (its certificates).
        assert {"tgt": "worker-3"} in steps["kubernetes-add-node-pillar"]
        # Unknown role: the other masters take the new material; a worker: no.
        assert ("kubernetes-add-node-masters" in steps) == ("kubernetes" not in pillar)
        assert ("kubernetes-add-node-vip-peers" in steps) == ("kubernetes" not in pillar)
        # A master may come: every other node's API load balancer takes it
        # as a backend in this same orchestration.
        if "kubernetes" not in pillar:
            assert {"sls": ["kubernetes.pki", "kubernetes.control-plane", "kubernetes.load-balancer"]} in steps[
                "kubernetes-add-node-masters"
            ]
            # The other masters' keepalived knows the new peer before the
            # new master's keepalived starts (else it takes the VIP too).
            assert {"require": [{"salt": "kubernetes-add-node-vip-peers"}]} in steps["kubernetes-add-node-highstate"]
            assert {"sls": "kubernetes.vip"} in steps["kubernetes-add-node-vip-peers"]
            assert {"sls": "kubernetes.load-balancer"} in steps["kubernetes-add-node-load-balancers"]
            assert {"tgt": "I@kubesalt:role:worker and not L@worker-3"} in steps["kubernetes-add-node-load-balancers"]
        else:
            assert "kubernetes-add-node-load-balancers" not in steps
    if mods.endswith("pillar_changed"):
        # A master that left is no backend anywhere after it.
        step = rendered["kubernetes-pillar-changed-routes"]["salt"]
        assert {"sls": ["kubernetes.network", "kubernetes.load-balancer"]} in step
        assert {"tgt": "I@kubesalt:node:*"} in step
        # A master that left: its etcd member goes, the masters take the
        # certificate without its IP, one at a time.
        assert {"sls": "kubernetes.etcd-members"} in rendered["kubernetes-pillar-changed-etcd-members"]["salt"]
        step = rendered["kubernetes-pillar-changed-masters"]["salt"]
        assert {"sls": ["kubernetes.pki", "kubernetes.control-plane"]} in step
        assert {"batch": 1} in step
    if mods.endswith("etcd_restore"):
        # One snapshot sent to every master, then stop+restore, etcd, the
        # control plane, and health waited for.
        order = sorted(rendered, key=lambda sid: state_order(rendered[sid]))
        assert order == [
            "kubernetes-etcd-restore-send",
            "kubernetes-etcd-restore-members",
            "kubernetes-etcd-restore-etcd",
            "kubernetes-etcd-restore-control-plane",
            "kubernetes-etcd-restore-healthy",
        ]
        send = {
            k: v for a in rendered["kubernetes-etcd-restore-send"]["salt"] if isinstance(a, dict) for k, v in a.items()
        }
        assert send["name"] in loaded["runners"], send
        assert send["dest"] == "/var/lib/kubesalt/etcd-backup/restore.db"
        assert send.get("snapshot") == pillar.get("snapshot"), send
    if mods.endswith("rotate"):
        check_rotate(rendered, pillar)
    if mods.endswith("bootstrap") and pillar:
        assert "test" in rendered["kubernetes-pki"], rendered["kubernetes-pki"]
    elif mods.endswith("bootstrap"):
        assert rendered["kubernetes-pki"]["salt"][0] == {"tgt": "salt"}
        order = sorted(rendered, key=lambda sid: state_order(rendered[sid]))
        assert order == [
            "kubernetes-pki",
            "kubernetes-pillar",
            "kubernetes-base",
            "kubernetes-control-plane",
            "kubernetes-workers",
            "kubernetes-masters-finish",
        ]
        steps = {sid: step_kwargs(rendered[sid]) for sid in order}
        # Planned mode: every node routes with the base step; the masters set
        # Node podCIDRs (kubernetes.network) once the workers registered.
        assert "kubernetes.network" in steps["kubernetes-base"]["sls"]
        assert steps["kubernetes-control-plane"]["sls"] == ["kubernetes.etcd", "kubernetes.control-plane"]
        # Each node's smoke check is in its last step.
        assert steps["kubernetes-workers"]["sls"] == ["kubernetes.worker", "kubernetes.smoke"]
        assert steps["kubernetes-masters-finish"]["sls"] == ["kubernetes.network", "kubernetes.dns", "kubernetes.smoke"]
        assert steps["kubernetes-masters-finish"]["tgt"] == "I@kubesalt:role:master"


def step_kwargs(step):
    """The keyword arguments of one rendered salt.* step."""
    return {k: v for a in step["salt"] if isinstance(a, dict) for k, v in a.items()}


def check_rotate(rendered, pillar):
    """The masters one at a time (each after the one before), then the
    workers together, then the CA host records them; by hand, renewed on
    the CA host first and every node; from another minion than the CA
    minion, refused."""
    if pillar.get("sender") == "worker-0":
        assert list(rendered) == ["kubernetes-rotate-refused"]
        return
    order = sorted(rendered, key=lambda sid: state_order(rendered[sid]))
    steps = {sid: step_kwargs(rendered[sid]) for sid in order}
    masters = ["master-1", "master-0"] if pillar.get("nodes") else ["master-0", "master-1"]
    want = (
        ["kubernetes-rotate-pillar"]
        + [f"kubernetes-rotate-master-{m}" for m in masters]
        + ["kubernetes-rotate-workers"]
    )
    if pillar.get("nodes"):
        want.append("kubernetes-rotate-done")
        assert steps["kubernetes-rotate-done"]["name"] == "kubesalt_pki.distributed"
        assert steps["kubernetes-rotate-done"]["arg"] == [["master-1", "master-0", "worker-0"]]
        assert steps["kubernetes-rotate-workers"]["tgt"] == "worker-0"
    else:
        want.insert(0, "kubernetes-rotate-issue")
        assert steps["kubernetes-rotate-workers"]["tgt"] == "worker-0,worker-1"
    assert order == want
    first, second = (f"kubernetes-rotate-master-{m}" for m in masters)
    assert steps[second]["require"] == [{"salt": first}]
    assert steps[first]["sls"] == ["kubernetes.pki", "kubernetes.etcd", "kubernetes.control-plane"]
    assert steps["kubernetes-rotate-workers"]["sls"] == ["kubernetes.pki", "kubernetes.worker"]


def test_orchestrations_name_loaded_runners(loaded):
    """Runners called from Jinja (saltutil.runner) exist on the master."""
    for path in [*(SALT_DIR / "orch").rglob("*.sls"), *(SALT_DIR / "reactor").glob("*.sls")]:
        for runner in re.findall(r"saltutil\.runner'\]\('([\w.]+)'", path.read_text()):
            assert runner in loaded["runners"], f"{path.name}: runner {runner} is not loaded"


def test_add_node_unless_converged_asks_the_status_store(master):
    status = subprocess.run([str(kubesalt_bin()), "status", "show", "--help"], capture_output=True, check=False)
    if status.returncode != 0:
        pytest.skip("this kubesalt binary has no `status show` (the saltext branch adds it)")
    out = master.run(
        "state.orchestrate_show_sls",
        "orch.kubernetes.add_node",
        'pillar={"node": "worker-3", "unless_converged": true}',
    )
    rendered = next(iter(out.values()))
    # An empty status store knows no node: nothing to do for a stranger.
    assert list(rendered) == ["kubernetes-add-node-skipped"], rendered


def planned_master(base):
    """A master whose plan is pillar.example's and whose status store is empty."""
    plan = ["cidr", "plan", "--definition", str(REPO / "pillar.example"), "--plan", str(base / "plan.json")]
    subprocess.run([str(kubesalt_bin()), *plan], capture_output=True, check=True)
    return Master(base)


def record_good_run(base):
    """master-0's successful state run in the status store: the cluster is built."""
    good_run = {
        "id": "master-0",
        "fun": "state.apply",
        "jid": "20261130120000000001",
        "success": True,
        "_stamp": "2026-11-30T12:00:00.000000",
        "return": {"test_|-ok_|-ok_|-succeed_without_changes": {"name": "ok", "result": True, "changes": {}}},
    }
    subprocess.run(
        [str(kubesalt_bin()), "status", "record", "--db", str(base / "status.db")],
        input=json.dumps(good_run),
        text=True,
        capture_output=True,
        check=True,
    )


def test_add_node_unless_converged_leaves_a_cluster_not_built_to_the_bootstrap(tmp_path_factory):
    base = tmp_path_factory.mktemp("unbuilt")
    master = planned_master(base)

    def add_node():
        out = master.run(
            "state.orchestrate_show_sls",
            "orch.kubernetes.add_node",
            'pillar={"node": "worker-0", "unless_converged": true}',
        )
        return next(iter(out.values()))

    # Every minion of a new cluster starts before the bootstrap: none gets add_node.
    rendered = add_node()
    assert list(rendered) == ["kubernetes-add-node-skipped"], rendered
    assert "orch.kubernetes.bootstrap" in json.dumps(rendered), rendered

    # Once a node has run a state the cluster is built: a node that has not converged is added.
    record_good_run(base)
    rendered = add_node()
    assert "kubernetes-add-node-up" in rendered, rendered


def test_minion_start_reactor_asks_before_it_orchestrates(tmp_path_factory):
    """The minion-start reactor, rendered on a master: it asks `kubesalt
    status add-needed` and starts no orchestration for a minion of a
    cluster not built yet, nor for a stranger; once a node has run a
    state, a node that has not converged gets add_node."""
    base = tmp_path_factory.mktemp("reactor")
    master = planned_master(base)

    def react(minion):
        out = master.run(
            "salt.cmd",
            "slsutil.renderer",
            "path=salt://reactor/minion-start.sls",
            "default_renderer=jinja|yaml",
            "tag=salt/minion/" + minion + "/start",
            "data=" + json.dumps({"id": minion}),
        )
        assert isinstance(out, dict), out
        return out

    assert react("worker-0") == {}
    record_good_run(base)
    assert react("web-1") == {}
    reaction = react("worker-0")
    assert list(reaction) == ["kubesalt-converge-worker-0"]
    ((fun, args),) = reaction["kubesalt-converge-worker-0"].items()
    kw = {k: v for a in args[0]["args"] for k, v in a.items()}
    assert fun == "runner.state.orchestrate" and sls_exists(kw["mods"]), reaction
    assert kw["pillar"] == {"node": "worker-0", "unless_converged": True}


@pytest.mark.parametrize("reactor,tag,data,node", REACTIONS)
def test_reactor_renders_an_existing_orchestration(loaded, reactor, tag, data, node):
    out = loaded["minion"].call(
        "slsutil.renderer",
        f"path=salt://reactor/{reactor}",
        "default_renderer=jinja|yaml",
        "tag=" + tag,
        "data=" + json.dumps(data),
    )
    assert isinstance(out, dict) and out, out
    for sid, body in out.items():
        ((fun, args),) = body.items()
        assert fun == "runner.state.orchestrate", sid
        assert "state.orchestrate" in loaded["runners"]
        kw = {k: v for a in args[0]["args"] for k, v in a.items()}
        assert sls_exists(kw["mods"]), kw
        if node:
            assert kw["pillar"]["node"] == node
        if tag == "kubesalt/pki/rotate":
            assert kw["pillar"] == {"nodes": ["worker-0"], "sender": "salt"}


def test_master_config_snippet(loaded):
    conf = yaml.safe_load((SALT_DIR / "master.d" / "kubesalt.conf").read_text())
    assert conf["ext_pillar"] == [{"kubesalt": conf["ext_pillar"][0]["kubesalt"]}]
    assert conf["event_return"] == "kubesalt" and "kubesalt" in loaded["returners"]
    tags = {next(iter(r)): next(iter(r.values())) for r in conf["reactor"]}
    assert set(tags) == {
        "salt/cloud/*/created",
        "kubesalt/virt/*/created",
        "salt/minion/*/start",
        "kubesalt/pillar/changed",
        "kubesalt/pki/rotate",
    }
    for files in tags.values():
        for f in files:
            assert (SALT_DIR / "reactor" / Path(f).name).is_file(), f
    # The formula's own states exist in the minion's loader.
    for fun in ("kubesalt_net.routes_synced", "kubesalt_pki.certificates_issued"):
        assert fun in loaded["states"], f"{fun} not loaded: install saltext-kubesalt into the venv"


def upgrade_states(version, workers=2, **changed):
    """What every node runs, as `kubesalt upgrade node` reports it (the
    upgrade orchestration's pillar upgrade_states, instead of asking)."""
    nodes = [
        {"name": f"master-{i}", "role": "master", "version": version, "reachable": True, "etcd_healthy": True}
        for i in range(3)
    ]
    nodes += [{"name": f"worker-{i}", "role": "worker", "version": version, "reachable": True} for i in range(workers)]
    for n in nodes:
        n.update(changed.get(n["name"], {}))
    return nodes


def upgrade_pillar(states, target="v1.36.3", batch=1):
    return {
        "upgrade_states": states,
        "kubernetes": {
            "versions": {"kubernetes": target},
            "upgrade": {"worker_batch": batch},
            "nodes": {n["name"]: {"role": n["role"]} for n in states},
        },
    }


def upgrade_steps(rendered):
    """The rendered states in order: (id, function, keywords)."""
    out = []
    for sid in sorted(rendered, key=lambda s: state_order(rendered[s])):
        ((mod, args),) = ((k, v) for k, v in rendered[sid].items() if not k.startswith("__"))
        fun = next(a for a in args if isinstance(a, str))
        out.append((sid, f"{mod}.{fun}", {k: v for a in args if isinstance(a, dict) for k, v in a.items()}))
    return out


def test_upgrade_orchestration_order(master, loaded):
    """The masters one at a time after a snapshot, then the workers in
    batches: drain, new binaries and daemons stopped, started, wait for
    the version and readiness, uncordon; every step failhard; a node at the
    target (master-0) skipped."""
    states = upgrade_states("v1.35.4", workers=3, **{"master-0": {"version": "v1.36.3"}})
    out = master.run(
        "state.orchestrate_show_sls", "orch.kubernetes.upgrade", "pillar=" + json.dumps(upgrade_pillar(states, batch=2))
    )
    rendered = next(iter(out.values()))
    problems = []
    check_names(rendered, loaded, problems)
    assert not problems, problems
    steps = upgrade_steps(rendered)
    ids = [s[0] for s in steps]
    assert ids[0] == "kubernetes-upgrade-preflight" and "1 node(s) already done" in steps[0][2]["comment"]
    assert ids[1] == "kubernetes-upgrade 1/5 etcd snapshot: etcd snapshot"
    assert [i for i in ids if "master-0" in i] == []
    masters = [i for i in ids if " master master-" in i]
    assert masters == [
        "kubernetes-upgrade 2/5 master master-1: new binaries, daemons stopped",
        "kubernetes-upgrade 2/5 master master-1: started",
        "kubernetes-upgrade 2/5 master master-1: wait for v1.36.3 and ready",
        "kubernetes-upgrade 3/5 master master-2: new binaries, daemons stopped",
        "kubernetes-upgrade 3/5 master master-2: started",
        "kubernetes-upgrade 3/5 master master-2: wait for v1.36.3 and ready",
    ]
    batch = [i for i in ids if "workers 1/2" in i]
    assert [i.split(": ")[1] for i in batch] == [
        "drain",
        "new binaries, daemons stopped",
        "started",
        "wait for v1.36.3 and ready",
        "uncordon",
    ]
    assert ids[-1] == "kubernetes-upgrade 5/5 workers 2/2 (worker-2): uncordon"
    kw = {s[0]: s[2] for s in steps}
    drain = kw["kubernetes-upgrade 4/5 workers 1/2 (worker-0, worker-1): drain"]
    assert drain["tgt"] == "master-0" and drain["pillar"] == {
        "upgrade_step": {"action": "drain", "nodes": ["worker-0", "worker-1"]}
    }
    started = kw["kubernetes-upgrade 2/5 master master-1: started"]
    assert started["sls"] == ["kubernetes.etcd", "kubernetes.control-plane"] and started["tgt"] == "master-1"
    assert kw["kubernetes-upgrade 4/5 workers 1/2 (worker-0, worker-1): started"]["sls"] == ["kubernetes.worker"]
    wait = kw["kubernetes-upgrade 5/5 workers 2/2 (worker-2): wait for v1.36.3 and ready"]
    assert wait["name"] == "kubesalt_upgrade.node" and wait["kwarg"] == {"target": "v1.36.3", "wait": 300}
    assert all(s[2].get("failhard") for s in steps[1:]), [s[0] for s in steps if not s[2].get("failhard")]


@pytest.mark.parametrize(
    "states,target,says",
    [
        (upgrade_states("v1.34.2"), "v1.36.3", "skips v1.35"),
        (upgrade_states("v1.36.3"), "v1.35.4", "does not support downgrades"),
        (
            upgrade_states("v1.35.4", **{"worker-1": {"version": "v1.36.3"}}),
            "v1.36.3",
            "newer than the control plane",
        ),
        (
            upgrade_states("v1.35.4", **{"worker-0": {"reachable": False}}),
            "v1.36.3",
            "worker-0 (worker) does not answer",
        ),
        (
            upgrade_states("v1.35.4", **{"master-1": {"etcd_healthy": False}}),
            "v1.36.3",
            "etcd on master-1 is not healthy",
        ),
    ],
)
def test_upgrade_orchestration_refuses(master, states, target, says):
    """A refused preflight is the only state: it fails, says why, and
    stops the run before anything changes."""
    out = master.run(
        "state.orchestrate_show_sls", "orch.kubernetes.upgrade", "pillar=" + json.dumps(upgrade_pillar(states, target))
    )
    rendered = next(iter(out.values()))
    assert list(rendered) == ["kubernetes-upgrade-preflight"], rendered
    ((_, _, kw),) = upgrade_steps(rendered)
    assert says in kw["comment"] and kw["failhard"] is True, kw


def test_upgrade_orchestration_test_mode_prints_the_plan(master):
    """test=True: the plan, step by step, and nothing run on a minion."""
    out = master.run(
        "state.orchestrate",
        "orch.kubernetes.upgrade",
        "test=True",
        "pillar=" + json.dumps(upgrade_pillar(upgrade_states("v1.35.4", workers=1))),
    )
    assert out["retcode"] == 0, out
    states = sorted(next(iter(out["data"].values())).values(), key=lambda s: s["__run_num__"])
    assert all(s["result"] is True and not s["changes"] for s in states), states
    assert "upgrade from v1.35.4 to v1.36.3: etcd snapshot, 3 master(s) one at a time" in states[0]["comment"]
    assert "drain (PodDisruptionBudgets respected, 5m)" in states[-1]["comment"]
    assert [s["__id__"] for s in states] == [
        "kubernetes-upgrade-plan",
        "kubernetes-upgrade 1/5 etcd snapshot",
        "kubernetes-upgrade 2/5 master master-0",
        "kubernetes-upgrade 3/5 master master-1",
        "kubernetes-upgrade 4/5 master master-2",
        "kubernetes-upgrade 5/5 workers 1/1 (worker-0)",
    ]


def test_upgrade_nothing_to_do(master):
    out = master.run(
        "state.orchestrate_show_sls",
        "orch.kubernetes.upgrade",
        "pillar=" + json.dumps(upgrade_pillar(upgrade_states("v1.36.3"))),
    )
    rendered = next(iter(out.values()))
    assert list(rendered) == ["kubernetes-upgrade-plan"], rendered
    assert "nothing to upgrade" in upgrade_steps(rendered)[0][2]["comment"]


def test_pillar_changed_upgrades_first(master):
    """A changed versions:kubernetes is upgraded in order before the steps
    that install the pillar's binaries (the load balancer's state includes
    kubernetes.binaries)."""
    out = master.run("state.orchestrate_show_sls", "orch.kubernetes.pillar_changed")
    rendered = next(iter(out.values()))
    step = rendered["kubernetes-pillar-changed-upgrade"]["salt"]
    assert "runner" in step and {"name": "state.orchestrate"} in step and {"mods": "orch.kubernetes.upgrade"} in step
    for later in ("kubernetes-pillar-changed-routes", "kubernetes-pillar-changed-etcd-members"):
        assert {"require": [{"salt": "kubernetes-pillar-changed-upgrade"}]} in rendered[later]["salt"], later
