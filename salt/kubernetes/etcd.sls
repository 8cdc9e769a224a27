{#- etcd on the masters: any odd number of members, peer and client mutual
    TLS on the certificates kubesalt issued. A member whose data directory is
    empty asks the running cluster first: if its peer URL is not a member yet
    it joins with `etcdctl member add` and --initial-cluster-state existing,
    so a new master never re-initialises the cluster. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, pki_watch with context %}
{%- from "kubernetes/service.jinja" import service with context %}
{%- set e = k.etcd %}
{%- set pki = cluster.pki %}

include:
  - kubernetes.binaries
  - kubernetes.pki

{%- if me.role != 'master' %}

kubernetes-etcd-not-here:
  test.nop:
    - name: etcd runs on the masters only; {{ me.name }} is a {{ me.role or 'node without a role' }}
{%- elif not me.etcd_peer_url %}

kubernetes-etcd-no-cluster-facts:
  test.fail_without_changes:
    - name: >-
        no etcd member for {{ me.name }} in pillar {{ k.ext_pillar.key }}:cluster:masters
        (the kubesalt ext_pillar gives the cluster's facts from `kubesalt cidr plan`;
        see salt/master.d/kubesalt.conf): etcd is left as it is; refresh this
        minion's pillar once the ext_pillar works
{%- else %}
{#- Every URL comes from the binary (kubesalt:cluster): IPv6 in brackets. #}
{%- set peer_url = me.etcd_peer_url %}
{%- set others = cluster.etcd_endpoints | reject('equalto', me.etcd_client_url) | list %}
{%- set etcdctl = paths.bin_dir ~ '/etcdctl --cacert=' ~ pki ~ '/ca.pem --cert=' ~ pki ~ '/etcd-server.pem --key=' ~ pki ~ '/etcd-server-key.pem --dial-timeout=3s --command-timeout=5s' %}
{%- set args = {
  'name': me.name,
  'data-dir': paths.etcd_data_dir,
  'cert-file': pki ~ '/etcd-server.pem',
  'key-file': pki ~ '/etcd-server-key.pem',
  'peer-cert-file': pki ~ '/etcd-peer.pem',
  'peer-key-file': pki ~ '/etcd-peer-key.pem',
  'trusted-ca-file': pki ~ '/ca.pem',
  'peer-trusted-ca-file': pki ~ '/ca.pem',
  'client-cert-auth': true,
  'peer-client-cert-auth': true,
  'initial-advertise-peer-urls': peer_url,
  'listen-peer-urls': peer_url,
  'listen-client-urls': [me.etcd_client_url, 'https://127.0.0.1:' ~ e.client_port],
  'advertise-client-urls': me.etcd_client_url,
  'initial-cluster-token': k.cluster_name ~ '-etcd',
} %}
{%- do args.update(e.args) %}
{%- set prelude %}
# A fresh member of a running cluster joins it; otherwise the masters bootstrap together.
STATE=new
INITIAL={{ cluster.etcd_initial_cluster }}
if [ ! -d {{ paths.etcd_data_dir }}/member ] && [ -n "{{ others | join(',') }}" ]; then
  if members=$({{ etcdctl }} --endpoints={{ others | join(',') }} member list 2>/dev/null); then
    if ! printf '%s\n' "$members" | grep -q '{{ peer_url }}'; then
      out=$({{ etcdctl }} --endpoints={{ others | join(',') }} member add {{ me.name }} --peer-urls={{ peer_url }})
      INITIAL=$(printf '%s\n' "$out" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
      STATE=existing
    fi
  fi
fi
EXTRA_ARGS="--initial-cluster=$INITIAL --initial-cluster-state=$STATE"
{%- endset %}

kubernetes-etcd-data-dir:
  file.directory:
    - name: {{ paths.etcd_data_dir }}
    - mode: '0700'
    - makedirs: True

{#- etcd reads its certificate and key again at every new connection (since
    v3.2), so a renewed one needs no restart (which would cost the API
    server beside it its store); a new CA does. #}
{%- set watch = pki_watch(['ca.pem']) | load_json %}
{{ service('etcd', paths.bin_dir ~ '/etcd', args, paths, cluster.manager, watch=watch, runnable=cluster.have.etcd, prelude=prelude) }}

{#- Scheduled snapshots (kubernetes:etcd:backup): the minion's own
    scheduler runs kubesalt_etcd.snapshot, which keeps the newest and
    copies the newest to the Salt master. #}
{%- set backup = e.backup %}
{%- if backup.enabled and cluster.have.etcdctl %}

kubernetes-etcd-backup-schedule:
  schedule.present:
    - name: kubesalt-etcd-backup
    - function: kubesalt_etcd.snapshot
    - job_kwargs:
        dir: {{ paths.root ~ backup.dir }}
        member: {{ me.name }}
        keep: {{ backup.keep }}
        endpoints: https://127.0.0.1:{{ e.client_port }}
        cacert: {{ pki }}/ca.pem
        cert: {{ pki }}/etcd-server.pem
        key: {{ pki }}/etcd-server-key.pem
        etcdctl: {{ paths.bin_dir }}/etcdctl
        push: {{ backup.push }}
    - seconds: {{ backup.interval }}
    {#- Masterless (salt-call --local): no minion daemon answers the
        schedule's events; write its file, which the minion reads at start. #}
    - offline: {{ salt['config.get']('file_client') == 'local' }}
{%- else %}

kubernetes-etcd-backup-schedule:
  schedule.absent:
    - name: kubesalt-etcd-backup
    - offline: {{ salt['config.get']('file_client') == 'local' }}
{%- endif %}
{%- endif %}
