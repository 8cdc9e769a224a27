{#- On the CA host (the Salt master's own minion, kubernetes:ca:minion): the
    CA and every certificate, kubeconfig and key the definition asks for,
    issued and renewed by `kubesalt pki issue` in kubernetes:ca:dir, the
    directory the kubesalt ext_pillar bundles from. The CA key stays there.
    With kubernetes:ca:rotation:enabled, a schedule renews and distributes
    them before they expire (kubesalt_pki.rotate, orch.kubernetes.rotate). -#}
{%- from "kubernetes/map.jinja" import k with context %}

kubernetes-certificates:
  kubesalt_pki.certificates_issued:
    - pki_dir: {{ k.ca.dir }}
    {%- if k.pki is defined and k.pki.get('renew_before') %}
    - renew_before: {{ k.pki.renew_before }}
    {%- endif %}

{%- set rotation = k.ca.rotation %}
{%- set offline = salt['config.get']('file_client') == 'local' %}
{%- if rotation.enabled %}

kubernetes-certificates-rotation-schedule:
  schedule.present:
    - name: kubesalt-pki-rotate
    - function: kubesalt_pki.rotate
    - job_kwargs:
        pki_dir: {{ k.ca.dir }}
        retry_after: {{ rotation.retry_after }}
        {%- if k.pki is defined and k.pki.get('renew_before') %}
        renew_before: {{ k.pki.renew_before }}
        {%- endif %}
    - seconds: {{ rotation.interval }}
    {#- Masterless: no minion daemon answers the schedule's events; write
        its file, which the minion reads at start. #}
    - offline: {{ offline }}
    - require:
      - kubesalt_pki: kubernetes-certificates
{%- else %}

kubernetes-certificates-rotation-schedule:
  schedule.absent:
    - name: kubesalt-pki-rotate
    - offline: {{ offline }}
{%- endif %}
