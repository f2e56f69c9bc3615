package scoring

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

// benchItems builds n predictions shaped like the realtime pack's: a {value} output and
// the default resolver's ground truth.
func benchItems(n int) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{
			GroundTruth:  groundTruthFor(100, 100+float64(i%7)-3),
			ModelID:      "model-1",
			Prediction:   map[string]any{"value": float64(i%11)/10 - 0.5},
			PredictionID: "PRE_model-1_btc-60s_20260301_120000.000",
		}
	}
	return items
}

// benchScorer reports preds/s for scoring items one at a time on one goroutine
// ("One") and through ScoreBatch on GOMAXPROCS workers ("Batch"), the score job's path.
func benchScorer(b *testing.B, s Scorer) {
	ctx := context.Background()
	items := benchItems(4096)
	b.Run("One", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if res := ScoreOne(ctx, s, items[n%len(items)]); !res.Success {
				b.Fatal(res.FailedReason)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "preds/s")
	})
	b.Run("Batch", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			res := ScoreBatch(ctx, s, items)
			if !res[0].Success {
				b.Fatal(res[0].FailedReason)
			}
			n += len(items)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "preds/s")
	})
}

func BenchmarkScorePnl(b *testing.B) {
	benchScorer(b, PnL{})
}

func BenchmarkScoreStarlark(b *testing.B) {
	s, err := NewRegistry().Scorer("testdata/pnl.star:score", script.Options{})
	require.NoError(b, err)
	benchScorer(b, s)
}

func BenchmarkCRPS1000(b *testing.B) {
	samples := make([]any, 1000)
	for i := range samples {
		samples[i] = 100 + float64(i%50)/10
	}
	it := Item{GroundTruth: groundTruthFor(100, 102), Prediction: map[string]any{"samples": samples}}
	b.ReportAllocs()
	for b.Loop() {
		if res := ScoreOne(context.Background(), CRPS{}, it); !res.Success {
			b.Fatal(res.FailedReason)
		}
	}
}
