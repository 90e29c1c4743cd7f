package generator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/internal/ort"
)

// Runtime is what the generator needs from ONNX Runtime.
type Runtime interface {
	NewSession(path string, inputs, outputs []string) (*ort.Session, error)
	Inspect(path string) (inputs, outputs []ort.TensorInfo, err error)
	Version() string
}

// ErrModel marks a model directory that cannot be served: a corrupt or
// mismatched graph, or a manifest that does not describe it.
var ErrModel = errors.New("model cannot be loaded")

// graph is one loaded .onnx file: its tensors by contract role and a
// bounded pool of sessions.
type graph struct {
	name    string // e.g. "attngan-birds/generator"
	sha256  string
	inputs  map[string]catalog.TensorSpec // by role
	outputs map[string]catalog.TensorSpec // by role
	pool    *pool
}

// loadGraph checks the file against its sha256 and the graph's tensors
// against the manifest, then prepares a pool of up to poolSize sessions
// (created on first use). needIn and needOut are the roles the caller uses.
func loadGraph(rt Runtime, model *catalog.Model, role string, poolSize int, needIn, needOut []string) (*graph, error) {
	name := model.Manifest.Name + "/" + role
	g, ok := model.Manifest.Graphs[role]
	if !ok {
		return nil, fmt.Errorf("%w: %s: manifest has no %q graph", ErrModel, model.Manifest.Name, role)
	}
	path := filepath.Join(model.Dir, g.File)
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModel, name, err)
	}
	if sum != g.SHA256 {
		return nil, fmt.Errorf("%w: %s: %s has sha256 %s, manifest says %s", ErrModel, name, g.File, sum, g.SHA256)
	}
	gin, gout, err := rt.Inspect(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModel, name, err)
	}
	if err := matchTensors("input", g.Inputs, gin); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModel, name, err)
	}
	if err := matchTensors("output", g.Outputs, gout); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModel, name, err)
	}
	res := &graph{name: name, sha256: sum, inputs: byRole(g.Inputs), outputs: byRole(g.Outputs)}
	for _, r := range needIn {
		if _, ok := res.inputs[r]; !ok {
			return nil, fmt.Errorf("%w: %s: manifest names no input with role %q", ErrModel, name, r)
		}
	}
	for _, r := range needOut {
		if _, ok := res.outputs[r]; !ok {
			return nil, fmt.Errorf("%w: %s: manifest names no output with role %q", ErrModel, name, r)
		}
	}
	// Sessions feed every input the manifest lists and fetch the outputs
	// the caller needs (optional outputs stay unfetched).
	inNames := make([]string, len(g.Inputs))
	for i, t := range g.Inputs {
		inNames[i] = t.Name
	}
	outNames := make([]string, len(needOut))
	for i, r := range needOut {
		outNames[i] = res.outputs[r].Name
	}
	res.pool = newPool(poolSize, func() (*ort.Session, error) { return rt.NewSession(path, inNames, outNames) })
	return res, nil
}

// run feeds tensors by role and returns the outputs by role.
func (g *graph) run(ctx context.Context, in map[string]ort.Tensor) (map[string]ort.Tensor, error) {
	named := make(map[string]ort.Tensor, len(in))
	for role, t := range in {
		spec, ok := g.inputs[role]
		if !ok {
			return nil, fmt.Errorf("%s: no input role %q", g.name, role)
		}
		named[spec.Name] = t
	}
	s, err := g.pool.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.name, err)
	}
	out, err := s.Run(named)
	g.pool.release(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.name, err)
	}
	res := make(map[string]ort.Tensor, len(out))
	for role, spec := range g.outputs {
		if t, ok := out[spec.Name]; ok {
			if err := checkShape(spec, t.Shape); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrModel, g.name, err)
			}
			res[role] = t
		}
	}
	return res, nil
}

// checkShape holds an output to the manifest's shape: its rank, and each
// size the manifest fixes. Load checks the sizes the graph declares; this
// catches those the graph leaves open (a dynamic axis in the export) and
// only the run decides.
func checkShape(spec catalog.TensorSpec, shape []int64) error {
	if len(shape) != len(spec.Shape) {
		return fmt.Errorf("output %q has rank %d, manifest says %d", spec.Name, len(shape), len(spec.Shape))
	}
	for i, d := range spec.Shape {
		if n, fixed := d.(float64); fixed && int64(n) != shape[i] {
			return fmt.Errorf("output %q has size %d on axis %d, manifest says %d", spec.Name, shape[i], i, int64(n))
		}
	}
	return nil
}

func (g *graph) close() error { return g.pool.close() }

func byRole(ts []catalog.TensorSpec) map[string]catalog.TensorSpec {
	m := make(map[string]catalog.TensorSpec, len(ts))
	for _, t := range ts {
		m[t.Role] = t
	}
	return m
}

// matchTensors checks each manifest tensor against the graph: present by
// name, same dtype, same rank, and equal where both give a fixed size.
func matchTensors(what string, specs []catalog.TensorSpec, infos []ort.TensorInfo) error {
	have := make(map[string]ort.TensorInfo, len(infos))
	for _, i := range infos {
		have[i.Name] = i
	}
	for _, s := range specs {
		info, ok := have[s.Name]
		if !ok {
			return fmt.Errorf("%s %q (role %s) is not in the graph", what, s.Name, s.Role)
		}
		if info.DType != s.DType {
			return fmt.Errorf("%s %q is %s in the graph, manifest says %s", what, s.Name, info.DType, s.DType)
		}
		if len(info.Shape) != len(s.Shape) {
			return fmt.Errorf("%s %q has rank %d in the graph, manifest says %d", what, s.Name, len(info.Shape), len(s.Shape))
		}
		for i, d := range s.Shape {
			n, fixed := d.(float64) // JSON numbers
			if fixed && info.Shape[i] >= 0 && int64(n) != info.Shape[i] {
				return fmt.Errorf("%s %q has size %d on axis %d in the graph, manifest says %d", what, s.Name, info.Shape[i], i, int64(n))
			}
		}
	}
	if what == "input" && len(specs) != len(infos) {
		return fmt.Errorf("graph has %d inputs, manifest names %d", len(infos), len(specs))
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
