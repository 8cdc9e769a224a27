{#- `state.apply kubernetes`: by role (pillar kubernetes:nodes:<node>:role,
    or the grain kubesalt_role). Every node gets the API load balancer
    (and the masters the VIP), masters etcd and the control plane, workers
    the node components, every node its routes (right after the binaries:
    a new node routes before the rest is set up), the network part, the routes watcher
    (kubernetes.routes-watch) and the schedule that runs this state again
    (kubernetes.reconcile). The CA host
    (kubernetes:ca:minion, the Salt master's own minion) gets its PKI, so
    that `salt '*' state.apply kubernetes` also renews certificates. A
    hypervisor's minion (kubernetes:libvirt:hypervisors) gets the node
    network and the VMs placed on it (kubernetes.vms). -#}
{%- from "kubernetes/map.jinja" import k, me with context %}
{%- if me.role not in ['master', 'worker'] and k.ca.minion and grains['id'] == k.ca.minion %}

include:
  - kubernetes.ca
{%- elif me.role not in ['master', 'worker'] and grains['id'] in ((k.get('libvirt') or {}).get('hypervisors') or {}) %}

include:
  - kubernetes.vms
{%- else %}

include:
  - kubernetes.binaries
  - kubernetes.routes
  - kubernetes.pki
  - kubernetes.load-balancer
{%- if me.role == 'master' %}
  - kubernetes.etcd
  - kubernetes.control-plane
  - kubernetes.dns
{%- elif me.role == 'worker' %}
  - kubernetes.worker
{%- endif %}
  - kubernetes.network
{%- if me.role in ['master', 'worker'] %}
  - kubernetes.routes-watch
  - kubernetes.reconcile
{%- endif %}
{%- if me.role not in ['master', 'worker'] %}

kubernetes-no-role:
  test.fail_without_changes:
    - name: >-
        {{ me.name }} is not a node of the cluster nor the CA host: add it under
        kubernetes:nodes with role master or worker (or set the grain
        kubesalt_role), or name it in kubernetes:ca:minion
{%- endif %}
{%- endif %}
