// Command validate-manifests checks Kubernetes manifests (a multi-document YAML stream on
// standard input, as `helm template` prints it) against the API's own Go types: every
// field must exist in the kind's schema and have its type, and every object needs a name.
// Kinds outside the core API that the chart renders (ServiceMonitor) are checked against
// the fields of their custom resource the chart uses. It exits 1 naming each problem.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart uses.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, autoscalingv2.AddToScheme, batchv1.AddToScheme,
		corev1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return scheme
}

func target(scheme *runtime.Scheme, gvk schema.GroupVersionKind) (any, error) {
	if gvk.Group == "monitoring.coreos.com" && gvk.Version == "v1" && gvk.Kind == "ServiceMonitor" {
		return &serviceMonitor{}, nil
	}
	return scheme.New(gvk)
}

func validate(scheme *runtime.Scheme, doc []byte) error {
	asJSON, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(asJSON, &meta); err != nil {
		return err
	}
	gvk := schema.FromAPIVersionAndKind(meta.APIVersion, meta.Kind)
	if meta.Metadata.Name == "" {
		return fmt.Errorf("%s without metadata.name", gvk)
	}
	object, err := target(scheme, gvk)
	if err != nil {
		return fmt.Errorf("%s %q: unknown kind: %w", gvk, meta.Metadata.Name, err)
	}
	decoder := json.NewDecoder(bytes.NewReader(asJSON))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(object); err != nil {
		return fmt.Errorf("%s %q: %w", meta.Kind, meta.Metadata.Name, err)
	}
	return nil
}

func main() {
	scheme := newScheme()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(os.Stdin))
	problems, objects := 0, 0
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "validate-manifests: cannot read the stream:", err)
			os.Exit(1)
		}
		if strings.TrimSpace(strings.ReplaceAll(string(doc), "---", "")) == "" {
			continue
		}
		objects++
		if err := validate(scheme, doc); err != nil {
			fmt.Fprintln(os.Stderr, "invalid:", err)
			problems++
		}
	}
	if objects == 0 {
		fmt.Fprintln(os.Stderr, "validate-manifests: no objects in the input")
		os.Exit(1)
	}
	if problems > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d objects valid\n", objects)
}
