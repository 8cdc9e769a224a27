"""
A Kubernetes upgrade, on one node: what its components run (``kubesalt
upgrade node``). ``orch.kubernetes.upgrade`` asks every node through the
runner ``kubesalt.upgrade_plan`` (the preflight), and waits on each node
upgraded until it runs the target and is ready.

The paths default to the formula's (``kubernetes:paths``, under the
minion option ``kubesalt_root``); the node and role to the ext_pillar's
``kubesalt:node`` and ``kubesalt:role``.

Options: ``kubesalt.bin_dir``, ``kubesalt.timeout``.
"""

import salt.utils.data

import saltext.kubesalt.utils.binary as kb

__virtualname__ = "kubesalt_upgrade"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_upgrade: {reason}"
    return __virtualname__


def _pillar(key, default):
    # From __pillar__, not pillar.get: Salt 3008 masks pillar.get's values
    # ("**********") when an execution module calls it.
    return salt.utils.data.traverse_dict_and_list(__pillar__, key, default, ":")


def node(
    target=None,
    wait=None,
    name=None,
    role=None,
    kubeconfig=None,
    server=None,
    pki_dir=None,
    etcdctl=None,
    etcd_endpoint=None,
    proxy_metrics=None,
    timeout=None,
):
    """
    The versions this node's Kubernetes components run (a master's API
    server, a worker's kubelet and kube-proxy), whether they are ready,
    and a master's etcd health. With ``target`` and ``wait`` (a Go
    duration): wait until it runs ``target`` and is ready; fails when it
    does not within ``wait``, naming what is still wrong.

    CLI Example:

    .. code-block:: bash

        salt 'worker-*' kubesalt_upgrade.node
        salt worker-0 kubesalt_upgrade.node target=v1.36.3 wait=300
    """
    xp = __pillar__.get("kubesalt") or {}
    name = name or xp.get("node") or __grains__["id"]
    role = role or xp.get("role") or _pillar(f"kubernetes:nodes:{name}:role", "")
    root = (__salt__["config.get"]("kubesalt_root", "") or _pillar("kubernetes:paths:root", "")).replace(
        "{node}", name
    )
    pki = pki_dir or root + _pillar("kubernetes:paths:pki_dir", "/etc/kubernetes/pki")
    args = ["upgrade", "node", "--node", name, "--role", role]
    if role == "master":
        args += kb.flags(
            kubeconfig=kubeconfig or pki + "/admin.kubeconfig",
            # The API server beside it, not the VIP's.
            server=server or "https://127.0.0.1:{}".format(_pillar("kubernetes:api:port", 6443)),
            etcdctl=etcdctl or root + _pillar("kubernetes:paths:bin_dir", "/usr/local/bin") + "/etcdctl",
            etcd_endpoint=etcd_endpoint
            or "https://127.0.0.1:{}".format(_pillar("kubernetes:etcd:client_port", 2379)),
            cacert=pki + "/ca.pem",
            etcd_cert=pki + "/etcd-server.pem",
            etcd_key=pki + "/etcd-server-key.pem",
        )
    else:
        args += kb.flags(
            kubeconfig=kubeconfig or pki + "/kubelet.kubeconfig", server=server, proxy_metrics=proxy_metrics
        )
    wait = int(wait or 0)
    args += kb.flags(target=target, wait=f"{wait}s" if wait else None, timeout=timeout)
    return kb.run(__opts__, kb.KUBESALT, args, timeout=wait + 60 if wait else None)
