package modelhost

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// feedScanDocs are feed_update documents, each with whether scanFeed reads it
// itself (true) or leaves it to the generic path.
var feedScanDocs = []struct {
	doc  string
	fast bool
}{
	{`{"symbol":"BTC","asof_ts":1700000120,"candles_1m":[{"ts":1700000000,"open":100,"high":101,"low":99,"close":100.5,"volume":1},{"ts":1700000060,"close":-1.25e2}]}`, true},
	{` { "symbol" : "ETH" , "ticks" : [ {"ts":"2026-01-01T00:00:00Z","price":10} , {"ts":null,"price":0} ] } `, true},
	{`{"subject":"SOL","candles_1m":[{"close":1}]}`, true},
	{`{"symbol":"","subject":"SOL","candles_1m":[]}`, true},
	{`{"symbol":7,"candles_1m":{"close":1},"ticks":"none"}`, true},
	{`{"candles_1m":[1,"x",null,[],{"close":"1"},{"close":null},{"close":2,"close":"x"},{"close":"x","close":3}]}`, true},
	{`{"candles_1m":[{"close":1}],"candles_1m":[{"close":2}],"symbol":"A","symbol":"B"}`, true},
	{`{"candles_1m":[{"ts":1,"ts":2,"close":1e400},{"ts":3,"close":-0,"extra":{"a":[1,{"b":true}]}}]}`, true},
	{`{"symbol":"BTC","meta":{"nested":[[[]]],"flag":false,"n":null}}`, true},
	{`{}`, true},
	{`{"candles_1m":[{"close":2E3,"ts":1.5e1,"x":7E-1},{"close":0.5,"ts":0,"x":12.5E+1},{"close":-7,"ts":-0.0,"x":1},{"close":1}]}`, true},
	// Rows whose keys differ from the last row's at the same place.
	{`{"candles_1m":[{"close":1,"price":2},{"close":3,"price":4}],"ticks":[{"close":5,"price":6},{"close":7,"price":8}]}`, true},
	{`{"candles_1m":[{"ts":1,"close":2},{"close":3,"ts":4},{"ts" : 5, "close":6},{"ts":7 ,"close":8},{"tsx":9,"close":10},{"t":11,"close":12},{"ts":13,"close":14}]}`, true},
	{`{"candles_1m":[{"ts":1, "close":2},{"ts":3,"close":4},{"ts":5 , "close":6},{"ts":7,  "close":8},{"ts":9,"close":10}]}`, true},
	{`{"candles_1m":[{"abcdefghijklm":1,"close":2},{"abcdefghijklm":3,"close":4},{"abcdefghijklmn":5,"close":6},{"abcdefghijklmn":7,"close":8}]}`, true},
	{`{"candles_1m":[{"a_key_longer_than_two_words":1,"close":2,"ts":3},{"a_key_longer_than_two_words":4,"close":5,"ts":6}]}`, true},
	{`{"candles_1m":[{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"close":9,"ts":10},{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"close":11,"ts":12}]}`, true},
	{`{"candles_1m":[{"close":1,"ts":2},{"close":"x","ts":"3"},{"close":4,"ts":null},{"close":5,"ts":6}]}`, true},
	{`{"symbol":"BTC€","note":"Zürich 🚀","candles_1m":[{"close":1,"ü":"�"}]}`, true},
	{`{"candles_1m":[{"ts":true,"close":1},{"ts":{"s":1},"close":2},{"ts":[3],"close":3},{"ts":null,"close":4},{"close":5}]}`, true},
	// Left to the generic path.
	{`{"symbol":"BTC","candles_1m":[{"ts":1,"close":NaN}]}`, false},
	{`{"symbol":"B\u0054C"}`, false},
	{`{"sym\u0062ol":"BTC"}`, false},
	{`{"candles_1m":[{"close":1,"ts":2},{"clos\u0065":3,"ts":4}]}`, false},
	{`{"candles_1m":[{"ts":1,"close":2},{"ts":3"close":4}]}`, false},
	{`{"candles_1m":[{"ts":1,"close":2},{"ts":3,,"close":4}]}`, false},
	{"{\"candles_1m\":[{\"abcdefghijklm\":1,\"close\":2},{\"abcdefghijk\x01m\":3,\"close\":4}]}", false},
	{"{\"candles_1m\":[{\"abcdef\":1,\"close\":2},{\"abc\xffef\":3,\"close\":4}]}", false},
	{"{\"symbol\":\"\xff\"}", false},
	{"{\"meta\":\"ok \xe2\x82\",\"candles_1m\":[{\"close\":1e400}]}", false},
	{"{\"candles_1m\":[{\"close\":1,\"n\xc3\":2}]}", false},
	{"{\"symbol\":\"BTC\xed\xa0\x80\"}", false},
	{"{\"symbol\":\"BTC\xc0\xaf\"}", false},
	{"{\"symbol\":\"BTC\xf4\x90\x80\x80\"}", false},
	{"{\"symbol\":\"\x01\"}", false},
	{"{\"symbol\":\"BTC\"}\xff", false},
	{"{\"candles_1m\":[{\"close\":1\xa0}]}", false},
	{"{\"symbol\":\"BTC\x7f\"}", true},
	{`[{"close":1}]`, false},
	{`{"candles_1m":[{"close":01}]}`, false},
	{`{"candles_1m":[{"close":1.}]}`, false},
	{`{"candles_1m":[{"close":1},]}`, false},
	{`{"symbol":"BTC"} x`, false},
	{`{"symbol":"BTC"`, false},
	{``, false},
}

