package api

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIDocumentsEveryRoute parses docs/api.yaml and checks that every route the API
// mounts is there with its method, and that the file documents no route the API lacks.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../../docs/api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/api.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	mounted := map[string]bool{}
	for _, r := range Routes() {
		method, path, _ := strings.Cut(r, " ")
		mounted[r] = true
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("docs/api.yaml lacks the path %s", path)
			continue
		}
		op, ok := ops[strings.ToLower(method)].(map[string]any)
		if !ok {
			t.Errorf("docs/api.yaml lacks %s", r)
			continue
		}
		if _, ok := op["responses"]; !ok {
			t.Errorf("docs/api.yaml: %s has no responses", r)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if r := strings.ToUpper(method) + " " + path; !mounted[r] {
				t.Errorf("docs/api.yaml documents %s, which the API does not mount", r)
			}
		}
	}
}
