{#- kubesalt/pillar/changed: the cluster definition changed (a node added
    to or removed from pillar). Fire it after editing the pillar:
      salt-run event.send kubesalt/pillar/changed
    Every node's routes follow the new plan; a removed node's routes go. -#}

kubesalt-pillar-changed:
  runner.state.orchestrate:
    - args:
      - mods: orch.kubernetes.pillar_changed
