package feed

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scriptedProvider answers Fetch from a function, to test FetchAll's paging
// decisions in isolation.
type scriptedProvider struct {
	calls []time.Time
	fetch func(req FetchRequest, call int) (Page, error)
}

func (p *scriptedProvider) Name() string { return "scripted" }

func (p *scriptedProvider) ListSubjects(context.Context) ([]Subject, error) { return nil, nil }

func (p *scriptedProvider) Latest(context.Context, string, string, string) ([]Record, error) {
	return nil, nil
}

func (p *scriptedProvider) Fetch(_ context.Context, req FetchRequest) (Page, error) {
	p.calls = append(p.calls, req.Start)
	return p.fetch(req, len(p.calls)-1)
}

func recordsAt(times ...time.Time) []Record {
	out := make([]Record, 0, len(times))
	for _, ts := range times {
		out = append(out, Record{Subject: "X", Kind: KindCandle, Granularity: "1m", TsEvent: ts, Values: map[string]float64{"close": 1}})
	}
	return out
}

func TestFetchAll(t *testing.T) {
	t.Parallel()

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	minute := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	baseReq := FetchRequest{End: minute(100), Granularity: "1m", Kind: KindCandle, Start: t0, Subject: "X"}

	// collect returns the records delivered and, for each page, whether FetchAll said it
	// was the last.
	collect := func(t *testing.T, p Provider, req FetchRequest) ([]Record, []bool, error) {
		t.Helper()
		var all []Record
		var pages []bool
		err := FetchAll(context.Background(), p, req, func(page []Record, last bool) error {
			require.NotEmpty(t, page)
			require.False(t, slices.Contains(pages, true), "a page after the last")
			pages = append(pages, last)
			all = append(all, page...)
			return nil
		})
		return all, pages, err
	}

	t.Run("CallbackError", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) {
			return Page{Records: recordsAt(minute(0)), More: true}, nil
		}}
		boom := errors.New("disk full")
		err := FetchAll(context.Background(), p, baseReq, func([]Record, bool) error { return boom })
		require.ErrorIs(t, err, boom)
		require.Len(t, p.calls, 1)
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) { return Page{}, nil }}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := FetchAll(ctx, p, baseReq, func([]Record, bool) error { return nil })
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, p.calls)
	})

	t.Run("EmptyPageStops", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) { return Page{More: true}, nil }}
		all, pages, err := collect(t, p, baseReq)
		require.NoError(t, err)
		require.Empty(t, all)
		require.Empty(t, pages)
		require.Len(t, p.calls, 1)
	})

	t.Run("FetchError", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) {
			return Page{}, &HTTPError{StatusCode: 429, RetryAfter: 3 * time.Second}
		}}
		_, _, err := collect(t, p, baseReq)
		require.ErrorIs(t, err, ErrRateLimited)
		d, ok := RetryAfter(err)
		require.True(t, ok)
		require.Equal(t, 3*time.Second, d)
	})

	t.Run("GapWithCursor", func(t *testing.T) {
		t.Parallel()
		// Page 2 is an empty window of history with a cursor past it.
		p := &scriptedProvider{fetch: func(_ FetchRequest, call int) (Page, error) {
			switch call {
			case 0:
				return Page{Records: recordsAt(minute(0), minute(1)), More: true, Next: minute(2)}, nil
			case 1:
				return Page{More: true, Next: minute(50)}, nil
			default:
				return Page{Records: recordsAt(minute(50))}, nil
			}
		}}
		all, pages, err := collect(t, p, baseReq)
		require.NoError(t, err)
		require.Len(t, all, 3)
		require.Equal(t, []bool{false, true}, pages)
		require.Equal(t, []time.Time{t0, minute(2), minute(50)}, p.calls)
	})

	t.Run("NoProgressStops", func(t *testing.T) {
		t.Parallel()
		// A provider that ignores the cursor and always returns the same page
		// must not loop forever or deliver the page twice.
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) {
			return Page{Records: recordsAt(minute(0), minute(1)), More: true, Next: minute(1)}, nil
		}}
		all, pages, err := collect(t, p, baseReq)
		require.NoError(t, err)
		require.Len(t, all, 2)
		// The first page could not know that nothing would follow it.
		require.Equal(t, []bool{false}, pages)
		require.Len(t, p.calls, 2)
	})

	t.Run("OverlapDeduplicated", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(req FetchRequest, _ int) (Page, error) {
			// Returns the cursor's minute back to the previous one, overlapping.
			i := int(req.Start.Sub(t0) / time.Minute)
			from := max(0, i-1)
			var ts []time.Time
			for j := from; j < min(i+10, 30); j++ {
				ts = append(ts, minute(j))
			}
			return Page{Records: recordsAt(ts...), More: i+10 < 30}, nil
		}}
		all, pages, err := collect(t, p, baseReq)
		require.NoError(t, err)
		require.Equal(t, []bool{false, false, true}, pages)
		require.Len(t, all, 30)
		for i, r := range all {
			require.Equal(t, minute(i), r.TsEvent)
		}
	})

	t.Run("PastEndStops", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) {
			return Page{Records: recordsAt(minute(100)), More: true}, nil
		}}
		_, pages, err := collect(t, p, baseReq)
		require.NoError(t, err)
		require.Equal(t, []bool{true}, pages)
		require.Len(t, p.calls, 1)
	})

	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		p := &scriptedProvider{fetch: func(FetchRequest, int) (Page, error) { return Page{}, nil }}
		noop := func([]Record, bool) error { return nil }
		for name, req := range map[string]FetchRequest{
			"BadGranularity": {Granularity: "1x", Kind: KindCandle, Start: t0, Subject: "X"},
			"EndBeforeStart": {End: t0.Add(-time.Minute), Granularity: "1m", Kind: KindCandle, Start: t0, Subject: "X"},
			"NegativeLimit":  {Granularity: "1m", Kind: KindCandle, Limit: -1, Start: t0, Subject: "X"},
			"NoStart":        {Granularity: "1m", Kind: KindCandle, Subject: "X"},
			"NoSubject":      {Granularity: "1m", Kind: KindCandle, Start: t0},
		} {
			require.Error(t, FetchAll(context.Background(), p, req, noop), name)
		}
		require.Empty(t, p.calls)
	})
}

func TestNew(t *testing.T) {
	t.Parallel()

	for _, name := range ProviderNames() {
		p, err := New(name, Config{})
		require.NoError(t, err)
		require.Equal(t, name, p.Name())
	}
	p, err := New(" Synthetic ", Config{})
	require.NoError(t, err)
	require.Equal(t, ProviderSynthetic, p.Name())

	_, err = New("mongodb", Config{})
	require.ErrorContains(t, err, `unknown feed provider "mongodb", want one of binance, pyth, synthetic`)

	_, err = New(ProviderBinance, Config{Options: Options{"timeout_seconds": "soon"}})
	require.ErrorContains(t, err, "FEED_OPT_timeout_seconds")
}

func TestPageSkipCounts(t *testing.T) {
	t.Parallel()
	p := Page{Skipped: []SkipReason{{Reason: SkipDuplicate}, {Reason: SkipFuture}, {Reason: SkipDuplicate}}}
	require.Equal(t, map[string]int{SkipDuplicate: 2, SkipFuture: 1}, p.SkipCounts())
}
