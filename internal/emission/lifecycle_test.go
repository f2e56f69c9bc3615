package emission

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNextAllowed(t *testing.T) {
	t.Parallel()

	tests := []struct {
		from, to Status
		want     error
	}{
		{StatusClaimable, StatusPaid, nil},
		{StatusClaimable, StatusPending, ErrIllegalTransition},
		{StatusPaid, StatusPaid, ErrIllegalTransition},
		{StatusPaid, StatusPending, ErrIllegalTransition},
		{StatusPending, "DONE", ErrUnknownStatus},
		{StatusPending, "pending", ErrUnknownStatus},
		{StatusPending, StatusClaimable, ErrIllegalTransition},
		{StatusPending, StatusPending, ErrIllegalTransition},
		{StatusPending, StatusSubmitted, nil},
		{StatusSubmitted, StatusClaimable, nil},
		{StatusSubmitted, StatusPending, ErrIllegalTransition},
		{"", StatusSubmitted, ErrUnknownStatus},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			t.Parallel()
			err := NextAllowed(tt.from, tt.to)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()

	for _, s := range []Status{StatusClaimable, StatusPaid, StatusPending, StatusSubmitted} {
		got, err := ParseStatus(string(s))
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	_, err := ParseStatus("REFUNDED")
	require.ErrorIs(t, err, ErrUnknownStatus)
}
