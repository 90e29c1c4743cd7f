package deploy

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/fgstudio/fgstudio/queue"
)

// yamlDocs decodes every document of a YAML file into yaml.Nodes.
func yamlDocs(t testing.TB, rel string) []*yaml.Node {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readRepoFile(t, rel))))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		docs = append(docs, &n)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", rel)
	}
	return docs
}

// composeVar resolves the ${VAR:-default} interpolation of compose to its
// default; ${VAR:?error} (the user must set it) to "<VAR>".
var composeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}`)

func interpolate(s string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		g := composeVar.FindStringSubmatch(m)
		if g[2] == "-" {
			return g[3]
		}
		return "<" + g[1] + ">"
	})
}

type composeFile struct {
	Services map[string]composeService
	Volumes  map[string]any
}

type composeService struct {
	Image       string
	Build       *struct{ Context, Dockerfile string }
	Command     []string
	Environment map[string]string
	Expose      []string
	Ports       []string
	Volumes     []string
	Profiles    []string
	ReadOnly    bool   `yaml:"read_only"`
	StopGrace   string `yaml:"stop_grace_period"`
	DependsOn   any    `yaml:"depends_on"`
	Deploy      struct {
		Replicas  string
		Resources struct {
			Reservations struct {
				Devices []struct {
					Driver       string
					Count        int
					Capabilities []string
				}
			}
		}
	}
}

// studio reports whether the service runs the studio image.
func (s composeService) studio() bool {
	return s.Build != nil && strings.HasPrefix(s.Build.Dockerfile, "Dockerfile")
}

func loadCompose(t testing.TB) composeFile {
	t.Helper()
	docs := yamlDocs(t, "deploy/compose.yaml")
	var c composeFile
	if err := docs[0].Decode(&c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("deploy/compose.yaml: no services")
	}
	return c
}

// TestCompose: every studio service runs serve or worker with settings the
// binary knows, on the ports it listens on, against the compose Redis.
func TestCompose(t *testing.T) {
	c := loadCompose(t)
	known := envOptions(t)
	deployDir := filepath.Join(root(t), "deploy")
	var serves, workers, gpus int
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Services[name]
		if !s.studio() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(deployDir, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("build: %v", err)
			}
			if len(s.Command) != 1 {
				t.Fatalf("command %v, want [serve] or [worker]", s.Command)
			}
			cmd := s.Command[0]
			env := map[string]string{}
			for k, v := range s.Environment {
				o, ok := known[k]
				if !ok {
					t.Errorf("environment %s: not a setting of cmd/studio/config.go", k)
					continue
				}
				if !contains(o.Cmds, cmd) {
					t.Errorf("environment %s: studio %s does not read it", k, cmd)
				}
				env[k] = interpolate(v)
			}
			checkRedisURL(t, effective(t, "redis-url", cmd, env), func(host string, port int) bool {
				r, ok := c.Services[host]
				return ok && strings.HasPrefix(r.Image, "redis:") && port == 6379
			})
			var port int
			switch cmd {
			case "serve":
				serves++
				port = portOf(t, effective(t, "addr", cmd, env))
				if effective(t, "require-auth", cmd, env) != "true" {
					t.Error("serve reached from other machines without STUDIO_REQUIRE_AUTH=true")
				}
			case "worker":
				workers++
				port = portOf(t, effective(t, "admin-addr", cmd, env))
			default:
				t.Fatalf("command %v, want serve or worker", s.Command)
			}
			if !contains(s.Expose, strconv.Itoa(port)) {
				t.Errorf("expose %v, the process listens on %d", s.Expose, port)
			}
			grace := durationOf(t, s.StopGrace)
			if shutdown := durationOf(t, effective(t, "shutdown-timeout", cmd, env)); grace <= shutdown {
				t.Errorf("stop_grace_period %s is not longer than the shutdown timeout %s", grace, shutdown)
			}
			if env["STUDIO_PROVIDER"] == "cuda" {
				gpus++
				devs := s.Deploy.Resources.Reservations.Devices
				if s.Build.Dockerfile != "Dockerfile.cuda" || len(devs) != 1 || devs[0].Driver != "nvidia" || !contains(devs[0].Capabilities, "gpu") {
					t.Errorf("a cuda worker needs Dockerfile.cuda and an nvidia gpu device reservation: %+v", s)
				}
			}
			if !s.ReadOnly {
				t.Error("read_only is not set (the image writes nothing)")
			}
		})
	}
	if serves == 0 || workers == 0 || gpus == 0 {
		t.Errorf("compose has %d serve, %d worker and %d GPU worker services; want each", serves, workers, gpus)
	}

	// The load balancer in front of the API replicas.
	lb, ok := c.Services["lb"]
	if !ok {
		t.Fatal("no lb service")
	}
	var conf string
	for _, v := range lb.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if strings.HasPrefix(dst, "/etc/nginx/") {
			b, err := os.ReadFile(filepath.Join(deployDir, src))
			if err != nil {
				t.Fatalf("lb volume %s: %v", v, err)
			}
			conf = string(b)
		}
	}
	if conf == "" {
		t.Fatal("lb mounts no nginx configuration")
	}
	checkNginx(t, conf, c)
}

// checkNginx: the proxy sends to the API service on its port, and takes
// request bodies as large as the API does.
func checkNginx(t *testing.T, conf string, c composeFile) {
	t.Helper()
	ups := regexp.MustCompile(`http://([a-z0-9-]+):(\d+)`).FindAllStringSubmatch(conf, -1)
	if len(ups) == 0 {
		t.Fatal("nginx.conf proxies to no http://service:port")
	}
	for _, u := range ups {
		s, ok := c.Services[u[1]]
		if !ok || !s.studio() || s.Command[0] != "serve" {
			t.Errorf("nginx.conf proxies to %s, not a serve service", u[0])
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interpolate(v)
		}
		if p, _ := strconv.Atoi(u[2]); p != portOf(t, effective(t, "addr", "serve", env)) {
			t.Errorf("nginx.conf proxies to port %s; %s listens on %s", u[2], u[1], effective(t, "addr", "serve", env))
		}
		m := regexp.MustCompile(`client_max_body_size\s+(\d+)([kKmMgG]?);`).FindStringSubmatch(conf)
		if m == nil {
			t.Fatal("nginx.conf sets no client_max_body_size (nginx's default is 1m)")
		}
		n, _ := strconv.Atoi(m[1])
		n <<= map[string]int{"": 0, "k": 10, "K": 10, "m": 20, "M": 20, "g": 30, "G": 30}[m[2]]
		limit, _ := strconv.Atoi(effective(t, "body-limit", "serve", env))
		if n < limit {
			t.Errorf("nginx.conf client_max_body_size %s%s = %d bytes, below the API's body limit %d", m[1], m[2], n, limit)
		}
	}
}

