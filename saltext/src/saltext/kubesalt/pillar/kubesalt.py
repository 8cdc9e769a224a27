"""
Each cluster minion's pod CIDR(s), the cluster's node list and the minion's
own PKI bundle, from ``kubesalt cidr plan`` and ``kubesalt pki bundle``.

.. code-block:: yaml

    ext_pillar:
      - kubesalt:
          # The definition: a file, or (default) the minion's kubernetes pillar.
          definition: /srv/kubesalt/cluster.yaml
          # The plan, kept on the master so CIDRs stay put across pillar
          # refreshes and master restarts (default kubesalt.plan_file).
          plan_file: /var/lib/kubesalt/plan.json
          # The CA host's PKI directory; omit to hand out no certificates.
          pki_dir: /var/lib/kubesalt/pki
          # The minions' DNS domain, when their ids are <node>.<domain>.
          domain: lab.example

A cluster minion gets::

    kubesalt:
      node: worker-0
      role: worker
      ips: [192.168.170.20]
      pod_cidrs: [10.200.3.0/24]
      nodes: [{name, role, ips, pod_cidrs}, ...]   # every node, for routes
      revision: 1764576000000000000                # the plan's: grows with each change
      cluster:                                     # derived by the binary, not the formula
        api_host: 192.168.170.10
        api_url: https://192.168.170.10:6443       # the VIP, else api:name, else the first master
        masters: [{name, ips, etcd_client_url, etcd_peer_url}, ...]   # by name
        etcd_endpoints: [https://192.168.170.10:2379, ...]
        etcd_initial_cluster: master-0=https://192.168.170.10:2380,...
        local_api_url: https://127.0.0.1:6444      # every node's haproxy (api:local_port)
        local_api_port: 6444
        api_backends: [{name, host, port}, ...]    # its backends: every master's API server
        api_vip: 192.168.170.5/24                  # keepalived's VIP on the masters, or ''
      pki: {node, role, files: {<path>: {contents, mode}}}   # its own only

A minion is a node when its id is the node's name, or the node's name
followed by ``.`` and the configured ``domain`` (``worker-0.lab.example``);
nothing else matches, so ``worker-0.evil`` gets nothing: the pillar holds the
node's private keys.

When the plan cannot be made (a bad definition, an exhausted range) the
error goes to the master log and the last good plan, cached next to the plan
file, is served: a CIDR is never handed out that another node holds.

The planner runs once per change, not once per minion: the cached plan
carries a digest of what it was made from (the definition, the plan file
as the run left it, the binary), and a minion whose refresh finds the same
digest is served the cache. A lock next to the plan file makes concurrent
refreshes (the master's worker processes) wait for the one that plans.
``<plan_file>.planner.json`` counts the planner's runs and the plans served
from the cache: ``{"runs": 1, "served": 20}`` after one change and a
refresh of 21 minions.
"""

import fcntl
import hashlib
import json
import logging
import os
import tempfile
from contextlib import contextmanager

import saltext.kubesalt.utils.binary as kb

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt ext_pillar: {reason}"
    return __virtualname__


def ext_pillar(minion_id, pillar, definition=None, plan_file=None, pki_dir=None, domain=None):  # pylint: disable=unused-argument
    plan_file = plan_file or kb.option(__opts__, "plan_file", kb.DEFAULT_PLAN_FILE)
    if definition is None and not pillar.get("kubernetes"):
        return {}  # not a cluster minion: no definition reaches it
    try:
        def_args, def_stdin = kb.definition_input(definition, pillar)
    except kb.KubesaltError as exc:
        log.error("kubesalt ext_pillar for %s: %s", minion_id, exc)
        return {}

    planned = _plan(minion_id, def_args, def_stdin, plan_file)
    if planned is None:
        return {}
    nodes = planned["nodes"]
    node = _own_node(minion_id, nodes, domain)
    if node is None:
        return {}
    own = {
        "node": node["name"],
        "role": node.get("role"),
        "ips": node.get("ips", []),
        "pod_cidrs": node.get("pod_cidrs", []),
        "nodes": nodes,
        # Orders node lists: a route sync of an older one changes nothing.
        "revision": planned.get("revision", 0),
        "cluster": planned["cluster"],
    }
    if pki_dir:
        try:
            res = kb.run(
                __opts__,
                kb.KUBESALT,
                ["pki", "bundle", "--node", node["name"], "--dir", pki_dir, *def_args],
                def_stdin,
            )
            own["pki"] = res.get("data") or {}
        except kb.KubesaltError as exc:
            log.error(
                "kubesalt ext_pillar: no PKI bundle for %s (its pillar has no kubesalt:pki): %s",
                minion_id,
                exc,
            )
    return {"kubesalt": own}


