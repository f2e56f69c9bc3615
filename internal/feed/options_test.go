package feed

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptionsFromEnviron(t *testing.T) {
	t.Parallel()

	opts := OptionsFromEnviron([]string{
		"FEED_OPT_HERMES_URL=http://a",
		"FEED_OPT_feed_id_SOL=abc",
		"FEED_OPT_=ignored",
		"FEED_PROVIDER=pyth",
		"feed_opt_seed=7",
		"FEED_OPT_seed=8",
		"FEED_OPT_EMPTY=",
		"FEED_OPT_WITH_EQUALS=a=b",
		"NOEQUALS",
	})
	require.Equal(t, Options{
		"empty":       "",
		"feed_id_sol": "abc",
		"hermes_url":  "http://a",
		"seed":        "8",
		"with_equals": "a=b",
	}, opts)
}

func TestOptionsGetters(t *testing.T) {
	t.Parallel()

	opts := Options{
		"bad":        "x",
		"blank":      "  ",
		"float":      " 1.5 ",
		"Mixed_Case": "yes",
		"inf":        "Inf",
		"int":        "42",
		"negative":   "-2",
		"secs":       "0.25",
	}

	t.Run("String", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "def", opts.String("missing", "def"))
		require.Equal(t, "def", opts.String("blank", "def"))
		require.Equal(t, "yes", opts.String("mixed_case", "def"))
		require.Equal(t, "x", opts.String("BAD", "def"))
	})

	t.Run("Float", func(t *testing.T) {
		t.Parallel()
		f, err := opts.Float("float", 0)
		require.NoError(t, err)
		require.InDelta(t, 1.5, f, 0)
		f, err = opts.Float("missing", 3)
		require.NoError(t, err)
		require.InDelta(t, 3.0, f, 0)
		_, err = opts.Float("bad", 0)
		require.ErrorContains(t, err, "FEED_OPT_bad")
		_, err = opts.Float("inf", 0)
		require.ErrorContains(t, err, "finite")
	})

	t.Run("Int", func(t *testing.T) {
		t.Parallel()
		n, err := opts.Int("int", 0)
		require.NoError(t, err)
		require.Equal(t, 42, n)
		_, err = opts.Int("float", 0)
		require.ErrorContains(t, err, "integer")
	})

	t.Run("Seconds", func(t *testing.T) {
		t.Parallel()
		d, err := opts.Seconds("secs", 0)
		require.NoError(t, err)
		require.Equal(t, 250*time.Millisecond, d)
		d, err = opts.Seconds("missing", time.Minute)
		require.NoError(t, err)
		require.Equal(t, time.Minute, d)
		_, err = opts.Seconds("negative", 0)
		require.ErrorContains(t, err, "non-negative")
	})

	t.Run("WithPrefix", func(t *testing.T) {
		t.Parallel()
		o := Options{"feed_id_sol": " abc ", "feed_id_": "x", "feed_id_doge": " ", "other": "y"}
		require.Equal(t, map[string]string{"sol": "abc"}, o.WithPrefix("FEED_ID_"))
	})

	t.Run("Nil", func(t *testing.T) {
		t.Parallel()
		var o Options
		require.Equal(t, "d", o.String("x", "d"))
		require.Empty(t, o.WithPrefix("x"))
	})
}
