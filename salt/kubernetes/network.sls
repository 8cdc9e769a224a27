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

{%- if k.mode != 'controller' and me.is_first_master %}
{%- set kubectl = paths.bin_dir ~ '/kubectl --kubeconfig=' ~ cluster.pki ~ '/admin.kubeconfig --request-timeout=10s' %}
{%- set plan = [] %}
{%- for n in cluster.planned_nodes if n.get('pod_cidrs') %}
{%-   do plan.append(n.name ~ '=' ~ (n.pod_cidrs | join(','))) %}
{%- endfor %}
{%- set script %}
# Node.spec.podCIDRs: set once from empty to the plan; a mismatch is reported.
kubectl="{{ kubectl }}"
changed=no; problems=""; set_nodes=""; waiting=""
for entry in {{ plan | join(' ') }}; do
  node=${entry%%=*}; want=${entry#*=}
  if [ -z "$($kubectl get node "$node" --ignore-not-found -o name)" ]; then waiting="$waiting $node"; continue; fi
  have=$($kubectl get node "$node" -o jsonpath='{.spec.podCIDRs[*]}' | tr ' ' ',')
  if [ "$have" = "$want" ]; then continue; fi
  if [ -n "$have" ]; then problems="$problems $node has $have, the plan says $want (podCIDR can be set only once; not forced);"; continue; fi
  first=${want%%,*}; list=$(printf '"%s"' "$want" | sed 's/,/","/g')
  if [ "${DRY_RUN:-}" = 1 ]; then set_nodes="$set_nodes $node=$want"; changed=yes; continue; fi
  $kubectl patch node "$node" --type merge -p "{\"spec\":{\"podCIDR\":\"$first\",\"podCIDRs\":[$list]}}" >/dev/null || { problems="$problems $node: patch refused;"; continue; }
  set_nodes="$set_nodes $node=$want"; changed=yes
done
comment="set:${set_nodes:- none}; not registered yet:${waiting:- none}"
if [ -n "$problems" ]; then echo "changed=$changed comment='$comment; mismatch:$problems'"; exit 1; fi
echo "changed=$changed comment='$comment'"
{%- endset %}

kubernetes-node-pod-cidrs:
  cmd.run:
    - name: {{ script | json }}
    - stateful:
      - test_name: {{ ('DRY_RUN=1\n' ~ script) | json }}
    - onlyif: test -x {{ paths.bin_dir }}/kubectl && test -s {{ cluster.pki }}/admin.kubeconfig && {{ kubectl }} get --raw /readyz
{%- endif %}
