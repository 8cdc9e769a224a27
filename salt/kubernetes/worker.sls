{#- The node components on the workers: containerd and runc, the CNI bridge
    whose host-local range is this node's pod CIDR (no ipMasq: pod-to-pod
    traffic keeps its source address; network.sls masquerades only what
    leaves the cluster CIDR), kubelet and kube-proxy. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, pki_watch with context %}
{%- from "kubernetes/service.jinja" import service, running with context %}
{%- set pki = cluster.pki %}
{%- set w = k.worker %}
{%- set cgroup_driver = 'systemd' if cluster.manager == 'systemd' else 'cgroupfs' %}
{%- set containerd_sock = paths.containerd_state ~ '/containerd.sock' %}
{%- set ctr = paths.bin_dir ~ '/ctr --address ' ~ containerd_sock ~ ' --namespace k8s.io' %}
{%- set cgroup_root = w.kubelet.cgroup_root | replace('{node}', me.name) %}

include:
  - kubernetes.binaries
  - kubernetes.pki

{%- if me.role != 'worker' %}

kubernetes-worker-not-here:
  test.nop:
    - name: the node components run on the workers only; {{ me.name }} is a {{ me.role or 'node without a role' }}
{%- else %}

{#- CNI: the bridge plugin with host-local IPAM on this node's pod CIDR(s). #}
{%- if me.pod_cidrs %}
{%- set ranges = [] %}
{%- set routes = [] %}
{%- for c in me.pod_cidrs %}
{%-   do ranges.append([{'subnet': c}]) %}
{%-   do routes.append({'dst': '::/0' if ':' in c else '0.0.0.0/0'}) %}
{%- endfor %}
{%- set conflist = {
  'cniVersion': '1.0.0',
  'name': 'kubesalt',
  'plugins': [
    {'type': 'bridge', 'bridge': w.cni_bridge, 'isGateway': true, 'ipMasq': false,
     'hairpinMode': true,
     'ipam': {'type': 'host-local', 'ranges': ranges, 'routes': routes}},
    {'type': 'portmap', 'capabilities': {'portMappings': true}},
  ],
} %}

kubernetes-cni-bridge:
  file.serialize:
    - name: {{ paths.cni_conf_dir }}/10-kubesalt-bridge.conflist
    - serializer: json
    - makedirs: True
    - dataset: {{ conflist | json }}

kubernetes-cni-loopback:
  file.serialize:
    - name: {{ paths.cni_conf_dir }}/99-loopback.conf
    - serializer: json
    - makedirs: True
    - dataset: {"cniVersion": "1.1.0", "name": "lo", "type": "loopback"}
{%- elif k.mode == 'controller' %}

{#- Expected until the node has registered and the controller manager gave
    it a CIDR: the next run writes the CNI config. #}
kubernetes-cni-no-pod-cidr:
  test.show_notification:
    - text: >-
        {{ me.name }} has no pod CIDR yet: in controller mode the masters' mine
        function kubesalt_nodes reports it once the node has registered; the
        next run writes the CNI config
{%- else %}

kubernetes-cni-no-pod-cidr:
  test.fail_without_changes:
    - name: >-
        {{ me.name }} has no pod CIDR: the kubesalt ext_pillar gives it
        ({{ k.ext_pillar.key }}:pod_cidrs); check the master's log for the
        ext_pillar's error and refresh this minion's pillar
{%- endif %}

{#- containerd with runc; cgroup driver matching the kubelet's. containerd 2
    reads config version 3, where the CRI plugin is split in two (images,
    runtime); containerd 1.x only version 2. #}
{%- set runc_options = {'BinaryName': paths.bin_dir ~ '/runc', 'SystemdCgroup': cgroup_driver == 'systemd'} %}

kubernetes-containerd-config:
  file.managed:
    - name: {{ paths.containerd_dir }}/config.toml
    - makedirs: True
    - contents: |
{%- if (k.versions.containerd | string).lstrip('v').startswith('1.') %}
        version = 2
        root = "{{ paths.containerd_root }}"
        state = "{{ paths.containerd_state }}"
        [grpc]
          address = "{{ containerd_sock }}"
        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "{{ w.containerd.sandbox_image }}"
          restrict_oom_score_adj = {{ 'true' if w.containerd.restrict_oom_score_adj else 'false' }}
          [plugins."io.containerd.grpc.v1.cri".containerd]
            snapshotter = "overlayfs"
            default_runtime_name = "runc"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
            runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = "{{ runc_options.BinaryName }}"
            SystemdCgroup = {{ runc_options.SystemdCgroup | lower }}
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "{{ paths.cni_bin_dir }}"
            conf_dir = "{{ paths.cni_conf_dir }}"
{%- else %}
        version = 3
        root = "{{ paths.containerd_root }}"
        state = "{{ paths.containerd_state }}"
        [grpc]
          address = "{{ containerd_sock }}"
        [plugins."io.containerd.cri.v1.images"]
          snapshotter = "overlayfs"
          [plugins."io.containerd.cri.v1.images".pinned_images]
            sandbox = "{{ w.containerd.sandbox_image }}"
        [plugins."io.containerd.cri.v1.runtime"]
          restrict_oom_score_adj = {{ 'true' if w.containerd.restrict_oom_score_adj else 'false' }}
          [plugins."io.containerd.cri.v1.runtime".containerd]
            default_runtime_name = "runc"
            [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
              [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
                BinaryName = "{{ runc_options.BinaryName }}"
                SystemdCgroup = {{ runc_options.SystemdCgroup | lower }}
          [plugins."io.containerd.cri.v1.runtime".cni]
            bin_dirs = ["{{ paths.cni_bin_dir }}"]
            conf_dir = "{{ paths.cni_conf_dir }}"
{%- endif %}
{{ service('containerd', paths.bin_dir ~ '/containerd', {'config': paths.containerd_dir ~ '/config.toml'}, paths, cluster.manager,
           watch=['file: kubernetes-containerd-config'], runnable=cluster.have.containerd) }}

{#- Bridged pod traffic passes iptables, so that a pod reaches a Service
    whose endpoint is on its own bridge (kube-proxy's DNAT, undone on the
    way back). Needs br_netfilter: where it is not loaded, say so. #}
{%- if salt['file.directory_exists']('/proc/sys/net/bridge') %}

kubernetes-bridge-nf-call-iptables:
  sysctl.present:
    - name: net.bridge.bridge-nf-call-iptables
    - value: 1
    - config: {{ paths.sysctl_conf }}
{%- else %}

kubernetes-bridge-nf-call-iptables:
  test.show_notification:
    - text: "br_netfilter is not loaded (no /proc/sys/net/bridge): a pod cannot reach a Service through an endpoint on its own node; modprobe br_netfilter"
{%- endif %}

{#- Images for clusters without a registry: imported into containerd
    before the kubelet starts, again when the tarball's manifest changes. #}
{%- set kubelet_require = [] %}
{%- set containerd_running = running('containerd', cluster.manager) %}
{%- for img in w.images if containerd_running and cluster.have.ctr %}

{%- set imported = "want=$(tar -xOf " ~ img.tarball ~ " index.json | grep -o 'sha256:[0-9a-f]\\{64\\}' | head -1)\n" ~ ctr ~ " images ls 'name==" ~ img.ref ~ "' | grep -qF \"$want\"" %}

{#- The check is in the command (stateful), not an unless: see
    service.jinja, checked_stop. #}
kubernetes-image-{{ img.ref }}:
  cmd.run:
    - name: |
        if {{ imported | indent(8) }}; then echo "changed=no comment='{{ img.ref }} is imported'"; exit 0; fi
        {{ ctr }} images import {{ img.tarball }} >&2 || exit 1
        echo "changed=yes comment='{{ img.ref }} imported'"
    - stateful:
      - test_name: |
          if {{ imported | indent(10) }}; then echo "changed=no comment='{{ img.ref }} is imported'"; else echo "changed=yes comment='{{ img.ref }} would be imported'"; fi
    {#- containerd opens its socket a moment after it starts. #}
    - retry:
        attempts: 15
        interval: 1
    - require:
      - {{ containerd_running }}
{%-   do kubelet_require.append('cmd: kubernetes-image-' ~ img.ref) %}
{%- endfor %}
{%- if cgroup_root and cgroup_driver == 'cgroupfs' %}

{#- The kubelet refuses a cgroupRoot that does not exist in every
    hierarchy (cgroup v1) or in the unified one (v2). #}
{#- The check is in the command (stateful), not an unless: see
    service.jinja, checked_stop. #}
{%- set have_root = 'have_root() {\n  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then test -d /sys/fs/cgroup' ~ cgroup_root ~ '; return; fi\n  for d in /sys/fs/cgroup/*/; do [ ! -e "$d/cgroup.procs" ] || [ -d "${d}' ~ (cgroup_root | trim('/')) ~ '" ] || return 1; done\n}' %}
kubernetes-kubelet-cgroup-root:
  cmd.run:
    - name: |
        {{ have_root | indent(8) }}
        if have_root; then echo "changed=no comment='{{ cgroup_root }} exists'"; exit 0; fi
        if [ -e /sys/fs/cgroup/cgroup.controllers ]; then mkdir -p /sys/fs/cgroup{{ cgroup_root }} || exit 1
        else for d in /sys/fs/cgroup/*/; do [ -e "$d/cgroup.procs" ] && mkdir -p "${d}{{ cgroup_root | trim('/') }}"; done; fi
        have_root || exit 1
        echo "changed=yes comment='{{ cgroup_root }} made in every hierarchy'"
    - stateful:
      - test_name: |
          {{ have_root | indent(10) }}
          if have_root; then echo "changed=no comment='{{ cgroup_root }} exists'"; else echo "changed=yes comment='{{ cgroup_root }} would be made'"; fi
{%-   do kubelet_require.append('cmd: kubernetes-kubelet-cgroup-root') %}
{%- endif %}

{#- kubelet: its KubeletConfiguration, kubeconfig and certificates. #}
{%- set kubelet_config = {
  'apiVersion': 'kubelet.config.k8s.io/v1beta1',
  'kind': 'KubeletConfiguration',
  'address': '0.0.0.0',
  'authentication': {
    'anonymous': {'enabled': false},
    'webhook': {'enabled': true},
    'x509': {'clientCAFile': pki ~ '/ca.pem'},
  },
  'authorization': {'mode': 'Webhook'},
  'cgroupDriver': cgroup_driver,
  'clusterDomain': k.cluster_domain,
  'clusterDNS': cluster.cluster_dns,
  'containerRuntimeEndpoint': 'unix://' ~ containerd_sock,
  'podCIDR': me.pod_cidrs[0] if me.pod_cidrs else '',
  'resolvConf': '/etc/resolv.conf',
  'runtimeRequestTimeout': '15m',
  'tlsCertFile': pki ~ '/kubelet.pem',
  'tlsPrivateKeyFile': pki ~ '/kubelet-key.pem',
  'registerNode': true,
} %}
{%- if cgroup_root %}
{%-   do kubelet_config.update({'cgroupRoot': cgroup_root}) %}
{%- endif %}
{%- set kubelet_config = salt['slsutil.merge'](kubelet_config, w.kubelet.config, strategy='recurse') %}

kubernetes-kubelet-config:
  file.serialize:
    - name: {{ paths.kubelet_dir }}/kubelet-config.yaml
    - serializer: yaml
    - makedirs: True
    - dataset: {{ kubelet_config | json }}
{%- set kubelet_args = {
  'config': paths.kubelet_dir ~ '/kubelet-config.yaml',
  'kubeconfig': pki ~ '/kubelet.kubeconfig',
  'node-ip': me.ips,
  'hostname-override': me.name,
  'root-dir': paths.kubelet_dir,
  'v': 2,
} %}
{%- do kubelet_args.update(w.kubelet.args) %}
{{ service('kubelet', paths.bin_dir ~ '/kubelet', kubelet_args, paths, cluster.manager,
           watch=(['file: kubernetes-kubelet-config'] + (pki_watch(['ca.pem', 'kubelet.pem', 'kubelet-key.pem', 'kubelet.kubeconfig']) | load_json)),
           runnable=cluster.have.kubelet and cluster.have.containerd, require=kubelet_require) }}
{%- set kubelet_running = running('kubelet', cluster.manager) %}
{%- if kubelet_running and cluster.have.kubelet and cluster.have.containerd and cluster.have.kubectl %}

{#- The first master sets Node.spec.podCIDR once the node has registered
    (network.sls); in controller mode the controller manager allocates it.
    Waiting here lets the orchestrations run what needs it next. #}
{%- set node_kubectl = paths.bin_dir ~ '/kubectl --kubeconfig=' ~ pki ~ '/kubelet.kubeconfig --request-timeout=5s get node ' ~ me.name %}
{%- set registered = 'test -n "$(' ~ node_kubectl ~ " -o jsonpath='{.spec.podCIDR}')\"" if k.mode == 'controller' else node_kubectl ~ ' -o name' %}

{#- Waits by retrying, and reports no change: registering is the kubelet's.
    Not an unless: see service.jinja, checked_stop. #}
{%- set registered_check = registered ~ " >/dev/null && echo \"changed=no comment='" ~ me.name ~ " is registered'\"" %}
kubernetes-kubelet-registered:
  cmd.run:
    - name: {{ registered_check | yaml_squote }}
    - stateful:
      - test_name: {{ (registered_check ~ " || echo \"changed=no comment='" ~ me.name ~ " is not registered yet: the kubelet registers it'\"") | yaml_squote }}
    - retry:
        attempts: 60
        interval: 2
    - require:
      - {{ kubelet_running }}
{%- endif %}

{#- kube-proxy: clusterCIDR tells it which traffic is pod traffic. #}
{%- set proxy_config = {
  'apiVersion': 'kubeproxy.config.k8s.io/v1alpha1',
  'kind': 'KubeProxyConfiguration',
  'clientConnection': {'kubeconfig': pki ~ '/kube-proxy.kubeconfig'},
  'mode': w.kube_proxy.mode,
  'clusterCIDR': cluster.cluster_cidrs | join(','),
  'hostnameOverride': me.name,
} %}
{%- set proxy_config = salt['slsutil.merge'](proxy_config, w.kube_proxy.config, strategy='recurse') %}

kubernetes-kube-proxy-config:
  file.serialize:
    - name: {{ paths.config_dir }}/kube-proxy-config.yaml
    - serializer: yaml
    - makedirs: True
    - dataset: {{ proxy_config | json }}
{%- set proxy_args = {'config': paths.config_dir ~ '/kube-proxy-config.yaml', 'v': 2} %}
{%- do proxy_args.update(w.kube_proxy.args) %}
{{ service('kube-proxy', paths.bin_dir ~ '/kube-proxy', proxy_args, paths, cluster.manager,
           watch=(['file: kubernetes-kube-proxy-config'] + (pki_watch(['ca.pem', 'kube-proxy.kubeconfig']) | load_json)),
           runnable=cluster.have['kube-proxy']) }}
{%- endif %}
