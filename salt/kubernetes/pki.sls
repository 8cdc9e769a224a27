{#- Certificates, keys and kubeconfigs from this minion's own PKI bundle
    (the kubesalt ext_pillar: `kubesalt pki bundle --node <this node>`),
    each with the bundle's mode (keys and kubeconfigs 0600). The CA key is in
    no bundle. Services watch the files they use (service.jinja). -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}

kubernetes-pki-dir:
  file.directory:
    - name: {{ cluster.pki }}
    - mode: '0700'
    - makedirs: True

{%- if cluster.bundle %}
{%- for file in cluster.bundle | sort %}
{%-   set f = cluster.bundle[file] %}

kubernetes-pki-{{ file }}:
  file.managed:
    - name: {{ cluster.pki }}/{{ file }}
    - contents: {{ f.contents | json }}
    - mode: '{{ f.mode }}'
    - show_changes: False
    - require:
      - file: kubernetes-pki-dir
{%- endfor %}
{%- else %}

kubernetes-pki-no-bundle:
  test.fail_without_changes:
    - name: >-
        no PKI bundle for {{ me.name }} in pillar {{ k.ext_pillar.key }}:pki:files;
        configure the kubesalt ext_pillar on the master (salt/master.d/kubesalt.conf),
        issue the certificates (salt-run state.orchestrate orch.kubernetes.bootstrap)
        and refresh this minion's pillar
{%- endif %}
