package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StatsReader is what a Collector reads: either backend.
type StatsReader interface {
	Stats(ctx context.Context) (Stats, error)
}

// Collector exports a queue's Stats as Prometheus gauges, read at each
// scrape. When Stats fails, studio_queue_up is 0 and the other gauges are
// left out of that scrape.
type Collector struct {
	src     StatsReader
	timeout time.Duration

	up, depth, running, oldest, jobs, dead *prometheus.Desc
}

// NewCollector makes a collector; timeout bounds one Stats call (default 2s).
func NewCollector(src StatsReader, timeout time.Duration) *Collector {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Collector{
		src: src, timeout: timeout,
		up:      prometheus.NewDesc("studio_queue_up", "1 when the queue answered the stats read of this scrape.", nil, nil),
		depth:   prometheus.NewDesc("studio_queue_depth", "Queued jobs per lane, including those waiting out a retry backoff.", []string{"lane"}, nil),
		running: prometheus.NewDesc("studio_queue_running", "Jobs held by workers per lane.", []string{"lane"}, nil),
		oldest:  prometheus.NewDesc("studio_queue_oldest_age_seconds", "Age of the oldest queued job per lane (0 when none).", []string{"lane"}, nil),
		jobs:    prometheus.NewDesc("studio_queue_jobs", "Jobs per state: queued and running now; finished states within the result TTL.", []string{"state"}, nil),
		dead:    prometheus.NewDesc("studio_queue_dead_letters", "Length of the dead-letter stream.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.depth, c.running, c.oldest, c.jobs, c.dead} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats read per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.src.Stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, l := range Lanes() {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Depth[l]), string(l))
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(s.Running[l]), string(l))
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestAge[l].Seconds(), string(l))
	}
	for _, st := range States() {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(s.ByState[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(s.DeadLetters))
}
