"""
Routes to every other node's pod CIDR, kept right by ``kubesalt routes sync``,
and the nodes' pod CIDRs in the API, set by ``kubesalt nodes set-cidrs``.

.. code-block:: yaml

    pod-routes:
      kubesalt_net.routes_synced: []

    node-pod-cidrs:
      kubesalt_net.node_cidrs_set:
        - kubeconfig: /var/lib/kubesalt/pki/admin.kubeconfig
"""

__virtualname__ = "kubesalt_net"

import saltext.kubesalt.utils.binary as kb  # noqa: E402
import saltext.kubesalt.utils.state as ks  # noqa: E402


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT) or kb.netlink_missing()
    if reason:
        return False, f"kubesalt_net: {reason}"
    return __virtualname__


def routes_synced(
    name,
    nodes=None,
    netns=None,
    adopt=False,
    self_name=None,
    protocol=None,
    table=None,
    record=None,
    revision=None,
):
    """
    Every other node's pod CIDR is routed via its host IP; stale kubesalt
    routes are gone; foreign routes to the same destinations are reported as
    conflicts (or taken over with ``adopt: True``).

    nodes
        The node list (a file or a list); default ``kubesalt:nodes``, the
        cluster's node list from the kubesalt ext_pillar. This minion's own
        node is excluded by the binary.
    netns
        Program the routes inside this network namespace.
    record
        Keep the node list in this file for ``kubesalt routes watch``.
    revision
        The plan revision of ``nodes`` (``kubesalt:revision``): when the
        record holds a newer one, this sync changes nothing.
    """
    test = bool(__opts__.get("test"))
    own = __pillar__.get("kubesalt") or {}
    ret = ks.call(
        name,
        "routes sync",
        test,
        __salt__["kubesalt_net.routes_sync"],
        nodes=nodes,
        self_name=self_name,
        netns=netns,
        adopt=adopt,
        test=test,
        protocol=protocol,
        table=table,
        record=record,
        revision=revision,
    )
    if "kubesalt" in ret:
        pods = own.get("pod_cidrs")
        # Plain values: Salt 3008 wraps pillar in masking containers.
        ret["kubesalt"].update(
            node=str(self_name or own.get("node") or ""),
            pod_cidrs=None if pods is None else [str(p) for p in pods],
        )
    return ret


def node_cidrs_set(name, kubeconfig, nodes=None, timeout=None, if_api_ready=False):
    """
    Every registered node's ``Node.spec.podCIDRs`` is the plan's: set once
    where empty; a node whose CIDRs differ fails the state with the fix,
    and is never changed. Nodes not registered yet are left for a later run.

    kubeconfig
        A kubeconfig that may patch nodes (the admin kubeconfig).
    nodes
        The planned node list (a file or a list); default ``kubesalt:nodes``
        from the kubesalt ext_pillar.
    timeout
        How long the binary may take, as a Go duration (default 30s).
    if_api_ready
        True: while the kubeconfig is not written or the API server is not
        ready, succeed doing nothing (a later run sets them). Cheaper than
        an onlyif, which makes Salt 3008 load every state module.
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "nodes set-cidrs",
        test,
        __salt__["kubesalt_net.set_cidrs"],
        kubeconfig=kubeconfig,
        nodes=nodes,
        test=test,
        timeout=timeout,
        if_api_ready=if_api_ready,
    )