// checkRedisURL: a valid redis:// URL whose host:port is the Redis of the
// deployment (ok says which).
func checkRedisURL(t *testing.T, raw string, ok func(host string, port int) bool) {
	t.Helper()
	if raw == "" {
		t.Error("REDIS_URL is empty: serve would run alone on the embedded queue, worker would not start")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		t.Errorf("REDIS_URL %q: want redis://host:port/db (%v)", raw, err)
		return
	}
	port, _ := strconv.Atoi(u.Port())
	if !ok(u.Hostname(), port) {
		t.Errorf("REDIS_URL %q does not point at the deployment's Redis", raw)
	}
}

// Kubernetes objects: the fields the checks read.

type k8sMeta struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   k8sMeta
	Data       map[string]string
	node       *yaml.Node
	file       string
}

type k8sContainer struct {
	Name    string
	Image   string
	Args    []string
	Command []string
	Env     []struct {
		Name      string
		Value     string
		ValueFrom *struct {
			SecretKeyRef    *struct{ Name, Key string } `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct{ Name, Key string } `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	}
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string
		ContainerPort int `yaml:"containerPort"`
	}
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string
		Limits   map[string]string
	}
	SecurityContext *struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string
		Port any
	} `yaml:"httpGet"`
	Exec      any
	TCPSocket any `yaml:"tcpSocket"`
}

type k8sWorkload struct {
	Spec struct {
		Replicas int
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		Template struct {
			Metadata k8sMeta
			Spec     struct {
				TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Tolerations []struct{ Key string }
				Containers  []k8sContainer
			}
		}
	}
}

type k8sService struct {
	Spec struct {
		Selector map[string]string
		Ports    []struct {
			Name       string
			Port       int
			TargetPort any `yaml:"targetPort"`
		}
	}
}

type k8sHPA struct {
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind, Name string
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string
			External *struct {
				Metric struct {
					Name     string
					Selector struct {
						MatchLabels map[string]string `yaml:"matchLabels"`
					}
				}
				Target struct {
					Type         string
					AverageValue string `yaml:"averageValue"`
					Value        string
				}
			}
		}
	}
}

