{#- Binaries: kubesalt's own, and this role's Kubernetes, etcd, containerd,
    runc and CNI plugin binaries, from release URLs checked by sha256 or,
    for the lab and the tests, from a local directory. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, local_exists with context %}
{%- set b = k.binaries %}
{%- set wanted = b.roles.get(me.role, []) %}

kubernetes-bin-dirs:
  file.directory:
    - names:
      - {{ paths.bin_dir }}
      - {{ paths.cni_bin_dir }}
    - makedirs: True

{%- if b.source == 'local' %}
{%- set missing = [] %}
{%- for name in ['kubesalt'] + wanted %}
{%-   set src = cluster.local_src[name] %}
{%-   if local_exists(src) | load_json %}

kubernetes-bin-{{ name }}:
  file.managed:
    - name: {{ paths.bin_dir }}/{{ name }}
    - source: {{ src }}
    - mode: '0755'
    {%- if name == 'kubesalt' %}
    {#- The kubesalt_* modules load only where the binary is: reload them
        once it is installed, for the states later in this same run. #}
    - reload_modules: True
    {%- endif %}
    - require:
      - file: kubernetes-bin-dirs
{%-   else %}{% do missing.append(src[b.local_dir | length + 1:]) %}
{%-   endif %}
{%- endfor %}
{%- if me.role == 'worker' %}
{%-   for name in b.cni_plugins %}
{%-     set src = b.local_dir ~ '/cni/' ~ name %}
{%-     if local_exists(src) | load_json %}

kubernetes-cni-bin-{{ name }}:
  file.managed:
    - name: {{ paths.cni_bin_dir }}/{{ name }}
    - source: {{ src }}
    - mode: '0755'
    - require:
      - file: kubernetes-bin-dirs
{%-     else %}{% do missing.append('cni/' ~ name) %}
{%-     endif %}
{%-   endfor %}
{%- endif %}
{%- if missing %}

kubernetes-bin-missing:
  test.show_notification:
    - text: "not in {{ b.local_dir }} (binaries:source local), so not installed, and what needs them is not started: {{ missing | join(', ') }}"
{%- endif %}

{%- else %}
{%- set fmt = {'arch': b.arch} %}

kubernetes-bin-kubesalt:
  file.managed:
    - name: {{ paths.bin_dir }}/kubesalt
    - source: {{ b.kubesalt.source }}
    {%- if b.kubesalt.sha256 %}
    - source_hash: {{ b.kubesalt.sha256 }}
    {%- endif %}
    - mode: '0755'
    - reload_modules: True
    - require:
      - file: kubernetes-bin-dirs

{#- Plain Kubernetes binaries, one URL each. #}
{%- set rel = b.release.kubernetes %}
{%- for name in wanted if name.startswith('kube') %}
{%-   set url = rel.url | replace('{version}', k.versions.kubernetes) | replace('{arch}', b.arch) | replace('{name}', name) %}
{%-   set sha = rel.sha256 | replace('{version}', k.versions.kubernetes) | replace('{arch}', b.arch) | replace('{name}', name) %}

kubernetes-bin-{{ name }}:
  file.managed:
    - name: {{ paths.bin_dir }}/{{ name }}
    - source: {{ url }}
    - source_hash: {{ sha }}
    - mode: '0755'
    - require:
      - file: kubernetes-bin-dirs
{%- endfor %}

{%- macro release(component, version) -%}
{%- set r = b.release[component] -%}
{{- {'url': r.url | replace('{version}', version) | replace('{arch}', b.arch),
     'sha256': r.sha256 | replace('{version}', version) | replace('{arch}', b.arch)} | json -}}
{%- endmacro %}

{%- if 'etcd' in wanted %}
{%-   set r = release('etcd', k.versions.etcd) | load_json %}
{%-   set top = 'etcd-' ~ k.versions.etcd ~ '-linux-' ~ b.arch %}

kubernetes-bin-etcd-archive:
  archive.extracted:
    - name: {{ paths.root }}/opt/kubesalt/etcd-{{ k.versions.etcd }}
    - source: {{ r.url }}
    - source_hash: {{ r.sha256 }}
    - source_hash_name: {{ top }}.tar.gz
    - enforce_toplevel: True
{%-   for name in ['etcd', 'etcdctl', 'etcdutl'] if name in wanted %}

kubernetes-bin-{{ name }}:
  file.copy:
    - name: {{ paths.bin_dir }}/{{ name }}
    - source: {{ paths.root }}/opt/kubesalt/etcd-{{ k.versions.etcd }}/{{ top }}/{{ name }}
    - force: True
    - mode: '0755'
    - onchanges:
      - archive: kubernetes-bin-etcd-archive
{%-   endfor %}
{%- endif %}

{%- if 'containerd' in wanted %}
{%-   set r = release('containerd', k.versions.containerd) | load_json %}

kubernetes-bin-containerd:
  archive.extracted:
    - name: {{ salt['file.dirname'](paths.bin_dir) }}
    - source: {{ r.url }}
    - source_hash: {{ r.sha256 }}
    - enforce_toplevel: False
    - overwrite: True
    - if_missing: {{ paths.bin_dir }}/containerd
{%- endif %}

{%- if 'runc' in wanted %}
{%-   set r = release('runc', k.versions.runc) | load_json %}

kubernetes-bin-runc:
  file.managed:
    - name: {{ paths.bin_dir }}/runc
    - source: {{ r.url }}
    - source_hash: {{ r.sha256 }}
    - source_hash_name: runc.{{ b.arch }}
    - mode: '0755'
{%- endif %}

{%- if me.role == 'worker' %}
{%-   set r = release('cni_plugins', k.versions.cni_plugins) | load_json %}

kubernetes-cni-plugins:
  archive.extracted:
    - name: {{ paths.cni_bin_dir }}
    - source: {{ r.url }}
    - source_hash: {{ r.sha256 }}
    - enforce_toplevel: False
    - if_missing: {{ paths.cni_bin_dir }}/bridge
{%- endif %}
{%- endif %}
