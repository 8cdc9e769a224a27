{#- The API's VIP (api:vip), for clients outside the cluster (the admin
    kubeconfig): keepalived on the masters, VRRP unicast to the other
    masters, equal priorities and nopreempt, tracking the local API
    server's /readyz. A changed config is checked (keepalived -t), then
    re-read on HUP. The daemon is kube-api-vip, so that the distribution's
    own keepalived unit stays its own. Its own SLS (kubernetes.load-balancer
    includes it): orch.kubernetes.add_node gives the other masters a new
    master as a peer before the new master's highstate, without their
    certificates. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- from "kubernetes/service.jinja" import service, stopped with context %}
{%- set pki = cluster.pki %}
{%- set local = k.binaries.source == 'local' %}
{%- set reloads = cluster.manager in ['process', 'systemd'] %}

include:
  - kubernetes.binaries

{%- if me.role not in ['master', 'worker'] %}

kubernetes-vip-not-here:
  test.nop:
    - name: the API's VIP is held by the cluster's masters; {{ me.name }} is no node
{%- elif me.role == 'master' and cluster.api_vip %}
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
    {#- Checked in the command, not by onlyif (service.jinja's checked_stop). #}
    - name: |
        if test -s {{ keepalived_pid }} && kill -0 "$(cat {{ keepalived_pid }})" 2>/dev/null; then
          kill -HUP "$(cat {{ keepalived_pid }})" && echo "changed=yes comment='keepalived reloaded'"
        else
          echo "changed=no comment='keepalived is not running: it starts with the new configuration'"
        fi
    - stateful: True
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
