//go:build !unit

package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/test/redistest"
	"github.com/fgstudio/fgstudio/worker"
)

// BenchmarkEndToEnd measures images/s of the sample AttnGAN through the
// whole path — enqueue, claim, dynamic batching across one-image jobs,
// generate and score, store each PNG with its meta, ack — on the embedded
// queue and on a real redis-server, against the raw generator at the same
// batch size (raw/...: Service.Generate on batches of the same requests).
// One worker loop; b.N is the number of images:
//
//	STUDIO_TEST_MODELS=... go test -run '^$' -bench EndToEnd -benchtime 256x ./worker/
func BenchmarkEndToEnd(b *testing.B) {
	cat := sampleCatalog(b)
	var m *catalog.Model
	for _, g := range generatorModels(cat) {
		if g.Manifest.Kind == catalog.KindAttnGAN {
			m = g
		}
	}
	if m == nil {
		b.Fatal("no attngan sample model")
	}
	var specs []jobspec.Spec
	for v := range 8 {
		s := exampleSpec(b, m, v)
		s.N = 1
		specs = append(specs, s)
	}
	srv := redistest.Start(b, redistest.Options{})
	var prefix atomic.Int64

	for _, batch := range []int{1, 8, 32} {
		svc := loadService(b, cat, generator.Config{MaxBatch: batch, MaxImages: jobspec.MaxN})
		raw := func(i int) generator.Request {
			s := specs[i%len(specs)]
			return generator.Request{Prompt: s.Prompt, N: 1, Seed: uint64(i)}
		}
		warm := []generator.Request{raw(0)}
		if _, err := svc.Generate(b.Context(), m.Manifest.Name, warm); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("raw/batch=%d", batch), func(b *testing.B) {
			for start := 0; start < b.N; start += batch {
				var reqs []generator.Request
				for i := start; i < min(start+batch, b.N); i++ {
					reqs = append(reqs, raw(i))
				}
				if _, err := svc.Generate(b.Context(), m.Manifest.Name, reqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
		through := func(b *testing.B, q backend) {
			cq := &ackCounter{Queue: q, want: int64(b.N), done: make(chan struct{})}
			reg := prometheus.NewRegistry()
			w, err := worker.New(worker.Config{Name: "bench", MaxBatch: batch}, cq, svc, reg, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan error, 1)
			go func() { stopped <- w.Run(ctx) }()
			b.ResetTimer()
			for i := range b.N {
				s := specs[i%len(specs)]
				s.Seed = uint64(i)
				enqueue(b, q, queue.Interactive, s)
			}
			select {
			case <-cq.done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("%d of %d jobs acked", cq.acked.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
			b.ReportMetric(meanBatch(b, reg), "images/batch")
			cancel()
			if err := <-stopped; err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("embedded/batch=%d", batch), func(b *testing.B) {
			q := queue.NewEmbedded()
			defer q.Close()
			through(b, q)
		})
		b.Run(fmt.Sprintf("redis/batch=%d", batch), func(b *testing.B) {
			q, err := queue.NewRedis(b.Context(), srv.URL(), queue.Config{Prefix: fmt.Sprintf("{bench-%d}:", prefix.Add(1))}, quiet())
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			through(b, q)
		})
	}
}

// meanBatch is the mean images per generator call the worker made.
func meanBatch(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "studio_worker_batch_images" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum() / float64(h.GetSampleCount())
		}
	}
	b.Fatal("no batch histogram")
	return 0
}

// ackCounter closes done when want jobs have been acked.
type ackCounter struct {
	worker.Queue
	want  int64
	acked atomic.Int64
	done  chan struct{}
}

func (c *ackCounter) Ack(ctx context.Context, l queue.Lease) error {
	err := c.Queue.Ack(ctx, l)
	if err == nil && c.acked.Add(1) == c.want {
		close(c.done)
	}
	return err
}
