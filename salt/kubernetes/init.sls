{#- `state.apply kubernetes`: by role (pillar kubernetes:nodes:<node>:role,
    or the grain kubesalt_role). Masters get etcd and the control plane,
    workers the node components, every node the network part. -#}
{%- from "kubernetes/map.jinja" import k, me with context %}

include:
  - kubernetes.binaries
  - kubernetes.pki
{%- if me.role == 'master' %}
  - kubernetes.etcd
  - kubernetes.control-plane
{%- elif me.role == 'worker' %}
  - kubernetes.worker
{%- endif %}
  - kubernetes.network
{%- if me.role not in ['master', 'worker'] %}

kubernetes-no-role:
  test.fail_without_changes:
    - name: >-
        {{ me.name }} is not a node of the cluster: add it under kubernetes:nodes
        with role master or worker (or set the grain kubesalt_role)
{%- endif %}
