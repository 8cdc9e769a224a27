{#- salt-run state.orchestrate orch.kubernetes.pillar_changed
    After the cluster definition changed (a node added or removed): the
    planner's plan and the certificates follow the definition (a removed
    node's CIDR is released and its certificates removed), every minion's
    pillar is refreshed, and the network state on every node adds routes to
    new nodes and removes those of nodes that left; every node's API load
    balancer follows the masters. A master that left is removed from etcd's
    members, and the masters that stay take the API server certificate
    without its IP, one at a time. A changed versions:kubernetes is an
    upgrade (orch.kubernetes.upgrade), done first and in order: the other
    steps here install the pillar's binaries too. -#}
{%- import_yaml "kubernetes/defaults.yaml" as defaults %}
{%- set ca_minion = salt['pillar.get']('ca_minion') or salt['pillar.get']('kubernetes:ca:minion', defaults.kubernetes.ca.minion) %}

{%- if ca_minion %}
kubernetes-pillar-changed-pki:
  salt.state:
    - tgt: {{ ca_minion }}
    - sls: kubernetes.ca
    - queue: True
{%- else %}
kubernetes-pillar-changed-pki:
  test.succeed_without_changes:
    - name: no CA minion (kubernetes:ca:minion is empty); the certificates are issued outside Salt
{%- endif %}

kubernetes-pillar-changed-refresh:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: '*'
    - kwarg:
        wait: True
    - require:
      - kubernetes-pillar-changed-pki

{#- Nothing when every node that answers runs the pillar's version. #}
kubernetes-pillar-changed-upgrade:
  salt.runner:
    - name: state.orchestrate
    - mods: orch.kubernetes.upgrade
    - require:
      - salt: kubernetes-pillar-changed-refresh

{#- The API load balancer too: a master that left is no backend anymore
    (and no keepalived peer), one that came is. #}
kubernetes-pillar-changed-routes:
  salt.state:
    - tgt: I@kubesalt:node:*
    - tgt_type: compound
    - sls: [kubernetes.network, kubernetes.load-balancer]
    - queue: True
    - require:
      - salt: kubernetes-pillar-changed-upgrade

{#- A master that left: its etcd member goes (the first master asks the
    others), and the API server certificate, re-issued without its IP, is
    taken by each master in turn (batch: one API server restarts at a
    time). Nothing changes when no master left. #}
kubernetes-pillar-changed-etcd-members:
  salt.state:
    - tgt: I@kubesalt:role:master
    - tgt_type: compound
    - sls: kubernetes.etcd-members
    - queue: True
    - require:
      - salt: kubernetes-pillar-changed-upgrade

kubernetes-pillar-changed-masters:
  salt.state:
    - tgt: I@kubesalt:role:master
    - tgt_type: compound
    - sls: [kubernetes.pki, kubernetes.control-plane]
    - batch: 1
    - require:
      - salt: kubernetes-pillar-changed-etcd-members
