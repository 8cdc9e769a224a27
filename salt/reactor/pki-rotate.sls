{#- kubesalt/pki/rotate (data: nodes), fired by the CA minion's rotation
    schedule (kubesalt_pki.rotate) after `kubesalt pki rotate` reissued
    certificates: those nodes take their new bundle. The sender's id goes
    along; the orchestration acts only for the CA minion. -#}

kubesalt-pki-rotate:
  runner.state.orchestrate:
    - args:
      - mods: orch.kubernetes.rotate
      - pillar:
          {#- A minion's event.send nests its payload under data. #}
          nodes: {{ (data.get('nodes') or (data.get('data') or {}).get('nodes') or []) | json }}
          sender: {{ data.get('id', '') | json }}