type kustomization struct {
	Resources []string
	Images    []struct {
		Name    string
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	}
}

func (k kustomization) image(name string) string {
	for _, im := range k.Images {
		if im.Name == name {
			n := name
			if im.NewName != "" {
				n = im.NewName
			}
			return n + ":" + im.NewTag
		}
	}
	return name
}

func loadK8s(t testing.TB) (kustomization, []k8sObject) {
	t.Helper()
	var k kustomization
	if err := yamlDocs(t, "deploy/k8s/kustomization.yaml")[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	if len(k.Resources) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
	var objs []k8sObject
	for _, r := range k.Resources {
		rel := path.Join("deploy/k8s", r)
		for _, n := range yamlDocs(t, rel) {
			var o k8sObject
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name", rel)
				continue
			}
			o.node, o.file = n, rel
			objs = append(objs, o)
		}
	}
	return k, objs
}

func decodeAs[T any](t testing.TB, o k8sObject) T {
	t.Helper()
	var v T
	if err := o.node.Decode(&v); err != nil {
		t.Fatalf("%s %s/%s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return v
}

// matches reports whether labels carry every pair of selector.
func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetes: workloads run serve/worker with known settings on the
// ports the binary listens on, probes hit /healthz and /readyz there,
// Services reach pods, workers get a GPU, the HPA follows a metric the
// code exports.
func TestKubernetes(t *testing.T) {
	k, objs := loadK8s(t)
	known := envOptions(t)
	uid := imageUser(t, parseDockerfile(t, "Dockerfile"))
	cpuCmd := parseDockerfile(t, "Dockerfile").final().one(t, "CMD").Args[0]
	cudaCmd := parseDockerfile(t, "Dockerfile.cuda").final().one(t, "CMD").Args[0]

	configMaps := map[string]map[string]string{}
	workloads := map[string]k8sWorkload{} // kind/name
	var services []k8sObject
	var hpas []k8sObject
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Deployment", "StatefulSet":
			workloads[o.Kind+"/"+o.Metadata.Name] = decodeAs[k8sWorkload](t, o)
		case "Service":
			services = append(services, o)
		case "HorizontalPodAutoscaler":
			hpas = append(hpas, o)
		}
	}

	// Services select pods and name ports that those pods have.
	servicePorts := map[string][]int{} // service name → its ports
	for _, o := range services {
		svc := decodeAs[k8sService](t, o)
		var found bool
		for _, w := range workloads {
			if !matches(svc.Spec.Selector, w.Spec.Template.Metadata.Labels) {
				continue
			}
			found = true
			for _, p := range svc.Spec.Ports {
				if _, ok := containerPort(w.Spec.Template.Spec.Containers, p.TargetPort); !ok {
					t.Errorf("Service %s: targetPort %v is no container port of its pods", o.Metadata.Name, p.TargetPort)
				}
				servicePorts[o.Metadata.Name] = append(servicePorts[o.Metadata.Name], p.Port)
				if p.Port == 0 {
					t.Errorf("Service %s: port without a number", o.Metadata.Name)
				}
			}
		}
		if !found {
			t.Errorf("Service %s: its selector %v matches no pod template", o.Metadata.Name, svc.Spec.Selector)
		}
	}
	for name, w := range workloads {
		if !matches(w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels", name, w.Spec.Selector.MatchLabels)
		}
	}

	cmds := map[string]string{} // Deployment name → serve/worker
	for name, w := range workloads {
		pod := w.Spec.Template.Spec
		for _, c := range pod.Containers {
			img := k.image(c.Image)
			isStudio := strings.HasPrefix(img, "fgstudio:")
			if !isStudio {
				continue
			}
			t.Run(name, func(t *testing.T) {
				cmd := cpuCmd
				if strings.HasSuffix(img, ":cuda") {
					cmd = cudaCmd
				}
				if len(c.Command) > 0 {
					t.Errorf("command %v replaces the image's entrypoint; use args", c.Command)
				}
				if len(c.Args) > 0 {
					cmd = c.Args[0]
				}
				if cmd != "serve" && cmd != "worker" {
					t.Fatalf("runs studio %s, want serve or worker", cmd)
				}
				cmds[name] = cmd
				env := map[string]string{}
				for _, ef := range c.EnvFrom {
					if ef.ConfigMapRef != nil {
						data, ok := configMaps[ef.ConfigMapRef.Name]
						if !ok {
							t.Errorf("envFrom ConfigMap %s is not in the manifests", ef.ConfigMapRef.Name)
						}
						for k, v := range data {
							env[k] = v
						}
					}
				}
				for _, e := range c.Env {
					v := e.Value
					if e.ValueFrom != nil {
						v = "<from " + e.Name + ">"
					}
					env[e.Name] = v
				}
				for k := range env {
					o, ok := known[k]
					if !ok {
						t.Errorf("environment %s: not a setting of cmd/studio/config.go", k)
					} else if !contains(o.Cmds, cmd) && !isShared(c, k) {
						t.Errorf("environment %s: studio %s does not read it", k, cmd)
					}
				}
				checkRedisURL(t, effective(t, "redis-url", cmd, env), func(host string, port int) bool {
					for _, p := range servicePorts[host] {
						if p == port {
							return true
						}
					}
					return false
				})
				addr := "addr"
				if cmd == "worker" {
					addr = "admin-addr"
				}
				port := portOf(t, effective(t, addr, cmd, env))
				if _, ok := containerPort([]k8sContainer{c}, port); !ok {
					t.Errorf("no containerPort %d (studio %s listens on %s)", port, cmd, effective(t, addr, cmd, env))
				}
				for _, p := range []struct {
					name  string
					probe *k8sProbe
					path  string
				}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
					if p.probe == nil || p.probe.HTTPGet == nil {
						t.Errorf("no %s httpGet probe", p.name)
						continue
					}
					got, ok := containerPort([]k8sContainer{c}, p.probe.HTTPGet.Port)
					if !ok || got != port || p.probe.HTTPGet.Path != p.path {
						t.Errorf("%s probe GET %s on %v, want %s on %d", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port, p.path, port)
					}
				}
				if a := w.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(port) || a["prometheus.io/path"] != "/metrics" {
					t.Errorf("prometheus annotations %v, want scrape of :%d/metrics", a, port)
				}
				sc := pod.SecurityContext
				if !sc.RunAsNonRoot || sc.RunAsUser != uid {
					t.Errorf("securityContext runAsNonRoot=%v runAsUser=%d, want true and the image's uid %d", sc.RunAsNonRoot, sc.RunAsUser, uid)
				}
				if c.SecurityContext == nil || !c.SecurityContext.ReadOnlyRootFilesystem {
					t.Error("container without readOnlyRootFilesystem (the image writes nothing)")
				}
				shutdown := durationOf(t, effective(t, "shutdown-timeout", cmd, env))
				if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
					t.Errorf("terminationGracePeriodSeconds (default 30) is not longer than the shutdown timeout %s", shutdown)
				}
				switch cmd {
				case "serve":
					if effective(t, "require-auth", cmd, env) != "true" {
						t.Error("serve behind a Service without STUDIO_REQUIRE_AUTH=true")
					}
				case "worker":
					if c.Resources.Limits["nvidia.com/gpu"] == "" {
						t.Error("worker without an nvidia.com/gpu limit")
					}
					if env["STUDIO_PROVIDER"] != "cuda" || !strings.HasSuffix(img, ":cuda") {
						t.Errorf("GPU worker runs %s with STUDIO_PROVIDER=%q, want the cuda image and cuda", img, env["STUDIO_PROVIDER"])
					}
					var tolerates bool
					for _, tol := range pod.Tolerations {
						tolerates = tolerates || tol.Key == "nvidia.com/gpu"
					}
					if !tolerates {
						t.Error("worker does not tolerate the nvidia.com/gpu taint of GPU nodes")
					}
				}
			})
		}
	}
	if !contains(mapValues(cmds), "serve") || !contains(mapValues(cmds), "worker") {
		t.Fatalf("want a serve and a worker Deployment, have %v", cmds)
	}
	checkHPAs(t, hpas, workloads, cmds)
}

