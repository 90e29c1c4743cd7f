package worker_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/worker"
)

// closingGen is a fakeGen that must not be used once closed, as a
// generator.Service whose sessions are destroyed.
type closingGen struct {
	*fakeGen
	name   string
	closed atomic.Bool
	inUse  atomic.Int32
	abused atomic.Bool // a call ran on it after Close, or Close ran under a call
}

func newClosing(name string) *closingGen { return &closingGen{fakeGen: newFake(), name: name} }

func (c *closingGen) Close() {
	if c.inUse.Load() > 0 {
		c.abused.Store(true)
	}
	c.closed.Store(true)
}

func (c *closingGen) Generate(ctx context.Context, model string, reqs []generator.Request) ([][]generator.Image, error) {
	c.inUse.Add(1)
	defer c.inUse.Add(-1)
	if c.closed.Load() {
		c.abused.Store(true)
	}
	imgs, err := c.fakeGen.Generate(ctx, model, reqs)
	for _, row := range imgs {
		for i := range row {
			row[i].PNG = append([]byte(c.name+"|"), row[i].PNG...)
		}
	}
	return imgs, err
}

// TestSwapClosesOldModelsAfterTheirLastCall: a reload while a batch runs
// lets the batch finish on the old models, closes them only then, and
// runs the next job on the new ones.
func TestSwapClosesOldModelsAfterTheirLastCall(t *testing.T) {
	q := queue.NewEmbeddedConfig(testQueueConfig())
	t.Cleanup(func() { q.Close() })
	old, next := newClosing("old"), newClosing("new")
	old.gate = make(chan struct{})
	sw := worker.NewSwap[worker.Models](old)
	start(t, testWorkerConfig(), q, sw)

	first := enqueue(t, q, queue.Interactive, jobspec.Spec{Kind: jobspec.Generate, Model: "m1", Class: "a", N: 1, Seed: 1})
	<-old.entered // the batch runs on the old models
	sw.Replace(next)
	if old.closed.Load() {
		t.Fatal("old models closed while a batch ran on them")
	}
	old.gate <- struct{}{}
	j := waitState(t, q, first.ID, queue.Succeeded)
	if !bytes.HasPrefix(j.Results[0].Data, []byte("old|")) {
		t.Errorf("first job made by %q, want the old models", j.Results[0].Data)
	}
	eventually(t, "old models closed", old.closed.Load)

	second := enqueue(t, q, queue.Interactive, jobspec.Spec{Kind: jobspec.Generate, Model: "m1", Class: "a", N: 1, Seed: 2})
	j = waitState(t, q, second.ID, queue.Succeeded)
	if !bytes.HasPrefix(j.Results[0].Data, []byte("new|")) {
		t.Errorf("second job made by %q, want the new models", j.Results[0].Data)
	}
	if old.abused.Load() || next.abused.Load() {
		t.Error("models were used after Close, or closed under a call")
	}
	if next.closed.Load() {
		t.Error("the serving models were closed")
	}
}

// TestSwapClose waits for running calls, closes every set of models, and
// refuses calls after.
func TestSwapClose(t *testing.T) {
	a, b := newClosing("a"), newClosing("b")
	a.gate = make(chan struct{})
	sw := worker.NewSwap[worker.Models](a)
	done := make(chan error, 1)
	go func() {
		_, err := sw.Generate(t.Context(), "m1", []generator.Request{{Class: "x", N: 1}})
		done <- err
	}()
	<-a.entered
	sw.Replace(b)
	closed := make(chan struct{})
	go func() {
		sw.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a call ran")
	case <-time.After(50 * time.Millisecond):
	}
	if !b.closed.Load() {
		t.Error("the idle current models were not closed")
	}
	a.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-closed
	if !a.closed.Load() || a.abused.Load() || b.abused.Load() {
		t.Errorf("closed a=%v b=%v, abused a=%v b=%v", a.closed.Load(), b.closed.Load(), a.abused.Load(), b.abused.Load())
	}
	if err := sw.Validate("m1", generator.Request{N: 1}); !errors.Is(err, worker.ErrModelsClosed) {
		t.Errorf("call after Close: %v", err)
	}
	c := newClosing("c")
	sw.Replace(c)
	if !c.closed.Load() {
		t.Error("models given to a closed Swap are closed at once")
	}
}