// TestScanFeedMatchesGeneric checks that the fast path reads what the generic
// decoder and feedUpdate's map path read, and takes the documents it should.
func TestScanFeedMatchesGeneric(t *testing.T) {
	t.Parallel()

	for _, tt := range feedScanDocs {
		symbol, points, ok := scanFeed([]byte(tt.doc), nil)
		require.Equal(t, tt.fast, ok, tt.doc)
		if ok {
			wantSymbol, wantPoints := genericFeed(t, []byte(tt.doc))
			require.Equal(t, wantSymbol, symbol, tt.doc)
			require.Equal(t, wantPoints, slices.Clip(append([]point{}, points...)), tt.doc)
		}
	}
}

func FuzzScanFeed(f *testing.F) {
	for _, tt := range feedScanDocs {
		f.Add([]byte(tt.doc))
	}
	// Rows long enough for their keys to be checked against the last row's.
	for _, doc := range []any{btcCandles(4), candles(1, 2, 3)} {
		raw, err := json.Marshal(doc)
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		symbol, points, ok := scanFeed(doc, nil)
		if !ok {
			return
		}
		wantSymbol, wantPoints := genericFeed(t, doc)
		require.Equal(t, wantSymbol, symbol)
		require.Equal(t, wantPoints, slices.Clip(append([]point{}, points...)))
	})
}

// genericFeed is what feedUpdate reads from doc without scanFeed.
func genericFeed(t *testing.T, doc []byte) (string, []point) {
	t.Helper()
	v, err := variant.ParseJSON(doc)
	require.NoError(t, err, "the fast path took a document the generic decoder refuses")
	m, ok := v.(map[string]any)
	require.True(t, ok, "the fast path took a document that is not an object")
	symbol, points := feedFromMap(m)
	return symbol, slices.Clip(append([]point{}, points...)) // nil and empty alike
}

// TestMergeOrderedMatchesMerge checks the one-pass merge against merging the
// points one at a time, on random ordered histories and windows that overlap
// them as successive ticks do.
func TestMergeOrderedMatchesMerge(t *testing.T) {
	t.Parallel()

	rng := rand.New(rand.NewPCG(1, 2))
	series := func(from, n int, dupEvery int) []point {
		var s []point
		for ts := from; len(s) < n; ts += 1 + rng.IntN(3) {
			s = append(s, point{close: rng.Float64(), ts: numberTS(float64(ts))})
			if dupEvery > 0 && rng.IntN(dupEvery) == 0 {
				s = append(s, point{close: rng.Float64(), ts: numberTS(float64(ts))})
			}
		}
		return s
	}
	for range 500 {
		var history []point
		for _, p := range series(rng.IntN(50), rng.IntN(40), 0) {
			history = merge(history, p)
		}
		incoming := series(rng.IntN(100), rng.IntN(60), 5)
		require.True(t, ordered(history))
		require.True(t, ordered(incoming))

		want := append([]point(nil), history...)
		for _, p := range incoming {
			want = merge(want, p)
		}
		got := mergeOrdered(append([]point(nil), history...), incoming)
		require.Equal(t, want, got)
	}
	// Passing the points older than the history changes nothing, NaN
	// timestamps (which compare as neither older nor newer) included.
	withNaN := func(n int) []point {
		var s []point
		for ts := float64(rng.IntN(20)); len(s) < n; ts += float64(rng.IntN(3)) {
			p := point{close: rng.Float64(), ts: numberTS(ts)}
			if rng.IntN(6) == 0 {
				p.ts = numberTS(math.NaN())
			}
			s = append(s, p)
		}
		return s
	}
	skipped := 0
	for range 5000 {
		history, incoming := withNaN(rng.IntN(8)), withNaN(rng.IntN(12))
		require.True(t, ordered(history))
		require.True(t, ordered(incoming))
		skipped += olderThanHistory(history, incoming)
		want := mergeOrderedFrom(append([]point(nil), history...), incoming)
		got := mergeOrdered(append([]point(nil), history...), incoming)
		require.Len(t, got, len(want))
		for i := range want {
			require.Equal(t, want[i].close, got[i].close)
			require.Equal(t, math.Float64bits(want[i].ts.num), math.Float64bits(got[i].ts.num))
		}
	}
	require.Positive(t, skipped)
	require.False(t, ordered([]point{{ts: numberTS(2)}, {ts: numberTS(1)}}))
	require.False(t, ordered([]point{{ts: numberTS(1)}, {ts: stringTS("1")}}))
	require.False(t, ordered([]point{{ts: timestamp{}}}))
}

