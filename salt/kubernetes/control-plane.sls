{#- The control plane on every master: kube-apiserver (service IP range,
    encryption of Secrets, etcd over mutual TLS, Node and RBAC authorization,
    its kubelet client certificate), kube-controller-manager and
    kube-scheduler with leader election, and the RBAC that lets the API
    server reach the kubelets. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, pki_watch with context %}
{%- from "kubernetes/service.jinja" import service, running with context %}
{%- set pki = cluster.pki %}
{%- set cp = k.control_plane %}

include:
  - kubernetes.binaries
  - kubernetes.pki

{%- if me.role != 'master' %}

kubernetes-control-plane-not-here:
  test.nop:
    - name: the control plane runs on the masters only; {{ me.name }} is a {{ me.role or 'node without a role' }}
{%- elif not (cluster.api_url and cluster.etcd_endpoints) %}

kubernetes-control-plane-no-cluster-facts:
  test.fail_without_changes:
    - name: >-
        no API URL or etcd endpoints in pillar {{ k.ext_pillar.key }}:cluster
        (the kubesalt ext_pillar gives the cluster's facts from `kubesalt cidr plan`;
        see salt/master.d/kubesalt.conf): the control plane is left as it is;
        refresh this minion's pillar once the ext_pillar works
{%- else %}

{#- kube-apiserver. Its etcd is the member beside it (kubeadm's stacked
    etcd does the same): a client of every member keeps requests on a hung
    member's connection until gRPC's keepalive gives up (about 40 s in the
    lab, with one master frozen), during which leases cannot be renewed;
    an API server whose own member fails fails /readyz and leaves every
    load balancer instead. On SIGTERM (a restart for new certificates or
    binaries) /readyz fails at once while requests are still served for
    shutdown-delay-duration: every load balancer (checks 500 ms apart once
    failing, fall 2) takes the server out first, so no request meets a
    closed listener; within the supervisor's 8 s stop timeout.
    The aggregation layer: the API server proxies to aggregated API servers
    as front-proxy-client (the only name they trust to pass on the user),
    and reaches them, admission webhooks and CRD conversion webhooks at
    their endpoints' pod addresses (enable-aggregator-routing): a master
    runs no kube-proxy, so a Service's cluster IP leads nowhere from it. #}
{%- set apiserver = {
  'advertise-address': me.ip,
  'allow-privileged': true,
  'authorization-mode': 'Node,RBAC',
  'bind-address': '0.0.0.0',
  'secure-port': k.api.port,
  'client-ca-file': pki ~ '/ca.pem',
  'enable-admission-plugins': 'NodeRestriction',
  'enable-aggregator-routing': true,
  'etcd-cafile': pki ~ '/ca.pem',
  'etcd-certfile': pki ~ '/kube-apiserver-etcd-client.pem',
  'etcd-keyfile': pki ~ '/kube-apiserver-etcd-client-key.pem',
  'etcd-servers': [me.etcd_client_url] if me.etcd_client_url else cluster.etcd_endpoints,
  'encryption-provider-config': pki ~ '/encryption-config.yaml',
  'kubelet-certificate-authority': pki ~ '/ca.pem',
  'kubelet-client-certificate': pki ~ '/kube-apiserver-kubelet-client.pem',
  'kubelet-client-key': pki ~ '/kube-apiserver-kubelet-client-key.pem',
  'kubelet-preferred-address-types': 'InternalIP,Hostname',
  'proxy-client-cert-file': pki ~ '/front-proxy-client.pem',
  'proxy-client-key-file': pki ~ '/front-proxy-client-key.pem',
  'requestheader-allowed-names': 'front-proxy-client',
  'requestheader-client-ca-file': pki ~ '/ca.pem',
  'requestheader-extra-headers-prefix': 'X-Remote-Extra-',
  'requestheader-group-headers': 'X-Remote-Group',
  'requestheader-username-headers': 'X-Remote-User',
  'runtime-config': 'api/all=true',
  'service-account-issuer': cluster.api_url,
  'service-account-key-file': pki ~ '/service-account.pub',
  'service-account-signing-key-file': pki ~ '/service-account-key.pem',
  'service-cluster-ip-range': cluster.service_cidrs,
  'service-node-port-range': '30000-32767',
  'shutdown-delay-duration': '5s',
  'tls-cert-file': pki ~ '/kube-apiserver.pem',
  'tls-private-key-file': pki ~ '/kube-apiserver-key.pem',
  'v': 2,
} %}
{%- do apiserver.update(cp.apiserver.args) %}
{{ service('kube-apiserver', paths.bin_dir ~ '/kube-apiserver', apiserver, paths, cluster.manager,
           watch=pki_watch(['ca.pem', 'kube-apiserver.pem', 'kube-apiserver-key.pem', 'kube-apiserver-etcd-client.pem',
                            'kube-apiserver-etcd-client-key.pem', 'kube-apiserver-kubelet-client.pem',
                            'kube-apiserver-kubelet-client-key.pem', 'front-proxy-client.pem', 'front-proxy-client-key.pem',
                            'service-account.pub', 'service-account-key.pem', 'encryption-config.yaml']) | load_json,
           runnable=cluster.have['kube-apiserver']) }}
{%- set apiserver_running = running('kube-apiserver', cluster.manager) %}
{%- if apiserver_running and cluster.have['kube-apiserver'] and cluster.have.kubectl %}

