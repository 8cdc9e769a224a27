{#- The network part, on every node: IP forwarding, routes to every other
    node's pod CIDR (kubesalt_net.routes_synced; this node's own CIDR is never
    routed) and their protocol's name for `ip route`, masquerading of pod
    traffic that leaves the cluster CIDR only,
    and, on the first master in planned mode, Node.spec.podCIDR(s) set to the
    plan once each node has registered (set once from empty; a mismatch is
    reported, never forced). -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- set v6 = cluster.dual_stack or (cluster.cluster_cidrs and ':' in cluster.cluster_cidrs[0]) %}

kubernetes-ip-forward:
  sysctl.present:
    - name: net.ipv4.ip_forward
    - value: 1
    - config: {{ paths.sysctl_conf }}
{%- if v6 %}

kubernetes-ipv6-forward:
  sysctl.present:
    - name: net.ipv6.conf.all.forwarding
    - value: 1
    - config: {{ paths.sysctl_conf }}
{%- endif %}

{#- The protocol's name, so that `ip route` on this node shows (and
    filters by) `proto kubesalt`; the binary itself registers nothing. #}
{%- set proto_name = '# written by the kubesalt formula: the protocol of the routes kubesalt owns\n'
                     ~ k.routing.protocol ~ '\tkubesalt\n' %}

kubernetes-route-protocol-name:
  file.managed:
    - name: {{ paths.rt_protos_conf }}
    - makedirs: True
    - mode: '0644'
    - contents: {{ proto_name | json }}

{%- if k.mode != 'controller' and not cluster.route_nodes %}

kubernetes-routes:
  test.fail_without_changes:
    - name: >-
        no pod CIDR plan in pillar {{ k.ext_pillar.key }}:nodes (the kubesalt
        ext_pillar gives it; see salt/master.d/kubesalt.conf): the routes are
        left as they are; refresh the pillar once the ext_pillar works
{%- elif k.mode == 'controller' and not cluster.route_nodes %}

kubernetes-routes:
  test.show_notification:
    - text: >-
        controller mode: no nodes discovered yet (mine function kubesalt_nodes on
        the masters); the routes are left as they are until the API reports them
{%- else %}

kubernetes-routes:
  kubesalt_net.routes_synced:
    - nodes: {{ cluster.route_nodes | json }}
    - self_name: {{ me.name }}
    - adopt: {{ k.routing.adopt }}
    - protocol: {{ k.routing.protocol }}
    {#- What `kubesalt routes watch` (kubernetes.routes-watch) heals from. #}
    - record: {{ paths.routes_record }}
    - require:
      - sysctl: kubernetes-ip-forward
{%- endif %}

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
{%- endif %}

{#- Node.spec.podCIDR(s) to the plan, by `kubesalt nodes set-cidrs`: set
    once from empty; a mismatch fails the state with the fix, never forced;
    nodes not registered yet wait for a later run. Only once the API answers. #}
{%- if k.mode != 'controller' and me.is_first_master %}
{%- set admin_kubeconfig = cluster.pki ~ '/admin.kubeconfig' %}

kubernetes-node-pod-cidrs:
  kubesalt_net.node_cidrs_set:
    - kubeconfig: {{ admin_kubeconfig }}
    - nodes: {{ cluster.planned_nodes | json }}
    - onlyif: test -x {{ paths.bin_dir }}/kubectl && test -s {{ admin_kubeconfig }} && {{ paths.bin_dir }}/kubectl --kubeconfig={{ admin_kubeconfig }} --request-timeout=10s get --raw /readyz
{%- endif %}