// btcCandles is a feed_update argument as the candle normalizer writes it for
// a BTC feed: n one-minute candles with prices in cents and a fractional
// volume, about 13 KB for 120 candles.
func btcCandles(n int) map[string]any {
	rows := make([]any, n)
	for i := range rows {
		open := 97000.75 + float64(i%13)*0.25
		rows[i] = map[string]any{
			"close":  open + 11.75,
			"high":   open + 19.5,
			"low":    open - 10.75,
			"open":   open,
			"ts":     int64(1732500000 + 60*i),
			"volume": 12.345 + float64(i%5),
		}
	}
	return map[string]any{"asof_ts": int64(1732500000 + 60*(n-1)), "candles_1m": rows, "symbol": "BTC"}
}

// TestFeedUpdateRecyclesInputs checks that feed_update histories built from
// recycled scanned inputs are the ones the generic decoder's maps build,
// window after window (longer and shorter than the last, candles and ticks),
// with several models feeding at once as a node's hosts do.
func TestFeedUpdateRecyclesInputs(t *testing.T) {
	t.Parallel()

	windows := []any{
		btcCandles(120),
		btcCandles(30),
		candles(1, 2, 3),
		map[string]any{"symbol": "BTC", "ticks": []any{
			map[string]any{"ts": "2026-01-01T00:00:00Z", "price": 5.0},
			map[string]any{"ts": "2026-01-01T00:00:01Z", "price": 6.0},
		}},
		btcCandles(120),
		btcCandles(121),
	}
	for model := range 4 {
		t.Run(strconv.Itoa(model), func(t *testing.T) {
			t.Parallel()

			newModel := func() *exampleModel {
				f, err := ExampleFactory("momentum", ExampleOptions{})
				require.NoError(t, err)
				m, err := f(nil, nil)
				require.NoError(t, err)
				return m.(*exampleModel)
			}
			scanned, generic := newModel(), newModel()
			for range 3 {
				for _, w := range windows {
					raw, err := json.Marshal(w)
					require.NoError(t, err)
					args, err := variant.Args(json.RawMessage(raw))
					require.NoError(t, err)
					in, err := decodeFeedArgs(args)
					require.NoError(t, err)
					require.IsType(t, &feedInput{}, in[0])
					_, err = scanned.feedUpdate(t.Context(), in, nil)
					require.NoError(t, err)
					in, err = variant.DecodeArgs(args)
					require.NoError(t, err)
					_, err = generic.feedUpdate(t.Context(), in, nil)
					require.NoError(t, err)
					require.Equal(t, generic.series, scanned.series)
				}
			}
		})
	}
}

func BenchmarkFeedUpdate(b *testing.B) {
	closes := make([]float64, 120)
	for i := range closes {
		closes[i] = 100 + float64(i%7)
	}
	raw, err := json.Marshal(candles(closes...))
	require.NoError(b, err)
	args, err := variant.Args(json.RawMessage(raw))
	require.NoError(b, err)
	btcRaw, err := json.Marshal(btcCandles(120))
	require.NoError(b, err)
	btcArgs, err := variant.Args(json.RawMessage(btcRaw))
	require.NoError(b, err)
	f, err := ExampleFactory("momentum", ExampleOptions{})
	require.NoError(b, err)
	m, err := f(nil, nil)
	require.NoError(b, err)
	method, _ := m.Method("feed_update")
	for _, bb := range []struct {
		name   string
		decode func() ([]any, error)
	}{
		{"scanned", func() ([]any, error) { return decodeFeedArgs(args) }},
		{"generic", func() ([]any, error) { return variant.DecodeArgs(args) }},
		{"scanned_btc", func() ([]any, error) { return decodeFeedArgs(btcArgs) }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, err := bb.decode()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := method.Func(context.Background(), a, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
