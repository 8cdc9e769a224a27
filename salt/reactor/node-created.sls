{#- salt/cloud/*/created (data: name) and kubesalt/virt/*/created (data:
    node): a new VM is a new node; add_node waits for its minion, then gives
    it a CIDR, certificates, its highstate and routes everywhere. -#}
{%- set node = data.get('node') or data.get('name') or tag.split('/')[2] %}

kubesalt-add-node-{{ node }}:
  runner.state.orchestrate:
    - args:
      - mods: orch.kubernetes.add_node
      - pillar:
          node: {{ node }}
