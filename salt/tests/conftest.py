"""Fixtures for the formula tests: a masterless minion whose file_roots are
this repository's salt/ and whose pillar is pillar.example plus, per node,
what the kubesalt ext_pillar gives it, made by the real binary (`kubesalt
cidr plan` and `kubesalt pki issue|bundle`)."""

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SALT_DIR = REPO / "salt"
PILLAR_EXAMPLE = REPO / "pillar.example"
# The formula's SLS files, each rendered on its own.
FORMULA_SLS = [
    "kubernetes",
    "kubernetes.binaries",
    "kubernetes.pki",
    "kubernetes.load-balancer",
    "kubernetes.vip",
    "kubernetes.etcd",
    "kubernetes.etcd-members",
    "kubernetes.control-plane",
    "kubernetes.worker",
    "kubernetes.network",
    "kubernetes.dns",
]


# Where kubesalt writes by default. Every test points its paths at its own
# temp dirs; one that used a default would change the host (and hide bugs
# that need these files, as a registered protocol name once hid one).
HOST_PATHS = (
    "/etc/iproute2/rt_protos.d/kubesalt.conf",
    "/var/lib/kubesalt",
    "/etc/kubernetes",
    "/etc/sysctl.d/90-kubesalt.conf",
    "/etc/cni/net.d/10-kubesalt-bridge.conflist",
)


def _host_state():
    state = {}
    for p in HOST_PATHS:
        try:
            st = os.stat(p)
            state[p] = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            state[p] = None
    return state


@pytest.fixture(scope="session", autouse=True)
def host_untouched():
    """The host's own kubesalt paths are as the tests found them."""
    before = _host_state()
    yield
    after = _host_state()
    changed = [p for p in HOST_PATHS if before[p] != after[p]]
    assert not changed, f"the tests changed the host's {changed}: a path was not under a temp dir"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "root: needs root (network namespaces, daemons); skipped without it, deselect with -m 'not root'"
    )
    config.addinivalue_line(
        "markers", "render: renders only (show_sls, salt-run), writes only its temp dirs: the fast tier, -m render"
    )


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and daemons (make test-formula runs as root)")


def kubesalt_bin():
    path = Path(os.environ.get("KUBESALT_BIN", REPO / "bin" / "kubesalt"))
    if not path.exists():
        pytest.skip(f"{path} is missing: run `make build` (make test does)")
    return path


def salt_call_bin():
    path = Path(sys.executable).parent / "salt-call"
    if not path.exists():
        pytest.skip("salt-call is not in this Python's environment: run the tests through `make test` (the venv)")
    return path


def run_kubesalt(*args, stdin=None):
    out = subprocess.run([str(kubesalt_bin()), *args], input=stdin, capture_output=True, text=True, check=False)
    if out.returncode not in (0,):
        raise AssertionError(f"kubesalt {' '.join(args)} exited {out.returncode}: {out.stderr}{out.stdout}")
    return json.loads(out.stdout)


def example_pillar():
    return yaml.safe_load(PILLAR_EXAMPLE.read_text())


def dual_stack(pillar):
    """pillar.example with an IPv6 pod, service and node network beside IPv4."""
    p = copy.deepcopy(pillar)
    net = p["kubernetes"]["network"]
    net["node_cidr"] = [net["node_cidr"], "fd00:170::/64"]
    net["cluster_cidr"] = [net["cluster_cidr"], "fd00:10:200::/56"]
    net["service_cidr"] = [net["service_cidr"], "fd00:10:32::/112"]
    for i, (_name, node) in enumerate(sorted(p["kubernetes"]["nodes"].items())):
        node["ip"] = [node["ip"], f"fd00:170::{i + 10:x}"]
    return p


def controller_mode(pillar):
    p = copy.deepcopy(pillar)
    p["kubernetes"]["mode"] = "controller"
    return p


def single_master(pillar):
    p = copy.deepcopy(pillar)
    for name in ("master-1", "master-2"):
        del p["kubernetes"]["nodes"][name]
    return p


def with_vip(pillar):
    """pillar.example with its commented-out VIP set: keepalived on the masters."""
    p = copy.deepcopy(pillar)
    p["kubernetes"]["api"]["vip"] = "192.168.170.5"
    return p


VARIANTS = {
    "example": lambda p: p,
    "vip": with_vip,
    "dual-stack": dual_stack,
    "controller": controller_mode,
    "single-master": single_master,
}


class Cluster:
    """A pillar tree for every node of one definition, and a minion config
    per node that renders the formula masterless."""

    def __init__(self, base: Path, pillar: dict):
        self.base = base
        self.definition = base / "definition.yaml"
        self.pki_dir = base / "pki"
        self.pillar_dir = base / "pillar"
        self.pillar_dir.mkdir()
        self.minions = {}
        self.define(pillar)

    def define(self, pillar: dict):
        """(Re)define the cluster as the master would: plan (earlier CIDRs
        kept), issue (certificates kept unless their subject changed), and
        give every node its ext_pillar share."""
        self.pillar = pillar
        self.definition.write_text(yaml.safe_dump(pillar))
        self.plan = run_kubesalt(
            "cidr", "plan", "--definition", str(self.definition), "--plan", str(self.base / "plan.json")
        )
        run_kubesalt("pki", "issue", "--definition", str(self.definition), "--dir", str(self.pki_dir))
        self.nodes = {n["name"]: n for n in self.plan["data"]["nodes"]}
        (self.pillar_dir / "cluster.sls").write_text(yaml.safe_dump(pillar))
        top = {"base": {"*": ["cluster"]}}
        for name, node in self.nodes.items():
            bundle = run_kubesalt(
                "pki", "bundle", "--node", name, "--dir", str(self.pki_dir), "--definition", str(self.definition)
            )
            # What the kubesalt ext_pillar gives this minion.
            ext = {
                "kubesalt": {
                    "node": name,
                    "role": node["role"],
                    "pod_cidrs": node["pod_cidrs"],
                    "nodes": self.plan["data"]["nodes"],
                    "cluster": self.plan["data"]["cluster"],
                    "pki": {"files": bundle["data"]["files"]},
                }
            }
            sls = "node_" + name.replace("-", "_")
            (self.pillar_dir / f"{sls}.sls").write_text(json.dumps(ext))
            top["base"][name] = [sls]
        (self.pillar_dir / "top.sls").write_text(yaml.safe_dump(top))

    def minion(self, label: str, extra: dict | None = None) -> "Minion":
        """A minion config called label (its id is label unless extra sets
        one), made once per cluster."""
        if label not in self.minions:
            self.minions[label] = Minion(self, label, extra or {})
        return self.minions[label]


