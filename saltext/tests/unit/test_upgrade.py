"""
kubesalt_upgrade.node: the command line it builds from the formula's
paths (under kubesalt_root) and the ext_pillar's node and role.
"""

import pytest

import saltext.kubesalt.modules.kubesalt_upgrade as upgrade
import saltext.kubesalt.utils.binary as kb

PILLAR = {
    "kubesalt": {"node": "master-1", "role": "master"},
    "kubernetes": {"api": {"port": 6443}, "paths": {"root": "/srv/{node}"}},
}


@pytest.fixture
def configure_loader_modules():
    return {
        upgrade: {
            "__opts__": {"test": False},
            "__grains__": {"id": "m1"},
            "__pillar__": PILLAR,
            # What Salt 3008's pillar.get returns to an execution module.
            "__salt__": {
                "pillar.get": lambda key, default=None: "**********",
                "config.get": lambda key, default=None: default,
            },
        }
    }


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def run(opts, binary, args, stdin=None, timeout=None):
        seen.append((list(args), timeout))
        return {"result": True, "changes": {}, "comment": "", "data": {}}

    monkeypatch.setattr(kb, "run", run)
    return seen


def test_master_asks_the_api_server_beside_it_and_its_etcd(calls):
    upgrade.node()
    args, timeout = calls[0]
    pki = "/srv/master-1/etc/kubernetes/pki"
    assert args == [
        "upgrade", "node", "--node", "master-1", "--role", "master",
        "--kubeconfig", pki + "/admin.kubeconfig", "--server", "https://127.0.0.1:6443",
        "--etcdctl", "/srv/master-1/usr/local/bin/etcdctl", "--etcd-endpoint", "https://127.0.0.1:2379",
        "--cacert", pki + "/ca.pem", "--etcd-cert", pki + "/etcd-server.pem",
        "--etcd-key", pki + "/etcd-server-key.pem",
    ]  # fmt: skip
    assert timeout is None


def test_worker_waits_for_the_target(calls):
    upgrade.node(target="v1.36.3", wait=300, name="worker-0", role="worker")
    args, timeout = calls[0]
    assert args == [
        "upgrade", "node", "--node", "worker-0", "--role", "worker",
        "--kubeconfig", "/srv/worker-0/etc/kubernetes/pki/kubelet.kubeconfig",
        "--target", "v1.36.3", "--wait", "300s",
    ]  # fmt: skip
    # The binary's own wait ends first, so its answer says what is wrong.
    assert timeout == 360
