{#- On the CA host (the Salt master's own minion, kubernetes:ca:minion): the
    CA and every certificate, kubeconfig and key the definition asks for,
    issued and renewed by `kubesalt pki issue` in kubernetes:ca:dir, the
    directory the kubesalt ext_pillar bundles from. The CA key stays there. -#}
{%- from "kubernetes/map.jinja" import k with context %}

kubernetes-certificates:
  kubesalt_pki.certificates_issued:
    - pki_dir: {{ k.ca.dir }}
    {%- if k.pki is defined and k.pki.get('renew_before') %}
    - renew_before: {{ k.pki.renew_before }}
    {%- endif %}
