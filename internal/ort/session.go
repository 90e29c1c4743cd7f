//go:build cgo

package ort

import (
	"errors"
	"fmt"

	onnx "github.com/yalue/onnxruntime_go"
)

// Session is one loaded graph. A Session is not safe for concurrent Run
// calls from several goroutines; pools of sessions live with their users.
type Session struct {
	s        *onnx.DynamicAdvancedSession
	inputs   []string
	outputs  []string
	provider Provider
	rt       *Runtime
}

// NewSession loads the graph at path for the named inputs and outputs.
func (r *Runtime) NewSession(path string, inputs, outputs []string) (*Session, error) {
	opts, provider, err := r.sessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options for %s: %w", path, err)
	}
	defer opts.Destroy()
	s, err := onnx.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	sess := &Session{
		s:        s,
		inputs:   append([]string(nil), inputs...),
		outputs:  append([]string(nil), outputs...),
		provider: provider,
		rt:       r,
	}
	r.live.Add(1)
	return sess, nil
}

// sessionOptions builds options with thread counts and the provider; when
// CUDA cannot be appended it logs once and returns CPU options.
func (r *Runtime) sessionOptions() (*onnx.SessionOptions, Provider, error) {
	opts, err := onnx.NewSessionOptions()
	if err != nil {
		return nil, "", err
	}
	if err := r.applyThreads(opts); err != nil {
		opts.Destroy()
		return nil, "", err
	}
	if r.cfg.Provider != CUDA {
		return opts, CPU, nil
	}
	if err := appendCUDA(opts, r.cfg.CUDADevice); err != nil {
		r.mu.Lock()
		first := !r.fellBack
		r.fellBack = true
		r.mu.Unlock()
		if first {
			r.log.Warn("CUDA execution provider unavailable, running on CPU", "err", err)
		}
		// AppendExecutionProvider may leave the options half-configured;
		// start again from clean ones.
		opts.Destroy()
		if opts, err = onnx.NewSessionOptions(); err != nil {
			return nil, "", err
		}
		if err := r.applyThreads(opts); err != nil {
			opts.Destroy()
			return nil, "", err
		}
		return opts, CPU, nil
	}
	return opts, CUDA, nil
}

func (r *Runtime) applyThreads(opts *onnx.SessionOptions) error {
	if !r.cfg.Spin {
		for _, k := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if err := opts.AddSessionConfigEntry(k, "0"); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	if r.cfg.IntraOpThreads > 0 {
		if err := opts.SetIntraOpNumThreads(r.cfg.IntraOpThreads); err != nil {
			return fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if r.cfg.InterOpThreads > 0 {
		if err := opts.SetInterOpNumThreads(r.cfg.InterOpThreads); err != nil {
			return fmt.Errorf("inter-op threads: %w", err)
		}
	}
	return nil
}

func appendCUDA(opts *onnx.SessionOptions, device int) error {
	cuda, err := onnx.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return err
	}
	return opts.AppendExecutionProviderCUDA(cuda)
}

// Provider is the execution provider the session runs on.
func (s *Session) Provider() Provider { return s.provider }

// Destroy frees the session.
func (s *Session) Destroy() error {
	if s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	s.rt.live.Add(-1)
	return err
}

// Run feeds the named inputs and returns every output of the session, in
// the order the session was created with. All ONNX Runtime values are
// destroyed before Run returns.
func (s *Session) Run(inputs map[string]Tensor) (map[string]Tensor, error) {
	if s.s == nil {
		return nil, errors.New("run on a destroyed session")
	}
	in := make([]onnx.Value, len(s.inputs))
	defer destroyAll(in)
	for i, name := range s.inputs {
		t, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("missing input %q", name)
		}
		v, err := t.value()
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		in[i] = v
	}
	out := make([]onnx.Value, len(s.outputs))
	defer destroyAll(out)
	if err := s.s.Run(in, out); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	res := make(map[string]Tensor, len(out))
	for i, name := range s.outputs {
		t, err := fromValue(out[i])
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", name, err)
		}
		res[name] = t
	}
	return res, nil
}

func destroyAll(vs []onnx.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}
