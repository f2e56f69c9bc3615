// Package telemetry holds the node's Prometheus metrics. One Registry per process is
// created by the CLI and passed down; nothing registers on the global default registry, so
// tests can build as many nodes as they like in one process.
package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors the node updates.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec

	JobsFinished *prometheus.CounterVec
	JobDuration  *prometheus.HistogramVec

	FeedRecords *prometheus.CounterVec
	FeedErrors  *prometheus.CounterVec

	PredictStage *prometheus.HistogramVec
	Predictions  *prometheus.CounterVec
	Scored       *prometheus.CounterVec
}

// New registers the Go and process collectors and the node's own metrics.
func New() *Metrics {
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Latency buckets from 0.5 ms to 10 s: the report API answers in well under a
	// millisecond, a model fan-out in milliseconds, a backfill page in seconds.
	buckets := prometheus.ExponentialBuckets(0.0005, 2.5, 12)
	m := &Metrics{
		Registry: registry,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crunch_http_requests_total",
			Help: "HTTP requests served by the report API, by route pattern and status.",
		}, []string{"method", "route", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crunch_http_request_duration_seconds",
			Help:    "Time to serve a report API request, by route pattern.",
			Buckets: buckets,
		}, []string{"method", "route"}),
		JobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crunch_river_jobs_finished_total",
			Help: "River jobs worked by this process, by kind and final state of the attempt.",
		}, []string{"kind", "state"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crunch_river_job_duration_seconds",
			Help:    "Time River jobs took to run, by kind.",
			Buckets: buckets,
		}, []string{"kind"}),
		FeedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crunch_feed_records_total",
			Help: "Feed records stored, by source and subject.",
		}, []string{"source", "subject"}),
		FeedErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crunch_feed_errors_total",
			Help: "Feed fetch errors and skipped records, by source, subject and reason.",
		}, []string{"source", "subject", "reason"}),
		PredictStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crunch_predict_stage_seconds",
			Help:    "Latency of each stage of a predict tick.",
			Buckets: buckets,
		}, []string{"stage"}),
		Predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crunch_predictions_total",
			Help: "Predictions stored, by status.",
		}, []string{"status"}),
		Scored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crunch_scores_total",
			Help: "Predictions scored, by outcome.",
		}, []string{"outcome"}),
	}
	registry.MustRegister(m.HTTPRequests, m.HTTPDuration, m.JobsFinished, m.JobDuration,
		m.FeedRecords, m.FeedErrors, m.PredictStage, m.Predictions, m.Scored)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware counts and times requests by chi route pattern (never by raw path, which would
// let clients create unbounded label values).
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(recorder, r)
		route := "unmatched"
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
			route = rctx.RoutePattern()
		}
		m.HTTPRequests.WithLabelValues(r.Method, route, strconv.Itoa(recorder.status)).Inc()
		m.HTTPDuration.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