// isShared: a ConfigMap shared by serve and worker may hold settings that
// only one of them reads.
func isShared(c k8sContainer, env string) bool {
	for _, e := range c.Env {
		if e.Name == env {
			return false
		}
	}
	return true
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// containerPort resolves a port given by name or number.
func containerPort(cs []k8sContainer, port any) (int, bool) {
	for _, c := range cs {
		for _, p := range c.Ports {
			switch v := port.(type) {
			case int:
				if p.ContainerPort == v {
					return v, true
				}
			case string:
				if p.Name == v {
					return p.ContainerPort, true
				}
			}
		}
	}
	return 0, false
}

// checkHPAs: the worker autoscaler targets the worker Deployment and reads
// queue metrics that the code exports, with labels and values it uses, as
// the adapter configuration serves them.
func checkHPAs(t *testing.T, hpas []k8sObject, workloads map[string]k8sWorkload, cmds map[string]string) {
	t.Helper()
	if len(hpas) == 0 {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	idx := metricIndex(t)
	served := adapterMetrics(t)
	lanes := map[string]bool{}
	for _, l := range queue.Lanes() {
		lanes[string(l)] = true
	}
	var scalesWorkers bool
	for _, o := range hpas {
		h := decodeAs[k8sHPA](t, o)
		ref := h.Spec.ScaleTargetRef
		if _, ok := workloads[ref.Kind+"/"+ref.Name]; !ok || ref.APIVersion != "apps/v1" {
			t.Errorf("HPA %s scales %s %s/%s, which is not in the manifests", o.Metadata.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		scalesWorkers = scalesWorkers || cmds["Deployment/"+ref.Name] == "worker"
		if h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < h.Spec.MinReplicas {
			t.Errorf("HPA %s: replicas %d..%d", o.Metadata.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s: no metric", o.Metadata.Name)
		}
		for _, m := range h.Spec.Metrics {
			if m.Type != "External" || m.External == nil {
				t.Errorf("HPA %s: metric of type %s, want External (queue depth is not a pod metric)", o.Metadata.Name, m.Type)
				continue
			}
			name := m.External.Metric.Name
			def, ok := idx[name]
			if !ok {
				t.Errorf("HPA %s: metric %s is not exported by the code", o.Metadata.Name, name)
				continue
			}
			if !served[name] {
				t.Errorf("HPA %s: metric %s is not served by prometheus-adapter-values.yaml", o.Metadata.Name, name)
			}
			for k, v := range m.External.Metric.Selector.MatchLabels {
				if !contains(def.Labels, k) {
					t.Errorf("HPA %s: %s has no label %s (labels %v)", o.Metadata.Name, name, k, def.Labels)
				}
				if k == "lane" && !lanes[v] {
					t.Errorf("HPA %s: lane %q is not a queue lane", o.Metadata.Name, v)
				}
			}
			if tg := m.External.Target; tg.Type != "AverageValue" || tg.AverageValue == "" {
				t.Errorf("HPA %s: target %+v, want an AverageValue (jobs per worker)", o.Metadata.Name, tg)
			}
		}
	}
	if !scalesWorkers {
		t.Error("no HPA scales the worker Deployment")
	}
}

// adapterMetrics lists the external metrics prometheus-adapter-values.yaml
// serves, checking that each reads a metric the code exports under the same
// name and takes the max over processes (they all report one global value).
func adapterMetrics(t *testing.T) map[string]bool {
	t.Helper()
	var v struct {
		Rules struct {
			External []struct {
				SeriesQuery  string `yaml:"seriesQuery"`
				Name         struct{ Matches, As string }
				MetricsQuery string `yaml:"metricsQuery"`
			}
		}
	}
	if err := yamlDocs(t, "deploy/k8s/prometheus-adapter-values.yaml")[0].Decode(&v); err != nil {
		t.Fatal(err)
	}
	idx := metricIndex(t)
	out := map[string]bool{}
	for _, r := range v.Rules.External {
		series, _, _ := strings.Cut(r.SeriesQuery, "{")
		if _, ok := idx[series]; !ok {
			t.Errorf("adapter rule reads %s, which the code does not export", series)
		}
		if !regexp.MustCompile(r.Name.Matches).MatchString(series) {
			t.Errorf("adapter rule: name.matches %q does not match %s", r.Name.Matches, series)
		}
		if !strings.HasPrefix(strings.TrimSpace(r.MetricsQuery), "max") {
			t.Errorf("adapter rule for %s: %q; want max(...) over the processes that report it", series, r.MetricsQuery)
		}
		out[r.Name.As] = true
	}
	if len(out) == 0 {
		t.Fatal("prometheus-adapter-values.yaml serves no external metric")
	}
	return out
}

// TestYAMLFilesParse: every YAML file in deploy/ parses into mappings
// (loadK8s also fails on a resource the kustomization names but lacks).
func TestYAMLFilesParse(t *testing.T) {
	var files []string
	err := filepath.WalkDir(filepath.Join(root(t), "deploy"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, _ := filepath.Rel(root(t), p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		docs := yamlDocs(t, f)
		for i, d := range docs {
			var m map[string]any
			if err := d.Decode(&m); err != nil || len(m) == 0 {
				t.Errorf("%s document %d: not a mapping (%v)", f, i+1, err)
			}
		}
	}
}
