// Package deploy holds the deployment files (Kubernetes, compose, systemd,
// Grafana); its tests check they build and carry the region settings.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/surgeload/surge/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// kustomizeVersion builds with Go 1.26 (its api is v0.20.1; api v0.21.3,
// in kustomize v5.8.x, needs Go 1.27). Keep in step with the Makefile.
const kustomizeVersion = "v5.7.1"

// kustomize returns the pinned kustomize: $KUSTOMIZE, else .cache/bin, else
// installed there from the Go module proxy.
func kustomize(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("KUSTOMIZE"); k != "" {
		return k
	}
	bin, err := filepath.Abs(filepath.Join("..", ".cache", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(bin, "kustomize")
	if _, err := os.Stat(k); err == nil {
		return k
	}
	t.Logf("installing kustomize %s into %s", kustomizeVersion, bin)
	cmd := exec.Command("go", "install", "sigs.k8s.io/kustomize/kustomize/v5@"+kustomizeVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install kustomize: %v\n%s", err, out)
	}
	return k
}

type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Affinity struct {
					NodeAffinity struct {
						Required struct {
							Terms []struct {
								Exprs []struct {
									Key    string   `yaml:"key"`
									Values []string `yaml:"values"`
								} `yaml:"matchExpressions"`
							} `yaml:"nodeSelectorTerms"`
						} `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
					} `yaml:"nodeAffinity"`
				} `yaml:"affinity"`
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func build(t *testing.T, k, dir string) []object {
	t.Helper()
	out, err := exec.Command(k, "build", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode %s output: %v", dir, err)
		}
		objs = append(objs, o)
	}
	return objs
}

func TestKustomizeOverlays(t *testing.T) {
	k := kustomize(t)
	for _, dir := range []string{"k8s/base", "k8s/overlays/controller"} {
		objs := build(t, k, dir)
		var kinds []string
		for _, o := range objs {
			kinds = append(kinds, o.Kind+"/"+o.Metadata.Name)
		}
		for _, want := range []string{"Deployment/surge-controller", "Service/surge-controller"} {
			if !slices.Contains(kinds, want) {
				t.Errorf("%s: no %s in %v", dir, want, kinds)
			}
		}
	}
	regions := map[string]string{"us-east": "us-east-1", "eu-west": "eu-west-1"}
	overlays, _ := filepath.Glob("k8s/overlays/*")
	found := 0
	for _, dir := range overlays {
		region := filepath.Base(dir)
		cloud, ok := regions[region]
		if !ok {
			continue
		}
		found++
		objs := build(t, k, dir)
		if len(objs) != 1 || objs[0].Kind != "Deployment" {
			t.Fatalf("%s: want one agent Deployment, got %d objects", dir, len(objs))
		}
		d := objs[0]
		if d.Metadata.Name != "surge-agent-"+region || d.Metadata.Labels["surge.io/region"] != region ||
			d.Spec.Template.Metadata.Labels["surge.io/region"] != region {
			t.Errorf("%s: name %s labels %v / %v", dir, d.Metadata.Name, d.Metadata.Labels, d.Spec.Template.Metadata.Labels)
		}
		terms := d.Spec.Template.Spec.Affinity.NodeAffinity.Required.Terms
		if len(terms) != 1 || terms[0].Exprs[0].Key != "topology.kubernetes.io/region" || !slices.Equal(terms[0].Exprs[0].Values, []string{cloud}) {
			t.Errorf("%s: node affinity %+v", dir, terms)
		}
		c := d.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["SURGE_REGION"] != region || env["SURGE_ALLOW"] == "" || env["SURGE_ALLOW"] == "127.0.0.1" {
			t.Errorf("%s: env %v", dir, env)
		}
		if !slices.Contains(c.Args, "--region=$(SURGE_REGION)") || !slices.Contains(c.Args, "--allow=$(SURGE_ALLOW)") {
			t.Errorf("%s: args %v", dir, c.Args)
		}
		t.Logf("%s: %s replicas %d, region %s, nodes in %s, allow %s", dir, d.Metadata.Name, *d.Spec.Replicas, region, cloud, env["SURGE_ALLOW"])
	}
	if found != len(regions) {
		t.Errorf("%d region overlays, want %d", found, len(regions))
	}
}

func TestComposeParses(t *testing.T) {
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"influxdb", "grafana", "controller", "target"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("no service %s", s)
		}
	}
	regions := map[string]int{}
	for name, s := range c.Services {
		if !strings.HasPrefix(name, "agent-") {
			continue
		}
		for _, a := range s.Command {
			if r, ok := strings.CutPrefix(a, "--region="); ok {
				regions[r]++
			}
		}
	}
	if regions["us-east"] != 2 || regions["eu-west"] != 1 {
		t.Errorf("agents per region %v, want us-east 2, eu-west 1", regions)
	}
	if !slices.ContainsFunc(c.Services["controller"].Command, func(a string) bool { return strings.HasPrefix(a, "--influx-url=") }) {
		t.Errorf("controller does not write to InfluxDB: %v", c.Services["controller"].Command)
	}
	if v := strings.Join(c.Services["grafana"].Volumes, " "); !strings.Contains(v, "provisioning/datasources") || !strings.Contains(v, "grafana/dashboards") {
		t.Errorf("grafana volumes %s", v)
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	uids := map[string]string{} // uid → type
	for _, f := range []string{"influxdb.yaml", "prometheus.yaml"} {
		b, err := os.ReadFile("grafana/provisioning/datasources/" + f)
		if err != nil {
			t.Fatal(err)
		}
		var ds struct {
			Datasources []struct {
				UID  string `yaml:"uid"`
				Type string `yaml:"type"`
			} `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(b, &ds); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range ds.Datasources {
			uids[d.UID] = d.Type
		}
	}
	if uids["surge-influxdb"] != "influxdb" || uids["surge-influxdb-flux"] != "influxdb" || uids["surge-prometheus"] != "prometheus" {
		t.Errorf("datasources %v: want surge-influxdb (InfluxQL), surge-influxdb-flux and surge-prometheus", uids)
	}
	boards, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(boards) != 4 {
		t.Errorf("dashboards %v", boards)
	}
	for _, f := range boards {
		b, _ := os.ReadFile(f)
		want := `"uid": "surge-influxdb"`
		if strings.HasPrefix(filepath.Base(f), "prometheus-") {
			want = `"uid": "surge-prometheus"`
		}
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s does not use the provisioned datasource (%s)", f, want)
		}
	}
}

// The canary examples build with kustomize: the gates' Deployment mounts
// the plans ConfigMap (its generated name), Argo's web metric and
// Flagger's webhook call the gates' Service at their paths with a plan
// that is in the ConfigMap, and that plan is valid with a canary's base
// URL.
func TestCanaryExamples(t *testing.T) {
	out, err := exec.Command(kustomize(t), "build", "canary").Output()
	if err != nil {
		t.Fatalf("kustomize build canary: %v", err)
	}
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		docs[d["kind"].(string)] = d
	}
	get := func(d any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				d = d.(map[string]any)[k]
			case int:
				d = d.([]any)[k]
			}
		}
		return d
	}
	cm := docs["ConfigMap"]
	cmName := get(cm, "metadata", "name").(string)
	if vol := get(docs["Deployment"], "spec", "template", "spec", "volumes", 0, "configMap", "name"); vol != cmName {
		t.Errorf("the gates mount %v, the plans ConfigMap is %s", vol, cmName)
	}
	web := get(docs["AnalysisTemplate"], "spec", "metrics", 0, "provider", "web")
	if u := get(web, "url").(string); !strings.HasPrefix(u, "http://surge-canary.surge.svc:8090/argo?plan=smoke&") ||
		get(web, "jsonPath") != "{$.verdict}" || get(docs["AnalysisTemplate"], "spec", "metrics", 0, "successCondition") != `result == "pass"` {
		t.Errorf("argo web metric %v", web)
	}
	hook := get(docs["Canary"], "spec", "analysis", "webhooks", 0)
	if get(hook, "url") != "http://surge-canary.surge.svc:8090/flagger" || get(hook, "metadata", "plan") != "smoke" {
		t.Errorf("flagger webhook %v", hook)
	}
	src, ok := get(cm, "data", "smoke.yaml").(string)
	if !ok {
		t.Fatalf("no smoke.yaml in the plans ConfigMap: %v", get(cm, "data"))
	}
	// The gate gives the plan the canary's base URL, as the callers do.
	if _, _, err := plan.ParseFile("smoke.yaml", []byte(src), plan.Options{BaseURL: "http://podinfo-canary.test:9898"}); err != nil {
		t.Errorf("the gate's plan: %v", err)
	}
}
