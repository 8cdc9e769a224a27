{#- The network part, on every node: the routes (kubernetes.routes),
    masquerading of pod traffic that leaves the cluster CIDR only,
    and, on the first master in planned mode, Node.spec.podCIDR(s) set to the
    plan once each node has registered (set once from empty; a mismatch is
    reported, never forced). -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}

include:
  - kubernetes.routes

{#- Pod traffic to anywhere outside the cluster CIDR leaves with the node's
    address; pod-to-pod traffic is never masqueraded. #}
{%- if k.routing.masquerade_outside and me.pod_cidrs %}
{%-   for c in me.pod_cidrs %}
{%-     set family = 'ipv6' if ':' in c else 'ipv4' %}
{%-     set tool = 'ip6tables' if family == 'ipv6' else 'iptables' %}
{%-     set cl = cluster.cluster_cidrs | select('match', '.*:.*' if family == 'ipv6' else '^[0-9.]+/') | first %}
{%-     if salt['cmd.which'](tool) %}

kubernetes-masquerade-{{ family }}:
  iptables.append:
    - table: nat
    - chain: POSTROUTING
    - family: {{ family }}
    - source: {{ c }}
    - destination: '! {{ cl }}'
    - jump: MASQUERADE
    - comment: kubesalt pod traffic leaving the cluster
    - save: False
{%-     else %}

kubernetes-masquerade-{{ family }}:
  test.show_notification:
    - text: "{{ tool }} is not installed: pods on {{ me.name }} reach only the cluster CIDR {{ cl }}"
{%-     endif %}
{%-   endfor %}
{%- elif k.routing.masquerade_outside and k.mode == 'controller' %}

kubernetes-masquerade-no-pod-cidr:
  test.show_notification:
    - text: "{{ me.name }} has no pod CIDR yet (the controller allocates it): masquerading starts on the run after the API reports it"
{%- endif %}

{#- Node.spec.podCIDR(s) to the plan, by `kubesalt nodes set-cidrs`: set
    once from empty; a mismatch fails the state with the fix, never forced;
    nodes not registered yet wait for a later run. Only once the API answers
    (if_api_ready, not an onlyif: see service.jinja, checked_stop). #}
{%- if k.mode != 'controller' and me.is_first_master %}
{%- set admin_kubeconfig = cluster.pki ~ '/admin.kubeconfig' %}

kubernetes-node-pod-cidrs:
  kubesalt_net.node_cidrs_set:
    - kubeconfig: {{ admin_kubeconfig }}
    - nodes: {{ cluster.planned_nodes | json }}
    - if_api_ready: True
{%- endif %}
