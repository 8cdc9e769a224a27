{#- The API's load balancing. On every node, haproxy listens on
    127.0.0.1:<api:local_port> in front of every master's API server
    (kubesalt:cluster:api_backends, which follows the pillar's masters),
    health-checked on /readyz over TLS: the kubelet and kube-proxy dial it,
    so a dead master costs them nothing. With api:vip, keepalived on the
    masters holds the VIP for clients outside the cluster (the admin
    kubeconfig), tracking the local API server's /readyz (kubernetes.vip,
    included).
    A changed config is checked first (haproxy -c, keepalived -t), then
    reloaded, never restarted: haproxy's master re-executes its workers on
    USR2 (listeners kept), keepalived re-reads on HUP. Both write their own
    pid file for that. The daemons are kube-api-lb (haproxy) and
    kube-api-vip (keepalived), so that the distribution's own haproxy and
    keepalived units stay theirs. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, pki_watch with context %}
{%- from "kubernetes/service.jinja" import service with context %}
{%- set pki = cluster.pki %}
{%- set local = k.binaries.source == 'local' %}
{%- set reloads = cluster.manager in ['process', 'systemd'] %}

include:
  - kubernetes.binaries
  - kubernetes.pki
  - kubernetes.vip

{%- if me.role not in ['master', 'worker'] %}

kubernetes-load-balancer-not-here:
  test.nop:
    - name: the API load balancer runs on the cluster's nodes; {{ me.name }} is none
{%- elif not cluster.local_api_port %}

kubernetes-load-balancer-no-cluster-facts:
  test.fail_without_changes:
    - name: >-
        no local_api_port in pillar {{ k.ext_pillar.key }}:cluster (the kubesalt
        ext_pillar gives the cluster's facts from `kubesalt cidr plan`): the load
        balancer is left as it is; refresh this minion's pillar once the ext_pillar works
{%- else %}
{%- set lb = k.haproxy %}
{%- set haproxy_bin = paths.bin_dir ~ '/haproxy' if local else '/usr/sbin/haproxy' %}
{%- set haproxy_cfg = paths.config_dir ~ '/haproxy.cfg' %}
{%- set haproxy_pid = paths.run_dir ~ '/haproxy-master.pid' %}
{%- set ca_watch = pki_watch(['ca.pem']) | load_json %}
{%- if not local %}

kubernetes-haproxy-package:
  pkg.installed:
    - pkgs: {{ lb.packages | json }}
{%- endif %}

kubernetes-haproxy-config:
  file.managed:
    - name: {{ haproxy_cfg }}
    - makedirs: True
    {%- if cluster.have.haproxy %}
    - check_cmd: {{ haproxy_bin }} -c -q -f
    - require:
      - {{ 'file: kubernetes-bin-haproxy' if local else 'pkg: kubernetes-haproxy-package' }}
      {%- for w in ca_watch %}
      - {{ w }}
      {%- endfor %}
    {%- endif %}
    - contents: |
        # haproxy: the node-local API endpoint; written by the kubesalt formula.
        global
          maxconn {{ lb.maxconn }}
          # After a reload the old workers' sessions (watches to a removed
          # master too) end within this, and reconnect through the new ones.
          hard-stop-after {{ lb.hard_stop_after }}
        defaults
          mode tcp
          timeout connect {{ lb.timeout_connect }}
          timeout client {{ lb.timeout_idle }}
          timeout server {{ lb.timeout_idle }}
          timeout check {{ lb.check_timeout }}
          retries 2
          option redispatch
        frontend kube-apiserver
          bind 127.0.0.1:{{ cluster.local_api_port }}
          default_backend kube-apiserver
        backend kube-apiserver
          balance {{ lb.balance }}
          option httpchk GET /readyz
          http-check expect status 200
          default-server check check-ssl verify required ca-file {{ pki }}/ca.pem inter {{ lb.inter }} fastinter 500ms downinter {{ lb.inter }} fall {{ lb.fall }} rise {{ lb.rise }} on-marked-down shutdown-sessions
          {%- for b in cluster.api_backends %}
          server {{ b.name }} {{ b.host }}:{{ b.port }}
          {%- endfor %}
        frontend stats
          mode http
          bind 127.0.0.1:{{ lb.stats_port }}
          timeout client 10s
          stats enable
          stats uri /
{%- if reloads and cluster.have.haproxy %}

kubernetes-haproxy-reload:
  cmd.run:
    {#- Checked in the command, not by onlyif (service.jinja's checked_stop). #}
    - name: |
        if test -s {{ haproxy_pid }} && kill -0 "$(cat {{ haproxy_pid }})" 2>/dev/null; then
          kill -USR2 "$(cat {{ haproxy_pid }})" && echo "changed=yes comment='haproxy reloaded'"
        else
          echo "changed=no comment='haproxy is not running: it starts with the new configuration'"
        fi
    - stateful: True
    - onchanges:
      - file: kubernetes-haproxy-config
{%- endif %}
{{ service('kube-api-lb', haproxy_bin, {}, paths, cluster.manager,
           prelude='EXTRA_ARGS="-W -db -f ' ~ haproxy_cfg ~ ' -p ' ~ haproxy_pid ~ '"',
           runnable=cluster.have.haproxy,
           require=(['file: kubernetes-haproxy-config'] + (['cmd: kubernetes-haproxy-reload'] if reloads and cluster.have.haproxy else []))) }}
{%- endif %}
