"""
Record job returns in kubesalt's status store (``kubesalt status record``).

On the master, record every job return as it arrives:

.. code-block:: yaml

    event_return: kubesalt

or per job, where the returner runs on the master host itself:
``salt-call state.apply kubernetes --return kubesalt``.

Option ``kubesalt.status_db`` (default /var/lib/kubesalt/status.db). The
binary decides what to keep (kubesalt's modules and states, state runs);
this module only hands it the returns.
"""

import fnmatch
import logging

import saltext.kubesalt.utils.binary as kb

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt"

JOB_RETURN_TAG = "salt/job/*/ret/*"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt returner: {reason}"
    return __virtualname__


def _record(returns):
    db = kb.option(__opts__, "status_db", kb.DEFAULT_STATUS_DB)
    try:
        kb.run(__opts__, kb.KUBESALT, ["status", "record", "--db", db], returns)
    except kb.KubesaltError as exc:
        # A returner must not fail the job it reports on.
        log.error("kubesalt returner: could not record %d job return(s): %s", len(returns), exc)


def returner(ret):
    """Record one job return."""
    _record([ret])


def event_return(events):
    """Record the job returns among a batch of master events."""
    returns = [
        e["data"]
        for e in events
        if fnmatch.fnmatch(e.get("tag", ""), JOB_RETURN_TAG) and isinstance(e.get("data"), dict)
    ]
    if returns:
        _record(returns)


def prep_jid(nocache=False, passed_jid=None):  # pylint: disable=unused-argument
    """Salt's default jid: this returner keeps no job cache of its own."""
    import salt.utils.jid  # pylint: disable=import-outside-toplevel

    return passed_jid if passed_jid is not None else salt.utils.jid.gen_jid(__opts__)
