package jobs

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
)

// TestClientConfigFitsRescueWindow: whatever JOB_RESCUE_AFTER_SECONDS is, River rescues
// after exactly that, and every job's timeout (the default one and each kind's own) ends
// well inside it, so a live job is never taken for dead; at the default window the
// timeouts are the long-standing ones.
func TestClientConfigFitsRescueWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		modelTimeout string
		rescue       time.Duration
		// wantBackfill, wantFeedPoll and wantScore are the kinds' timeouts.
		wantBackfill time.Duration
		wantFeedPoll time.Duration
		wantScore    time.Duration
	}{
		{modelTimeout: "0.5", rescue: 12 * time.Second, wantBackfill: 6 * time.Second, wantFeedPoll: 6 * time.Second, wantScore: 6 * time.Second},
		{modelTimeout: "20", rescue: 60 * time.Second, wantBackfill: 30 * time.Second, wantFeedPoll: 30 * time.Second, wantScore: 30 * time.Second},
		{modelTimeout: "60", rescue: 10 * time.Minute, wantBackfill: time.Minute, wantFeedPoll: 50 * time.Second, wantScore: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.rescue.String(), func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(func(key string) string {
				return map[string]string{
					"JOB_RESCUE_AFTER_SECONDS":     strconv.Itoa(int(tt.rescue.Seconds())),
					"MODEL_RUNNER_TIMEOUT_SECONDS": tt.modelTimeout,
				}[key]
			}, config.Options{Dir: t.TempDir()})
			require.NoError(t, err)
			deps := &Deps{Config: cfg, Logger: slog.New(slog.DiscardHandler)}

			riverConfig := ClientConfig(deps, AllRoles)
			require.Equal(t, tt.rescue, riverConfig.RescueStuckJobsAfter)
			require.Equal(t, min(5*time.Minute, tt.rescue/2), riverConfig.JobTimeout)

			backfill := (&BackfillWorker{deps: deps}).Timeout(&river.Job[BackfillArgs]{})
			feedPoll := (&FeedPollWorker{deps: deps}).Timeout(&river.Job[FeedPollArgs]{})
			score := (&ScoreWorker{deps: deps}).Timeout(&river.Job[ScoreArgs]{})
			require.Equal(t, tt.wantBackfill, backfill)
			require.Equal(t, tt.wantFeedPoll, feedPoll)
			require.Equal(t, tt.wantScore, score)
			for _, timeout := range []time.Duration{backfill, feedPoll, score} {
				require.LessOrEqual(t, timeout, tt.rescue/2)
			}
			predict := (&PredictWorker{deps: deps}).Timeout(&river.Job[PredictArgs]{})
			require.Equal(t, cfg.PredictJobTimeout(), predict)
			require.Less(t, predict, tt.rescue)
		})
	}
}
