{#- salt-run state.orchestrate orch.kubernetes.add_node pillar='{"node": "worker-3"}'
    Started by the reactors for a created or started node. The planner
    assigns the node's pod CIDR when the pillar is refreshed; then its
    certificates, its highstate, and routes on every other node. State runs
    are queued on their minions (queue: True), and the planner and the PKI
    lock their files, so two adds at once wait for each other instead of
    colliding. The other nodes' routes (planned mode) are a publish of
    kubesalt_net.routes_sync to the connected nodes as soon as the node
    answers (kubesalt.routes_publish: it waits for a slow one), each node's
    pillar compiled for that call: no state run queued behind another, no
    pillar refresh of every minion first, no wait for the certificates
    (routes sync tells another sync's route from a conflict). The new
    node is in that publish too when kubesalt is on it already; else it
    routes first thing in its highstate (kubernetes.routes). With unless_converged (the
    minion-start reactor), a node the status store reports converged is
    left alone, and so is every node of a cluster not built yet (no node
    has run a state). -#}
{%- import_yaml "kubernetes/defaults.yaml" as defaults %}
{%- set mode = salt['pillar.get']('kubernetes:mode', defaults.kubernetes.mode) %}
{%- set node = salt['pillar.get']('node', '') %}
{%- set ca_minion = salt['pillar.get']('ca_minion') or salt['pillar.get']('kubernetes:ca:minion', defaults.kubernetes.ca.minion) %}
{%- set skip = '' %}
{%- if not node %}
{%-   set skip = 'no node given: pass pillar={"node": "<minion id>"}' %}
{%- elif salt['pillar.get']('unless_converged') %}
{#- kubesalt status add-needed: not for a stranger, nor for any node of a
    cluster not built yet (the bootstrap's: an add_node beside it would
    queue states on the same minions in another order), nor for a node
    converged with the current plan. #}
{%-   set check = salt['saltutil.runner']('kubesalt.add_needed', node=node) %}
{%-   if check is mapping and not (check.get('data') or {}).get('add_needed', True) %}
{%-     set skip = check.comment %}
{%-   endif %}
{%- endif %}

{%- if skip %}

kubernetes-add-node-skipped:
  test.succeed_without_changes:
    - name: {{ skip | json }}
{%- else %}

{#- Until the master sees the node's connection nothing is published;
    then one test.ping at a time, each given minutes: pings every few
    seconds pile up on a slow (emulated) machine until none is answered. #}
kubernetes-add-node-up:
  salt.runner:
    - name: kubesalt.wait_up
    - tgt: {{ node }}

{%- if mode != 'controller' %}
{%- set routing = salt['slsutil.merge'](defaults.kubernetes.routing, salt['pillar.get']('kubernetes:routing', {}), strategy='recurse') %}
{%- set routes_record = salt['pillar.get']('kubernetes:paths:routes_record', defaults.kubernetes.paths.routes_record) %}

{#- In the background (parallel) from the moment the node answers, beside
    the certificates and the highstate: each node's pillar, compiled for
    the call, has the new node's CIDR, and the new node's has everyone's
    (its routes need not wait for its highstate). A slow node is waited for, one that
    fails to sync is asked again; one that still fails, or never answers,
    fails this step and the orchestration. #}
kubernetes-add-node-routes:
  salt.runner:
    - name: kubesalt.routes_publish
    - tgt: I@kubesalt:node:* or L@{{ node }}
    - tgt_type: compound
    - adopt: {{ routing.adopt | json }}
    - protocol: {{ routing.protocol | json }}
    {#- The node's routes watcher reconciles from this record: without
        the new node in it, it would take the new route away again. #}
    - record: {{ routes_record | json }}
    - parallel: True
    - require:
      - salt: kubernetes-add-node-up
{%- endif %}

{%- if ca_minion %}
kubernetes-add-node-pki:
  salt.state:
    - tgt: {{ ca_minion }}
    - sls: kubernetes.ca
    - queue: True
{%- else %}
kubernetes-add-node-pki:
  test.succeed_without_changes:
    - name: no CA minion (kubernetes:ca:minion is empty); the certificates are issued outside Salt
{%- endif %}

{#- The new node's pillar, with its certificates: the other nodes' state
    runs compile theirs anew, and their routes step compiles its own. #}
kubernetes-add-node-pillar:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: {{ node }}
    - kwarg:
        wait: True
    - require:
      - kubernetes-add-node-pki
      - salt: kubernetes-add-node-up

{%- set role = salt['pillar.get']('kubernetes:nodes:' ~ node ~ ':role', '') %}
{%- if role != 'worker' %}
{#- A new master's keepalived, started by its highstate, must hear the
    VIP's holder from its first second: the other masters take it as a
    peer first (kubernetes.vip alone, a HUP). A holder that does not know
    it sends it nothing; it would take the VIP too, and of two holders of
    equal priority the higher address keeps it, nopreempt or not. #}
kubernetes-add-node-vip-peers:
  salt.state:
    - tgt: I@kubesalt:role:master and not L@{{ node }}
    - tgt_type: compound
    - sls: kubernetes.vip
    - queue: True
    - require:
      - salt: kubernetes-add-node-pillar
{%- endif %}

{#- The new node's highstate and the other nodes' routes run side by side:
    both need only the refreshed pillar. #}
kubernetes-add-node-highstate:
  salt.state:
    - tgt: {{ node }}
    - sls: kubernetes
    - queue: True
    - parallel: True
    - require:
      - salt: {{ 'kubernetes-add-node-pillar' if role == 'worker' else 'kubernetes-add-node-vip-peers' }}


{#- A new master changes the API server's certificate (its IP is a SAN)
    and the etcd member list: the other masters take the new material. A
    worker (by the definition in the master's pillar) changes neither. #}
{%- if role != 'worker' %}
kubernetes-add-node-masters:
  salt.state:
    - tgt: I@kubesalt:role:master and not L@{{ node }}
    - tgt_type: compound
    - sls: [kubernetes.pki, kubernetes.control-plane, kubernetes.load-balancer]
    - queue: True
    - require:
      - salt: kubernetes-add-node-highstate

{#- Every worker's API load balancer gets the new master as a backend, in
    this orchestration (the other masters' in the step above). #}
kubernetes-add-node-load-balancers:
  salt.state:
    - tgt: I@kubesalt:role:worker and not L@{{ node }}
    - tgt_type: compound
    - sls: kubernetes.load-balancer
    - queue: True
    - parallel: True
    - require:
      - salt: kubernetes-add-node-highstate
{%- endif %}

{%- if mode == 'controller' %}

{#- The node's highstate waited for the controller manager's CIDR: the
    masters report it (the mine), then the node writes its CNI config and
    every node routes to it. #}
kubernetes-add-node-discover:
  salt.function:
    - name: mine.update
    - tgt: I@kubesalt:role:master
    - tgt_type: compound
    - require:
      - salt: kubernetes-add-node-highstate

kubernetes-add-node-cni:
  salt.state:
    - tgt: {{ node }}
    - sls: kubernetes
    - queue: True
    - require:
      - salt: kubernetes-add-node-discover

kubernetes-add-node-routes:
  salt.state:
    - tgt: I@kubesalt:node:* and not L@{{ node }}
    - tgt_type: compound
    - sls: kubernetes.network
    - queue: True
    - parallel: True
    - require:
      - salt: kubernetes-add-node-discover
{%- else %}

{#- The node's highstate waited for its kubelet to register: the first
    master sets its Node.spec.podCIDRs to the plan (kubernetes.network). #}
kubernetes-add-node-pod-cidr:
  salt.state:
    - tgt: I@kubesalt:role:master and not L@{{ node }}
    - tgt_type: compound
    - sls: kubernetes.network
    - queue: True
    - require:
      - salt: kubernetes-add-node-highstate
{%- endif %}
{%- endif %}