class Minion:
    def __init__(self, cluster: Cluster, node: str, extra: dict):
        self.cluster = cluster
        self.node = node
        self.root = cluster.base / "root" / node
        conf = cluster.base / "conf" / node
        conf.mkdir(parents=True)
        opts = {
            "id": node,
            "file_client": "local",
            "file_roots": {"base": [str(SALT_DIR)]},
            "pillar_roots": {"base": [str(cluster.pillar_dir)]},
            "root_dir": str(cluster.base / "saltroot" / node),
            "cachedir": str(cluster.base / "cache" / node),
            "pki_dir": str(conf / "pki"),
            "log_file": str(conf / "minion.log"),
            "log_level_logfile": "info",
            # Every path the formula writes goes under this node's tree,
            # and the binary registers no protocol name in the host's /etc.
            "kubesalt_root": str(self.root),
            "kubesalt.rt_protos_dir": str(self.root.parent / f"{node}.rt_protos.d"),
            "grains": {},
        }
        opts.update(extra)
        (conf / "minion").write_text(yaml.safe_dump(opts))
        self.conf = conf

    def set_option(self, key, value):
        path = self.conf / "minion"
        opts = yaml.safe_load(path.read_text())
        opts[key] = value
        path.write_text(yaml.safe_dump(opts))

    def salt_call_cmd(self, *args):
        return [str(salt_call_bin()), "--local", "-c", str(self.conf), "--out", "json", "--retcode-passthrough", *args]

    def call(self, *args, check=True):
        out = subprocess.run(self.salt_call_cmd(*args), capture_output=True, text=True, check=False, timeout=300)
        try:
            data = json.loads(out.stdout)["local"] if out.stdout.strip() else None
        except json.JSONDecodeError:
            data = None
        if check and (data is None or out.returncode not in (0, 2)):
            raise AssertionError(
                f"salt-call {' '.join(args)} exited {out.returncode}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
            )
        return data

    def show_sls(self, *sls):
        return self.call("state.show_sls", ",".join(sls))


def default_versions() -> dict:
    """The formula's versions: (defaults.yaml)."""
    defaults = yaml.safe_load((SALT_DIR / "kubernetes" / "defaults.yaml").read_text())
    return defaults["kubernetes"]["versions"]


def local_etcd(binaries: Path) -> Path:
    """Where local mode takes etcd and etcdctl from (etcd/<versions:etcd>/)."""
    return binaries / "etcd" / default_versions()["etcd"]


def local_binaries(directory: Path) -> Path:
    """A binaries:local_dir as the lab has one: kubesalt, etcd under
    etcd/<versions:etcd>/ where local mode looks for it (`make etcd`'s, else
    Debian's where it is installed), CNI plugins when installed; no
    Kubernetes binaries (their daemons are then skipped)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kubesalt").symlink_to(kubesalt_bin())
    etcd_dir = local_etcd(directory)
    built = REPO / "bin" / "etcd" / default_versions()["etcd"]
    for name in ("etcd", "etcdctl", "etcdutl"):
        found = str(built / name) if (built / name).exists() else shutil.which(name)
        if found:
            etcd_dir.mkdir(parents=True, exist_ok=True)
            (etcd_dir / name).symlink_to(found)
    cni = Path("/usr/lib/cni")
    if cni.is_dir():
        (directory / "cni").mkdir()
        for plugin in cni.iterdir():
            (directory / "cni" / plugin.name).symlink_to(plugin)
    return directory


def stop_daemon(pidfile: Path):
    """Stop a daemon the formula started (manager process) and wait for it."""
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def pillar_override(**kubernetes) -> str:
    """A pillar= argument for salt-call, merged over the node's pillar."""
    return "pillar=" + json.dumps({"kubernetes": kubernetes})


@pytest.fixture(scope="session")
def make_cluster(tmp_path_factory):
    made = {}

    def make(variant: str, fresh: bool = False) -> Cluster:
        """The cluster of a variant, shared by the tests; fresh = one of its
        own (a test that changes the definition)."""
        if fresh:
            key = f"{variant}-{len(made)}"
            made[key] = Cluster(tmp_path_factory.mktemp(f"cluster-{variant}"), VARIANTS[variant](example_pillar()))
            return made[key]
        if variant not in made:
            base = tmp_path_factory.mktemp(f"cluster-{variant}")
            made[variant] = Cluster(base, VARIANTS[variant](example_pillar()))
        return made[variant]

    yield make
    for c in made.values():
        shutil.rmtree(c.base, ignore_errors=True)
