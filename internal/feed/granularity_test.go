package feed

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseGranularity(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "", wantErr: "want a number and a unit"},
		{in: "-1m", wantErr: "not a positive integer"},
		{in: "0m", wantErr: "not a positive integer"},
		{in: "15m", want: 15 * time.Minute},
		{in: "1.5m", wantErr: "not a positive integer"},
		{in: "1M", wantErr: `unknown unit "M"`},
		{in: "1d", want: 24 * time.Hour},
		{in: "1h", want: time.Hour},
		{in: "1m", want: time.Minute},
		{in: "1m30s", wantErr: "not a positive integer"},
		{in: "1s", want: time.Second},
		{in: "1w", wantErr: `unknown unit "w"`},
		{in: "25h", wantErr: "maximum of 1d"},
		{in: "2d", wantErr: "maximum of 1d"},
		{in: "5m", want: 5 * time.Minute},
		{in: "99999999999999999999s", wantErr: "not a positive integer"},
		{in: "m", wantErr: "want a number and a unit"},
		{in: " 1m", wantErr: "not a positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseGranularity(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Contains(t, err.Error(), "granularity")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFloorTime(t *testing.T) {
	t.Parallel()

	base := time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)
	tests := []struct {
		name string
		in   time.Time
		step time.Duration
		want time.Time
	}{
		{name: "day", in: base, step: 24 * time.Hour, want: time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)},
		{name: "exact", in: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC), step: time.Minute, want: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)},
		{name: "FiveMinutes", in: base, step: 5 * time.Minute, want: time.Date(2026, 3, 4, 5, 5, 0, 0, time.UTC)},
		{name: "minute", in: base, step: time.Minute, want: time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)},
		{name: "NonUTC", in: base.In(time.FixedZone("x", 3600+1800)), step: time.Hour, want: time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)},
		{name: "second", in: base, step: time.Second, want: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)},
		{name: "ZeroStep", in: base, step: 0, want: base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := FloorTime(tt.in, tt.step)
			require.True(t, tt.want.Equal(got), "want %s, got %s", tt.want, got)
			require.Equal(t, time.UTC, got.Location())
		})
	}

	t.Run("Ceil", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, time.Date(2026, 3, 4, 5, 7, 0, 0, time.UTC), ceilTime(base, time.Minute))
		exact := time.Date(2026, 3, 4, 5, 7, 0, 0, time.UTC)
		require.Equal(t, exact, ceilTime(exact, time.Minute))
	})
}
