{#- Routes to every other node's pod CIDR (kubesalt_net.routes_synced; this
    node's own CIDR is never routed), their protocol's name for `ip route`,
    and IP forwarding. Its own SLS so that a node's highstate routes right
    after the kubesalt binary is installed (kubernetes.init), before its
    certificates, load balancer and daemons: a new node is routed
    everywhere without waiting for the rest. -#}
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
    {#- A run whose pillar predates a newer sync's (a node added while it
        ran) leaves the newer routes alone. #}
    - revision: {{ cluster.route_revision }}
    - self_name: {{ me.name }}
    - adopt: {{ k.routing.adopt }}
    - protocol: {{ k.routing.protocol }}
    {#- What `kubesalt routes watch` (kubernetes.routes-watch) heals from. #}
    - record: {{ paths.routes_record }}
    - require:
      - sysctl: kubernetes-ip-forward
{%- endif %}
