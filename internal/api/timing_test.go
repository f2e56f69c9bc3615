package api

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

func TestSummariseTiming(t *testing.T) {
	t.Parallel()
	var rows []*dbsqlc.PredictionTimingListRow
	for i := 1; i <= 100; i++ {
		timing, _ := json.Marshal(map[string]any{
			"pickup_delay_us": float64(i), "data_loaded_us": 100.0, "feed_update_us": 200.0, "model_execution_us": 700.0,
		})
		rows = append(rows, &dbsqlc.PredictionTimingListRow{Timing: timing})
	}
	rows = append(rows, &dbsqlc.PredictionTimingListRow{Timing: json.RawMessage(`null`)})

	body := summariseTiming(rows, 1000)
	require.True(t, body.Enabled)
	require.Equal(t, 101, body.TotalRecords)
	require.Len(t, body.RecentSamples, 10)
	require.Len(t, body.StageLatencies, 4)
	pickup := body.StageLatencies[0]
	require.Equal(t, "pickup", pickup.Name)
	require.Equal(t, 100, pickup.Count)
	require.InDelta(t, 50.5, pickup.MeanUs, 1e-9)
	require.Equal(t, 50.0, pickup.MedianUs)
	require.Equal(t, 95.0, pickup.P95Us)
	require.Equal(t, 99.0, pickup.P99Us)
	require.Equal(t, 1.0, pickup.MinUs)
	require.Equal(t, 100.0, pickup.MaxUs)
	require.InDelta(t, 70.0/(0.505+1+2+7)*10, body.StageLatencies[3].PctOfTotal, 0.1)

	empty := summariseTiming(nil, 10)
	require.NotNil(t, empty.RecentSamples)
	require.Zero(t, empty.StageLatencies[0].Count)
}
