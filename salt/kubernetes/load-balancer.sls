{#- The API's load balancing. On every node, haproxy listens on
    127.0.0.1:<api:local_port> in front of every master's API server
    (kubesalt:cluster:api_backends, which follows the pillar's masters),
    health-checked on /readyz over TLS: the kubelet and kube-proxy dial it,
    so a dead master costs them nothing. With api:vip, keepalived on the
    masters holds the VIP for clients outside the cluster (the admin
    kubeconfig), tracking the local API server's /readyz.
    A changed config is checked first (haproxy -c, keepalived -t), then
    reloaded, never restarted: haproxy's master re-executes its workers on
    USR2 (listeners kept), keepalived re-reads on HUP. Both write their own
    pid file for that. The daemons are kube-api-lb (haproxy) and
    kube-api-vip (keepalived), so that the distribution's own haproxy and
    keepalived units stay theirs. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, pki_watch with context %}
{%- from "kubernetes/service.jinja" import service, stopped with context %}
{%- set pki = cluster.pki %}
{%- set local = k.binaries.source == 'local' %}
{%- set reloads = cluster.manager in ['process', 'systemd'] %}

include:
  - kubernetes.binaries
  - kubernetes.pki

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
    - name: kill -USR2 "$(cat {{ haproxy_pid }})"
    - onlyif: test -s {{ haproxy_pid }} && kill -0 "$(cat {{ haproxy_pid }})"
    - onchanges:
      - file: kubernetes-haproxy-config
{%- endif %}
{{ service('kube-api-lb', haproxy_bin, {}, paths, cluster.manager,
           prelude='EXTRA_ARGS="-W -db -f ' ~ haproxy_cfg ~ ' -p ' ~ haproxy_pid ~ '"',
           runnable=cluster.have.haproxy,
           require=(['file: kubernetes-haproxy-config'] + (['cmd: kubernetes-haproxy-reload'] if reloads and cluster.have.haproxy else []))) }}

{#- keepalived: the VIP on the masters. #}
{%- if me.role == 'master' and cluster.api_vip %}
{%- set ka = k.keepalived %}
{%- set keepalived_bin = paths.bin_dir ~ '/keepalived' if local else '/usr/sbin/keepalived' %}
{%- set keepalived_cfg = paths.config_dir ~ '/keepalived.conf' %}
{%- set keepalived_pid = paths.run_dir ~ '/keepalived-main.pid' %}
{%- set v6 = ':' in cluster.api_vip %}
{#- VRRP speaks the VIP's family: this node's and its peers' address of it
    (unicast; a lone master has no peer, and keepalived refuses an empty
    peer list). #}
{%- set own = [] %}
{%- for ip in me.ips if (':' in ip) == v6 %}{% do own.append(ip) %}{% endfor %}
{%- set src = (own + [''])[0] %}
{%- set peers = [] %}
{%- for m in cluster.masters if m.name != me.name %}
{%-   for ip in m.ips if (':' in ip) == v6 %}{% do peers.append(ip) %}{% endfor %}
{%- endfor %}
{#- The interface holding this node's address, unless the pillar names one. #}
{%- set ifaces = [ka.interface] if ka.interface else [] %}
{%- for name, addrs in (grains.get('ip6_interfaces' if v6 else 'ip4_interfaces') or {}) | dictsort if src in addrs and not ifaces %}
{%-   do ifaces.append(name) %}
{%- endfor %}
{%- if not ifaces or not src %}

kubernetes-keepalived-no-interface:
  test.fail_without_changes:
    - name: >-
        no interface of {{ me.name }} holds its address {{ src or '(none of the VIP family)' }}
        for the VIP {{ cluster.api_vip }}: set kubernetes:keepalived:interface, or give
        the node an address of the VIP's family in kubernetes:nodes
{%- else %}
{%- set iface = ifaces[0] %}
{%- if not local %}

kubernetes-keepalived-package:
  pkg.installed:
    - pkgs: {{ ka.packages | json }}
{%- endif %}

kubernetes-keepalived-config:
  file.managed:
    - name: {{ keepalived_cfg }}
    - makedirs: True
    - mode: '0600'
    {%- if cluster.have.keepalived %}
    - check_cmd: {{ keepalived_bin }} -t -f
    {%- if not local %}
    - require:
      - pkg: kubernetes-keepalived-package
    {%- endif %}
    {%- endif %}
    - contents: |
        # keepalived: the API's VIP; written by the kubesalt formula.
        global_defs {
          router_id {{ me.name }}
          script_user root
          enable_script_security
        }
        vrrp_script kube_apiserver {
          script "/usr/bin/curl -sf -o /dev/null --max-time 2 --cacert {{ pki }}/ca.pem https://127.0.0.1:{{ k.api.port }}/readyz"
          interval {{ ka.check_interval }}
          timeout 2
          fall {{ ka.check_fall }}
          rise {{ ka.check_rise }}
        }
        vrrp_instance kube_api_vip {
          state BACKUP
          nopreempt
          interface {{ iface }}
          virtual_router_id {{ ka.virtual_router_id }}
          priority 100
          advert_int {{ ka.advert_int }}
          {%- if v6 %}
          vrrp_version 3
          {%- endif %}
          {%- if peers %}
          unicast_src_ip {{ src }}
          unicast_peer {
            {%- for p in peers %}
            {{ p }}
            {%- endfor %}
          }
          {%- endif %}
          virtual_ipaddress {
            {{ cluster.api_vip }} dev {{ iface }}
          }
          track_script {
            kube_apiserver
          }
        }
{%- if reloads and cluster.have.keepalived %}

kubernetes-keepalived-reload:
  cmd.run:
    - name: kill -HUP "$(cat {{ keepalived_pid }})"
    - onlyif: test -s {{ keepalived_pid }} && kill -0 "$(cat {{ keepalived_pid }})"
    - onchanges:
      - file: kubernetes-keepalived-config
{%- endif %}
{{ service('kube-api-vip', keepalived_bin, {}, paths, cluster.manager,
           prelude='EXTRA_ARGS="--dont-fork --log-console --no-syslog --vrrp --use-file=' ~ keepalived_cfg
                   ~ ' --pid=' ~ keepalived_pid ~ ' --vrrp_pid=' ~ paths.run_dir ~ '/keepalived-vrrp.pid"',
           runnable=cluster.have.keepalived,
           require=(['file: kubernetes-keepalived-config'] + (['cmd: kubernetes-keepalived-reload'] if reloads and cluster.have.keepalived else []))) }}
{%- endif %}
{%- else %}
{#- No VIP on this node (api:vip removed, or not a master): a keepalived
    the formula started before is stopped (it gives the VIP up as it
    exits) and its files removed. #}
{%- set vip_files = [paths.config_dir ~ '/keepalived.conf', paths.launch_dir ~ '/kube-api-vip.sh'] %}
{%- if cluster.manager == 'systemd' %}

kubernetes-kube-api-vip-stopped:
  service.dead:
    - name: kube-api-vip
    - enable: False
{%-   do vip_files.append(paths.systemd_dir ~ '/kube-api-vip.service') %}
{%- else %}
{{ stopped('kube-api-vip', paths, cluster.manager) }}
{%- endif %}

kubernetes-keepalived-absent:
  file.absent:
    - names: {{ vip_files | json }}
    - require:
      - kubernetes-kube-api-vip-stopped
{%- endif %}
{%- endif %}