def _plan(minion_id, def_args, def_stdin, plan_file):
    """
    ``{"nodes", "cluster"}`` of the plan (the node list and the cluster's
    derived facts), or of the last good plan on failure; from the cache
    when nothing it was made from changed.
    """
    cache = plan_file + ".last-good.json"
    with _locked(plan_file + ".ext-pillar.lock"):  # not the binary's own .lock
        cached = _read_cache(cache)
        if cached is not None and cached.get("digest") == _digest(def_args, def_stdin, plan_file):
            _count(plan_file, "served")
            return cached
        _count(plan_file, "runs")
        return _run_planner(minion_id, def_args, def_stdin, plan_file, cache)


def _run_planner(minion_id, def_args, def_stdin, plan_file, cache):
    try:
        res = kb.run(__opts__, kb.KUBESALT, ["cidr", "plan", *def_args, "--plan", plan_file], def_stdin)
        data = res.get("data") or {}
        planned = {
            "nodes": data.get("nodes"),
            "cluster": data.get("cluster"),
            "revision": data.get("revision", 0),
        }
        if not _complete(planned):
            raise kb.KubesaltError("kubesalt cidr plan: its result lacks the data.nodes list or data.cluster")
    except kb.KubesaltError as exc:
        cached = _read_cache(cache)
        if cached is None:
            log.error(
                "kubesalt ext_pillar: cannot plan pod CIDRs for %s and no earlier plan is cached (%s); "
                "its pillar has no kubesalt key until the definition is fixed: %s",
                minion_id,
                cache,
                exc,
            )
            return None
        log.error(
            "kubesalt ext_pillar: cannot plan pod CIDRs for %s; serving the last good plan from %s "
            "until the definition is fixed: %s",
            minion_id,
            cache,
            exc,
        )
        return cached
    # The digest of the plan file as this run left it: planning again from
    # it and the same definition gives the same plan.
    planned["digest"] = _digest(def_args, def_stdin, plan_file)
    _write_cache(cache, planned)
    return planned


def _digest(def_args, def_stdin, plan_file):
    """What a plan is made from: the definition (data or file), the plan
    file, the binary (another version may plan otherwise)."""
    h = hashlib.sha256()
    h.update(json.dumps(def_args).encode())
    h.update(kb.to_stdin(def_stdin) or b"")
    binary = kb.path(__opts__, kb.KUBESALT)
    try:
        st = os.stat(binary)
        h.update(f"{binary} {st.st_size} {st.st_mtime_ns}".encode())
    except OSError:
        h.update(f"{binary} absent".encode())
    files = [plan_file]
    if def_args[:1] == ["--definition"] and def_args[1] != "-":
        files.append(def_args[1])
    for path in files:
        try:
            with open(path, "rb") as f:
                h.update(f"{path} {len(path)}".encode() + f.read())
        except OSError:
            h.update(f"{path} absent".encode())
    return h.hexdigest()


@contextmanager
def _locked(path):
    """An exclusive lock on path (made if absent) for the block; without
    one (an unwritable directory) the block runs unlocked."""
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        log.warning("kubesalt ext_pillar: cannot lock %s: %s", path, exc)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _count(plan_file, what):
    """One more planner run or cached plan served, in <plan_file>.planner.json
    (under the lock, so no count is lost)."""
    path = plan_file + ".planner.json"
    try:
        with open(path, encoding="utf-8") as f:
            counts = json.load(f)
    except (OSError, ValueError):
        counts = {}
    counts = {"runs": int(counts.get("runs", 0)), "served": int(counts.get("served", 0))}
    counts[what] += 1
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(counts, f)
        os.replace(path + ".tmp", path)
    except OSError as exc:
        log.warning("kubesalt ext_pillar: cannot count the planner's runs in %s: %s", path, exc)


def _own_node(minion_id, nodes, domain=None):
    """
    The node this minion is: the node named by its id, or by its id less
    ``.<domain>``; None for any other id (a prefix match would hand a node's
    keys to ``<node>.anything``).
    """
    by_name = {n.get("name"): n for n in nodes}
    if minion_id in by_name:
        return by_name[minion_id]
    domain = (domain or "").strip(".")
    if domain and minion_id.endswith("." + domain):
        return by_name.get(minion_id[: -len(domain) - 1])
    return None


def _read_cache(path):
    try:
        with open(path, encoding="utf-8") as f:
            planned = json.load(f)
    except (OSError, ValueError):
        return None
    return planned if _complete(planned) else None  # an older version's cache has no facts


def _complete(planned):
    return (
        isinstance(planned, dict)
        and isinstance(planned.get("nodes"), list)
        and isinstance(planned.get("cluster"), dict)
    )


def _write_cache(path, planned):
    """Atomically (temp file, rename), so a reader never sees half a plan."""
    data = json.dumps(planned, sort_keys=True)
    try:
        if _read_cache(path) == planned:
            return
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kubesalt-plan-cache-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("kubesalt ext_pillar: cannot cache the plan in %s: %s", path, exc)
