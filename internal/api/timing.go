package api

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// timingStages are the predict tick's stages, in order, with the meta.timing field that
// holds each one's duration in microseconds.
var timingStages = []struct{ name, field string }{
	{"pickup", "pickup_delay_us"},
	{"data_loading", "data_loaded_us"},
	{"feed_update", "feed_update_us"},
	{"model_execution", "model_execution_us"},
}

// StageLatency summarises one stage over the sampled ticks, in microseconds.
type StageLatency struct {
	Count      int     `json:"count"`
	MaxUs      float64 `json:"max_us"`
	MeanUs     float64 `json:"mean_us"`
	MedianUs   float64 `json:"median_us"`
	MinUs      float64 `json:"min_us"`
	Name       string  `json:"name"`
	P95Us      float64 `json:"p95_us"`
	P99Us      float64 `json:"p99_us"`
	PctOfTotal float64 `json:"pct_of_total" doc:"Share of the summed stage means, 0–100."`
	Step       int     `json:"step"`
}

// TimingBody is /timing-metrics, in the Python engine's shape.
type TimingBody struct {
	BufferSize     int               `json:"buffer_size"`
	Enabled        bool              `json:"enabled"`
	RecentSamples  []json.RawMessage `json:"recent_samples" doc:"The newest ten ticks' timing records."`
	StageLatencies []StageLatency    `json:"stage_latencies"`
	TotalRecords   int               `json:"total_records"`
}

type timingInput struct {
	Limit int `query:"limit" default:"1000" minimum:"1" maximum:"10000" doc:"How many recent ticks to summarise."`
}

type timingOutput struct {
	Body TimingBody
}

func registerTiming(api huma.API, deps Deps) {
	huma.Register(api, huma.Operation{
		OperationID: "timing-metrics",
		Method:      http.MethodGet,
		Path:        "/timing-metrics",
		Summary:     "Predict latency by stage",
		Description: "Percentiles of each stage of the predict tick (pickup after the feed commit, data loading, feed_update, model execution) over the newest ticks. The full histogram is crunch_predict_stage_seconds on /metrics.",
		Tags:        []string{"Node"},
	}, func(ctx context.Context, in *timingInput) (*timingOutput, error) {
		rows, err := dbsqlc.New().PredictionTimingList(ctx, deps.Pool, &dbsqlc.PredictionTimingListParams{MaxRows: int32(in.Limit)})
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &timingOutput{Body: summariseTiming(rows, in.Limit)}, nil
	})
}

func summariseTiming(rows []*dbsqlc.PredictionTimingListRow, limit int) TimingBody {
	body := TimingBody{BufferSize: limit, Enabled: true, TotalRecords: len(rows), RecentSamples: []json.RawMessage{}}
	samples := make([][]float64, len(timingStages))
	for i, row := range rows {
		var timing map[string]any
		if json.Unmarshal(row.Timing, &timing) != nil {
			continue
		}
		if i < 10 {
			body.RecentSamples = append(body.RecentSamples, row.Timing)
		}
		for s, stage := range timingStages {
			if v, ok := timing[stage.field].(float64); ok {
				samples[s] = append(samples[s], v)
			}
		}
	}
	var totalMean float64
	stages := make([]StageLatency, len(timingStages))
	for s, stage := range timingStages {
		values := samples[s]
		slices.Sort(values)
		st := StageLatency{Name: stage.name, Step: s + 1, Count: len(values)}
		if len(values) > 0 {
			var sum float64
			for _, v := range values {
				sum += v
			}
			st.MeanUs = sum / float64(len(values))
			st.MinUs, st.MaxUs = values[0], values[len(values)-1]
			st.MedianUs = percentile(values, 0.5)
			st.P95Us = percentile(values, 0.95)
			st.P99Us = percentile(values, 0.99)
		}
		totalMean += st.MeanUs
		stages[s] = st
	}
	for i := range stages {
		if totalMean > 0 {
			stages[i].PctOfTotal = math.Round(stages[i].MeanUs/totalMean*1000) / 10
		}
	}
	body.StageLatencies = stages
	return body
}

// percentile reads a sorted sample by nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(idx, 0), len(sorted)-1)]
}
