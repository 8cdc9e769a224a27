// Package addons makes the cluster's add-ons from its definition and
// applies them through the API with kubectl: the cluster DNS (CoreDNS) at
// kubernetes:network:cluster_dns.
package addons

import (
	"fmt"
	"strings"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// DNSName names every object of the DNS add-on. "kube-dns" is the
// Service's name and the pods' k8s-app label everywhere else (kubeadm,
// Kubernetes The Hard Way), which tools look for.
const (
	DNSName    = "coredns"
	DNSService = "kube-dns"
	DNSLabel   = "kube-dns"
)

// Corefile is CoreDNS's configuration for d: the cluster domain and the
// reverse zones from the API, everything else forwarded (when d says
// where), all of it cached.
func Corefile(d *cluster.Definition) string {
	var b strings.Builder
	b.WriteString(".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n")
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n", d.Domain)
	if len(d.DNS.Forward) > 0 {
		fmt.Fprintf(&b, "    forward . %s {\n        max_concurrent 1000\n    }\n", strings.Join(d.DNS.Forward, " "))
	}
	b.WriteString("    cache 30\n    loop\n    reload\n    loadbalance\n}\n")
	return b.String()
}

// DNSManifests are the add-on's objects as one YAML stream, in the order
// they are applied: the ServiceAccount and its RBAC, the Corefile, the
// Deployment (its replicas spread over the nodes, one per node where it
// can) and the Service at the cluster DNS address.
func DNSManifests(d *cluster.Definition) (string, error) {
	if !d.Network.ClusterDNS.IsValid() {
		return "", fmt.Errorf("kubernetes:network:cluster_dns is empty: give the DNS Service's address in the service CIDR (e.g. 10.32.0.10), the address the kubelets hand to pods")
	}
	// The Service's family follows its address; on a dual-stack cluster
	// the API server adds the other family's address itself.
	policy := "SingleStack"
	if len(d.Network.ServiceCIDRs) > 1 {
		policy = "PreferDualStack"
	}
	corefile := indent(Corefile(d), "    ")
	return fmt.Sprintf(dnsTemplate, DNSName, DNSService, DNSLabel, d.DNS.Image, d.DNS.Replicas,
		corefile, d.Network.ClusterDNS, policy), nil
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return pre + strings.Join(lines, "\n"+pre)
}

// The objects follow CoreDNS's own deployment for Kubernetes
// (coredns/deployment, kubernetes/coredns.yaml.sed), trimmed to what
// these plugins need.
const dnsTemplate = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: %[1]s
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:%[1]s
  labels:
    kubernetes.io/bootstrapping: rbac-defaults
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:%[1]s
  labels:
    kubernetes.io/bootstrapping: rbac-defaults
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:%[1]s
subjects:
  - kind: ServiceAccount
    name: %[1]s
    namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s
  namespace: kube-system
data:
  Corefile: |
%[6]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: kube-system
  labels:
    k8s-app: %[3]s
spec:
  replicas: %[5]d
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  selector:
    matchLabels:
      k8s-app: %[3]s
  template:
    metadata:
      labels:
        k8s-app: %[3]s
    spec:
      priorityClassName: system-cluster-critical
      serviceAccountName: %[1]s
      tolerations:
        - key: CriticalAddonsOnly
          operator: Exists
      nodeSelector:
        kubernetes.io/os: linux
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              k8s-app: %[3]s
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    k8s-app: %[3]s
      dnsPolicy: Default
      containers:
        - name: coredns
          image: %[4]s
          imagePullPolicy: IfNotPresent
          args: [-conf, /etc/coredns/Corefile]
          resources:
            limits:
              memory: 170Mi
            requests:
              cpu: 100m
              memory: 70Mi
          volumeMounts:
            - name: config-volume
              mountPath: /etc/coredns
              readOnly: true
          ports:
            - {name: dns, containerPort: 53, protocol: UDP}
            - {name: dns-tcp, containerPort: 53, protocol: TCP}
            - {name: metrics, containerPort: 9153, protocol: TCP}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              add: [NET_BIND_SERVICE]
              drop: [ALL]
            readOnlyRootFilesystem: true
          livenessProbe:
            httpGet: {path: /health, port: 8080, scheme: HTTP}
            initialDelaySeconds: 60
            timeoutSeconds: 5
            successThreshold: 1
            failureThreshold: 5
          readinessProbe:
            httpGet: {path: /ready, port: 8181, scheme: HTTP}
            periodSeconds: 2
      volumes:
        - name: config-volume
          configMap:
            name: %[1]s
            items:
              - key: Corefile
                path: Corefile
---
apiVersion: v1
kind: Service
metadata:
  name: %[2]s
  namespace: kube-system
  labels:
    k8s-app: %[3]s
    kubernetes.io/name: CoreDNS
spec:
  selector:
    k8s-app: %[3]s
  clusterIP: %[7]s
  ipFamilyPolicy: %[8]s
  ports:
    - {name: dns, port: 53, protocol: UDP}
    - {name: dns-tcp, port: 53, protocol: TCP}
    - {name: metrics, port: 9153, protocol: TCP}
`