{#- A (re)started API server is ready, and has been long enough for the
    load balancers' rise (2 checks 1 s apart), before the run goes on: the
    rotation restarts the masters one at a time, and the next may go only
    once this one serves again. #}
{%- set local_readyz = paths.bin_dir ~ '/kubectl --kubeconfig=' ~ pki ~ '/admin.kubeconfig --server=https://127.0.0.1:' ~ k.api.port ~ ' --request-timeout=5s get --raw /readyz' %}

kubernetes-kube-apiserver-ready:
  cmd.run:
    - name: {{ (local_readyz ~ ' && sleep 3') | yaml_squote }}
    - retry:
        attempts: 60
        interval: 2
    - onchanges:
      - {{ apiserver_running }}
{%- endif %}

{#- kube-controller-manager: planned mode keeps node CIDR allocation off
    (kubesalt plans); controller mode lets it allocate from the cluster CIDR. #}
{%- set kcm_kubeconfig = pki ~ '/kube-controller-manager.kubeconfig' %}
{%- set kcm = {
  'bind-address': '127.0.0.1',
  'cluster-name': k.cluster_name,
  'kubeconfig': kcm_kubeconfig,
  'authentication-kubeconfig': kcm_kubeconfig,
  'authorization-kubeconfig': kcm_kubeconfig,
  'leader-elect': true,
  'root-ca-file': pki ~ '/ca.pem',
  'service-account-private-key-file': pki ~ '/service-account-key.pem',
  'service-cluster-ip-range': cluster.service_cidrs,
  'use-service-account-credentials': true,
  'controllers': '*,-csrsigning',
  'v': 2,
} %}
{%- if k.mode == 'controller' %}
{%-   do kcm.update({'allocate-node-cidrs': true, 'cluster-cidr': cluster.cluster_cidrs,
                     'node-cidr-mask-size-ipv4': k.network.node_cidr_mask_size_ipv4}) %}
{%-   if cluster.dual_stack %}
{%-     do kcm.update({'node-cidr-mask-size-ipv6': k.network.node_cidr_mask_size_ipv6}) %}
{%-   endif %}
{%- else %}
{%-   do kcm.update({'allocate-node-cidrs': false}) %}
{%- endif %}
{%- do kcm.update(cp.controller_manager.args) %}
{{ service('kube-controller-manager', paths.bin_dir ~ '/kube-controller-manager', kcm, paths, cluster.manager,
           watch=pki_watch(['ca.pem', 'kube-controller-manager.kubeconfig', 'service-account-key.pem']) | load_json,
           runnable=cluster.have['kube-controller-manager']) }}

{#- kube-scheduler: its own KubeSchedulerConfiguration with leader election. #}
{%- set scheduler_config = paths.config_dir ~ '/kube-scheduler.yaml' %}

kubernetes-kube-scheduler-config:
  file.serialize:
    - name: {{ scheduler_config }}
    - serializer: yaml
    - makedirs: True
    - dataset:
        apiVersion: kubescheduler.config.k8s.io/v1
        kind: KubeSchedulerConfiguration
        clientConnection:
          kubeconfig: {{ pki }}/kube-scheduler.kubeconfig
        leaderElection:
          leaderElect: true
{%- set sched = {'config': scheduler_config, 'v': 2} %}
{%- do sched.update(cp.scheduler.args) %}
{{ service('kube-scheduler', paths.bin_dir ~ '/kube-scheduler', sched, paths, cluster.manager,
           watch=(['file: kubernetes-kube-scheduler-config'] + (pki_watch(['ca.pem', 'kube-scheduler.kubeconfig']) | load_json)),
           runnable=cluster.have['kube-scheduler']) }}

{#- The RBAC that lets the API server (user kube-apiserver-kubelet-client)
    reach the kubelets' API: logs, exec, metrics. Applied by the first master
    once the API answers; `kubectl diff` keeps it idempotent. #}
{%- set rbac = paths.config_dir ~ '/rbac-apiserver-to-kubelet.yaml' %}
{%- set kubectl = paths.bin_dir ~ '/kubectl --kubeconfig=' ~ pki ~ '/admin.kubeconfig --request-timeout=10s' %}

kubernetes-rbac-apiserver-to-kubelet-file:
  file.managed:
    - name: {{ rbac }}
    - makedirs: True
    - contents: |
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata:
          name: system:kube-apiserver-to-kubelet
          labels:
            kubernetes.io/bootstrapping: rbac-defaults
        rules:
          - apiGroups: [""]
            resources: [nodes/proxy, nodes/stats, nodes/log, nodes/spec, nodes/metrics]
            verbs: ["*"]
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRoleBinding
        metadata:
          name: system:kube-apiserver
        roleRef:
          apiGroup: rbac.authorization.k8s.io
          kind: ClusterRole
          name: system:kube-apiserver-to-kubelet
        subjects:
          - apiGroup: rbac.authorization.k8s.io
            kind: User
            name: kube-apiserver-kubelet-client
{%- if me.is_first_master %}

{#- The checks are in the command (stateful), not an onlyif or unless:
    see service.jinja, checked_stop. #}
{%- set api_ready = 'test -x ' ~ paths.bin_dir ~ '/kubectl && ' ~ kubectl ~ ' get --raw /readyz >/dev/null 2>&1' %}
{%- set not_ready = "echo \"changed=no comment='the API server is not ready: a later run applies the RBAC'\"; exit 0" %}
{%- set same = "echo \"changed=no comment='the RBAC is applied'\"; exit 0" %}

kubernetes-rbac-apiserver-to-kubelet:
  cmd.run:
    - name: |
        {{ api_ready }} || { {{ not_ready }}; }
        {{ kubectl }} diff -f {{ rbac }} >/dev/null && { {{ same }}; }
        {{ kubectl }} apply -f {{ rbac }} >&2 || exit 1
        echo "changed=yes comment='the RBAC applied'"
    - stateful:
      - test_name: |
          {{ api_ready }} || { {{ not_ready }}; }
          {{ kubectl }} diff -f {{ rbac }} >/dev/null && { {{ same }}; }
          echo "changed=yes comment='the RBAC would be applied'"
    - require:
      - file: kubernetes-rbac-apiserver-to-kubelet-file
{%- endif %}
{%- endif %}
