"""
The cluster's certificates: ``kubesalt pki``. Run on the CA host (the
master by default); the CA key never leaves it.

Options: ``kubesalt.bin_dir``, ``kubesalt.timeout``, ``kubesalt.pki_dir``
(default /var/lib/kubesalt/pki).
"""

import logging

import saltext.kubesalt.utils.binary as kb

log = logging.getLogger(__name__)

#: The event the master's reactor turns into orch.kubernetes.rotate.
ROTATE_TAG = "kubesalt/pki/rotate"

__virtualname__ = "kubesalt_pki"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_pki: {reason}"
    return __virtualname__


def _dir(pki_dir):
    return pki_dir or kb.option(__opts__, "pki_dir", kb.DEFAULT_PKI_DIR)


def issue(definition=None, pki_dir=None, renew_before=None, reissue=None, test=None):
    """
    Issue the CA and every certificate, kubeconfig and key the cluster
    needs; renew what expires within ``renew_before`` (e.g. 720h).

    reissue
        Names of certificates to issue again now (a list).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_pki.issue test=True
    """
    args, stdin = kb.definition_input(definition, __pillar__)
    if isinstance(reissue, str):
        reissue = [reissue]
    args += ["--dir", _dir(pki_dir)] + kb.flags(
        renew_before=renew_before, reissue=reissue, test=kb.test_mode(__opts__, test)
    )
    return kb.run(__opts__, kb.KUBESALT, ["pki", "issue", *args], stdin)


def check(pki_dir=None, renew_before=None):
    """
    Every certificate's subject, SANs and days left (``data.certificates``).

    A certificate that expired or expires within the window makes the
    binary exit 1; its JSON is still the answer, so it is returned (with
    result False and the job's retcode 1) rather than raised: the days left
    are what the caller, and the kubesalt returner, want to see.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_pki.check
    """
    args = ["pki", "check", "--dir", _dir(pki_dir), *kb.flags(renew_before=renew_before)]
    try:
        return kb.run(__opts__, kb.KUBESALT, args)
    except kb.KubesaltError as exc:
        if exc.retcode == 1 and exc.result is not None:
            __context__["retcode"] = 1
            return exc.result
        raise


def rotate(definition=None, pki_dir=None, renew_before=None, retry_after=None, test=None):
    """
    The rotation schedule's job (kubernetes:ca:rotation): ``kubesalt pki
    rotate`` reissues what is due and names the nodes that must take their
    new bundle (``data.dispatch``, masters first); those are sent to the
    master as the event ``kubesalt/pki/rotate``, whose reactor runs
    orch.kubernetes.rotate for them. The binary decides; this only fires.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_pki.rotate test=True
    """
    test = kb.test_mode(__opts__, test)
    args, stdin = kb.definition_input(definition, __pillar__)
    args += ["--dir", _dir(pki_dir)] + kb.flags(renew_before=renew_before, retry_after=retry_after, test=test)
    ret = kb.run(__opts__, kb.KUBESALT, ["pki", "rotate", *args], stdin)
    nodes = (ret.get("data") or {}).get("dispatch") or []
    if nodes and not test:
        # The certificates are issued; a lost event is retried by the
        # binary after retry_after, so it is logged, not raised.
        try:
            __salt__["event.send"](ROTATE_TAG, {"nodes": nodes})
        except Exception as exc:  # pylint: disable=broad-except
            log.error("kubesalt_pki: could not fire %s: %s", ROTATE_TAG, exc)
    return ret


def distributed(nodes, pki_dir=None, test=None):
    """
    Record that ``nodes`` took the bundle ``rotate`` dispatched to them
    (the last step of orch.kubernetes.rotate).

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_pki.distributed '[worker-0, worker-1]'
    """
    if isinstance(nodes, str):
        nodes = [n for n in nodes.split(",") if n]
    args = ["pki", "distributed", "--dir", _dir(pki_dir)] + kb.flags(
        node=nodes, test=kb.test_mode(__opts__, test)
    )
    return kb.run(__opts__, kb.KUBESALT, args)


def bundle(node, definition=None, pki_dir=None):
    """
    Exactly the PKI material one node needs (``data.files``): what the
    kubesalt ext_pillar puts in that node's pillar. Never the CA key.

    CLI Example:

    .. code-block:: bash

        salt-call kubesalt_pki.bundle worker-0
    """
    args, stdin = kb.definition_input(definition, __pillar__)
    return kb.run(
        __opts__, kb.KUBESALT, ["pki", "bundle", "--node", node, "--dir", _dir(pki_dir), *args], stdin
    )
