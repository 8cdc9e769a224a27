"""
The cluster's add-ons (the cluster DNS, CoreDNS) through the API:
``kubesalt addons``. Each function returns the binary's JSON result
``{"result", "changes", "comment", "data"}``.

Options: ``kubesalt.bin_dir`` (default /usr/local/bin), ``kubesalt.timeout``.
"""

import saltext.kubesalt.utils.binary as kb

__virtualname__ = "kubesalt_addons"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_addons: {reason}"
    return __virtualname__


def _run(args, stdin=None):
    return kb.run(__opts__, kb.KUBESALT, args, stdin)


def apply(kubeconfig, definition=None, kubectl=None, test=None, timeout=None, if_api_ready=False):
    """
    Apply the add-ons the definition enables (kubernetes:dns), server side:
    ``kubectl diff`` first, and nothing applied when nothing differs.

    kubeconfig
        The admin kubeconfig.
    definition
        The cluster definition: a file, the data, or (default) this
        minion's ``kubernetes`` pillar.
    kubectl
        The kubectl to run (default: kubectl on PATH).
    timeout
        How long each kubectl may take, as a Go duration (default 60s).
    if_api_ready
        True: while the kubeconfig is not written or the API server is not
        ready, succeed doing nothing (a later run applies them).

    CLI Example:

    .. code-block:: bash

        salt master-0 kubesalt_addons.apply /etc/kubernetes/pki/admin.kubeconfig test=True
    """
    args, stdin = kb.definition_input(definition, __pillar__)
    args += kb.flags(
        kubectl=kubectl,
        kubeconfig=kubeconfig,
        timeout=timeout,
        test=kb.test_mode(__opts__, test),
        if_api_ready=if_api_ready,
    )
    return _run(["addons", "apply", *args], stdin)
