"""
Pod CIDR planning, route reconciliation, node discovery and the nodes' pod
CIDRs in the API: ``kubesalt cidr``, ``kubesalt routes`` and ``kubesalt nodes``. Each function returns the
binary's JSON result ``{"result", "changes", "comment", "data"}``.

Options: ``kubesalt.bin_dir`` (default /usr/local/bin), ``kubesalt.timeout``,
``kubesalt.plan_file``, ``kubesalt.rt_protos_dir`` (where ``routes sync``
registers the protocol's name for ``ip route``; unset: the binary's default.
The formula registers it itself, in ``paths:rt_protos_conf``).
"""

import salt.pillar

import saltext.kubesalt.utils.binary as kb

__virtualname__ = "kubesalt_net"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT) or kb.netlink_missing()
    if reason:
        return False, f"kubesalt_net: {reason}"
    return __virtualname__


def _run(args, stdin=None):
    return kb.run(__opts__, kb.KUBESALT, args, stdin)


def plan(definition=None, plan_file=None, test=None):
    """
    Plan every node's pod CIDR(s), keeping earlier assignments.

    definition
        The cluster definition: a file, the data, or (default) this
        minion's ``kubernetes`` pillar.
    plan_file
        The plan kept between runs (default ``kubesalt.plan_file``).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_net.plan test=True
    """
    args, stdin = kb.definition_input(definition, __pillar__)
    plan_file = plan_file or kb.option(__opts__, "plan_file", kb.DEFAULT_PLAN_FILE)
    return _run(
        ["cidr", "plan", *args, "--plan", plan_file, *kb.flags(test=kb.test_mode(__opts__, test))], stdin
    )


def _fresh_pillar():
    # Compiled anew by the master, as pillar.items does (but not masked):
    # a node added a moment ago is in it, without a pillar refresh first.
    return salt.pillar.get_pillar(
        __opts__, dict(__grains__), __opts__["id"], pillarenv=__opts__.get("pillarenv")
    ).compile_pillar()


def _routes_args(nodes, self_name, netns, protocol, table, pillar=None):
    pillar = __pillar__ if pillar is None else pillar
    args, stdin = kb.nodes_input(nodes, pillar)
    if self_name is None:
        # The ext_pillar names this minion's node; without it the binary
        # takes the node whose IP is local.
        self_name = (pillar.get("kubesalt") or {}).get("node")
    return args + kb.flags(self=self_name, netns=netns, protocol=protocol, table=table), stdin


def routes_sync(
    nodes=None,
    self_name=None,
    netns=None,
    adopt=False,
    test=None,
    protocol=None,
    table=None,
    record=None,
    fresh_pillar=False,
    revision=None,
):
    """
    Program a route to every other node's pod CIDR(s) and remove stale ones.

    nodes
        The node list: a file, the list, or (default) ``kubesalt:nodes``
        from the kubesalt ext_pillar.
    self_name
        This node's name (default ``kubesalt:node`` from pillar, else the
        node whose IP is local). Its own CIDR is never routed.
    netns
        Program the routes inside this network namespace.
    adopt
        Take over foreign routes to the same destinations instead of
        reporting them as conflicts.
    record
        Keep the node list and options of an applied sync in this file, from
        which ``kubesalt routes watch`` heals the routes between state runs.
    fresh_pillar
        Take the node list from a pillar the master compiles for this call,
        not the minion's loaded one: a node added to the definition is
        routed without a pillar refresh of every minion first.
    revision
        The plan revision of the node list (default: ``kubesalt:revision``
        of the pillar it comes from). With ``record``, a sync of an older
        revision than the record's changes nothing: a state run whose
        pillar was compiled before a node was added does not take its
        routes away again.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_net.routes_sync test=True
    """
    pillar = _fresh_pillar() if fresh_pillar and nodes is None else None
    args, stdin = _routes_args(nodes, self_name, netns, protocol, table, pillar)
    if revision is None and nodes is None:
        revision = ((__pillar__ if pillar is None else pillar).get("kubesalt") or {}).get("revision")
    args += kb.flags(
        adopt=bool(adopt),
        test=kb.test_mode(__opts__, test),
        rt_protos_dir=kb.option(__opts__, "rt_protos_dir"),
        record=record,
        revision=int(revision) if revision and record else None,
    )
    return _run(["routes", "sync", *args], stdin)


def routes_diff(nodes=None, self_name=None, netns=None, adopt=False, protocol=None, table=None):
    """
    What routes_sync would change; applies nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_net.routes_diff
    """
    args, stdin = _routes_args(nodes, self_name, netns, protocol, table)
    return _run(["routes", "diff", *args, *kb.flags(adopt=bool(adopt))], stdin)


def routes_list(netns=None, protocol=None, table=None):
    """
    The routes kubesalt owns (``data.routes``).

    CLI Example:

    .. code-block:: bash

        salt '*' kubesalt_net.routes_list
    """
    return _run(["routes", "list", *kb.flags(netns=netns, protocol=protocol, table=table)])


def routes_flush(netns=None, test=None):
    """
    Remove every route kubesalt owns.

    CLI Example:

    .. code-block:: bash

        salt worker-3 kubesalt_net.routes_flush
    """
    return _run(["routes", "flush", *kb.flags(netns=netns, test=kb.test_mode(__opts__, test))])


def discover(file=None, kubectl=None, kubeconfig=None):
    """
    Nodes and pod CIDRs as Kubernetes sees them (``kubectl get nodes -o
    json``, run by the binary, or read from ``file``).

    CLI Example:

    .. code-block:: bash

        salt master-0 kubesalt_net.discover kubeconfig=/etc/kubernetes/admin.kubeconfig
    """
    return _run(["nodes", "discover", *kb.flags(file=file, kubectl=kubectl, kubeconfig=kubeconfig)])


def set_cidrs(kubeconfig, nodes=None, test=None, timeout=None, if_api_ready=False):
    """
    Set each registered node's empty ``Node.spec.podCIDRs`` to the plan. A
    node whose CIDRs differ is reported (result False), never changed; a
    planned node not registered yet is listed in ``data.waiting``.

    kubeconfig
        A kubeconfig that may patch nodes (the admin kubeconfig).
    nodes
        The planned node list: a file, the list, or (default)
        ``kubesalt:nodes`` from the kubesalt ext_pillar.
    timeout
        How long the binary may take, as a Go duration (default 30s).
    if_api_ready
        True: while the kubeconfig is not written or the API server is not
        ready, succeed doing nothing (a later run sets them).

    CLI Example:

    .. code-block:: bash

        salt master-0 kubesalt_net.set_cidrs /var/lib/kubesalt/pki/admin.kubeconfig test=True
    """
    args, stdin = kb.nodes_input(nodes, __pillar__)
    args += kb.flags(
        kubeconfig=kubeconfig, timeout=timeout, test=kb.test_mode(__opts__, test), if_api_ready=if_api_ready
    )
    return _run(["nodes", "set-cidrs", *args], stdin)
