package worker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Job outcomes (label of studio_worker_jobs_total).
const (
	outcomeSucceeded  = "succeeded"
	outcomeFailed     = "failed"      // request error: failed for good
	outcomeRetried    = "retried"     // internal error: queued again by the queue
	outcomeCancelled  = "cancelled"   // the client cancelled it while it ran
	outcomeLost       = "lost"        // the lease went to another worker
	outcomeHandedBack = "handed_back" // unfinished at shutdown
	outcomeError      = "error"       // the queue refused the final write
)

// Image outcomes (label of studio_worker_images_total).
const (
	imageStored   = "stored"    // stored, at or above the job's bar
	imageBelowMin = "below_min" // stored as the best of its tries, below the bar
	imageRetried  = "retried"   // below the bar: made again with the next seed
)

type metrics struct {
	loops           prometheus.Gauge
	busy            prometheus.Gauge
	batchImages     prometheus.Histogram
	batchJobs       prometheus.Histogram
	generateSeconds *prometheus.HistogramVec
	jobs            *prometheus.CounterVec
	images          *prometheus.CounterVec
	fidelity        *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	sizes := []float64{1, 2, 4, 8, 16, 32, 64}
	m := &metrics{
		loops: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "studio_worker_loops",
			Help: "Worker loops in this process (busy ratio = studio_worker_busy_loops / this).",
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "studio_worker_busy_loops",
			Help: "Worker loops running a generator batch now.",
		}),
		batchImages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "studio_worker_batch_images",
			Help:    "Images per generator call (dynamic batching across jobs).",
			Buckets: sizes,
		}),
		batchJobs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "studio_worker_batch_jobs",
			Help:    "Jobs per generator call.",
			Buckets: sizes,
		}),
		generateSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "studio_worker_generate_seconds",
			Help:    "Time of one generator call (graphs and scoring), by model.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"model"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "studio_worker_jobs_total",
			Help: "Jobs this worker ended, by outcome: succeeded, failed, retried, cancelled, lost, handed_back, error.",
		}, []string{"outcome"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "studio_worker_images_total",
			Help: "Images generated, by outcome: stored, below_min (stored, best of its tries), retried (made again).",
		}, []string{"outcome"}),
		fidelity: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "studio_worker_fidelity",
			Help:    "Fidelity of stored images, by measure (class_probability, attribute_agreement, damsm_similarity).",
			Buckets: prometheus.LinearBuckets(0.1, 0.1, 10),
		}, []string{"measure"}),
	}
	for _, o := range []string{outcomeSucceeded, outcomeFailed, outcomeRetried, outcomeCancelled, outcomeLost, outcomeHandedBack, outcomeError} {
		m.jobs.WithLabelValues(o)
	}
	for _, o := range []string{imageStored, imageBelowMin, imageRetried} {
		m.images.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.loops, m.busy, m.batchImages, m.batchJobs, m.generateSeconds, m.jobs, m.images, m.fidelity} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
