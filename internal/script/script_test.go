package script

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    Ref
		wantErr string
	}{
		{in: " s.star:f_1 ", want: Ref{Func: "f_1", Path: "s.star"}},
		{in: ".star:fn", wantErr: "must name a .star file"},
		{in: "C:/x/s.star:fn", want: Ref{Func: "fn", Path: "C:/x/s.star"}},
		{in: "a.star", wantErr: "want path/to/file.star:function"},
		{in: "challenge/scoring.star:score_prediction", want: Ref{Func: "score_prediction", Path: "challenge/scoring.star"}},
		{in: "s.py:fn", wantErr: "must name a .star file"},
		{in: "s.star:", wantErr: "function name is empty"},
		{in: "s.star:2fn", wantErr: "not an identifier"},
		{in: "s.star:score-fn", wantErr: "not an identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRef(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, strings.TrimSpace(tt.in), got.String())
		})
	}
}

func TestIsRef(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want bool
	}{
		{in: "crps", want: false},
		{in: "mean", want: false},
		{in: "pnl", want: false},
		{in: "scoring.star", want: true},
		{in: "scoring.star:score", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, IsRef(tt.in))
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		src     string
		fn      string
		wantErr []string
	}{
		{
			name:    "LoadStatement",
			src:     "load(\"other.star\", \"x\")\ndef f(): return 1\n",
			fn:      "f",
			wantErr: []string{"s.star:1:", "load(\"other.star\") is not allowed"},
		},
		{
			name:    "MissingFunction",
			src:     "def other(a, b):\n    return a\nLIMIT = 3\n",
			fn:      "score",
			wantErr: []string{"s.star has no global \"score\"", "LIMIT, other"},
		},
		{
			name:    "NotCallable",
			src:     "LIMIT = 1\n\nscore = 3\n",
			fn:      "score",
			wantErr: []string{"s.star:3:1: \"score\" is a int, not a function"},
		},
		{
			name:    "OpenIsUndefined",
			src:     "def f():\n    return open(\"/etc/passwd\")\n",
			fn:      "f",
			wantErr: []string{"s.star:2:12: undefined: open"},
		},
		{
			name:    "SeveralUndefined",
			src:     "def f():\n    return time.now() + os.getenv(\"X\")\n",
			fn:      "f",
			wantErr: []string{"s.star:2:12: undefined: time", "and 1 more", "s.star:2:25: undefined: os"},
		},
		{
			name:    "SyntaxError",
			src:     "def f(:\n  return 1\n",
			fn:      "f",
			wantErr: []string{"s.star:1:8: got ':', want ')'"},
		},
		{
			name:    "TopLevelFor",
			src:     "for i in range(3):\n    pass\n",
			fn:      "f",
			wantErr: []string{"s.star:1:1", "for loop not within a function"},
		},
		{
			name:    "TopLevelInfiniteComputation",
			src:     "def spin():\n    n = 0\n    while True:\n        n += 1\nX = spin()\ndef f(): return 1\n",
			fn:      "f",
			wantErr: []string{"executing top level", "step limit exceeded", "s.star:"},
		},
		{
			name:    "TopLevelRuntimeError",
			src:     "X = 1 // 0\ndef f(): return X\n",
			fn:      "f",
			wantErr: []string{"executing top level", "s.star:1:7", "division by zero"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadSource("s.star", []byte(tt.src), tt.fn, Options{MaxSteps: 10_000})
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		_, err := Load("testdata/nope.star", "score", Options{})
		require.ErrorContains(t, err, "testdata/nope.star:score")
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		ref, err := ParseRef("testdata/pnl.star:score")
		require.NoError(t, err)
		f, err := LoadRef(ref, Options{})
		require.NoError(t, err)
		require.Equal(t, "testdata/pnl.star:score", f.String())
		require.Equal(t, ref, f.Ref())
		got, err := f.Call(context.Background(),
			map[string]any{"value": 0.5},
			map[string]any{"entry_price": 100.0, "profit": 0.01},
		)
		require.NoError(t, err)
		require.InDelta(t, 50.0, got.(map[string]any)["value"], 1e-9)
	})
	t.Run("SyntaxErrorNamesFileAndLine", func(t *testing.T) {
		t.Parallel()
		_, err := Load("testdata/syntax_error.star", "score", Options{})
		require.ErrorContains(t, err, "testdata/syntax_error.star:3:")
	})
}

func mustLoad(t *testing.T, src, fn string, opts Options) *Func {
	t.Helper()
	f, err := LoadSource("s.star", []byte(src), fn, opts)
	require.NoError(t, err)
	return f
}

func TestCall(t *testing.T) {
	t.Parallel()

	t.Run("DictKeysAreSorted", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f(d):\n    return list(d.keys())\n", "f", Options{})
		got, err := f.Call(context.Background(), map[string]any{"z": 1, "a": 2, "m": 3, "b": 4})
		require.NoError(t, err)
		require.Equal(t, []any{"a", "b", "m", "z"}, got)
	})
	t.Run("FrozenGlobals", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "SEEN = []\ndef f(x):\n    SEEN.append(x)\n    return len(SEEN)\n", "f", Options{})
		_, err := f.Call(context.Background(), 1)
		require.ErrorContains(t, err, "frozen list")
		require.ErrorContains(t, err, "s.star:3:16")
	})
	t.Run("Math", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f(x):\n    return math.sqrt(x) + math.log(math.e) + math.fabs(-1)\n", "f", Options{})
		got, err := f.Call(context.Background(), 16)
		require.NoError(t, err)
		require.InDelta(t, 6.0, got, 1e-12)
	})
	t.Run("NaNPassesThrough", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f():\n    return {\"value\": float(\"nan\")}\n", "f", Options{})
		got, err := f.Call(context.Background())
		require.NoError(t, err)
		require.True(t, math.IsNaN(got.(map[string]any)["value"].(float64)))
	})
	t.Run("Print", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var lines []string
		f := mustLoad(t, "def f(x):\n    print(\"x is\", x)\n    return x\n", "f", Options{Print: func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, msg)
		}})
		_, err := f.Call(context.Background(), 7)
		require.NoError(t, err)
		require.Equal(t, []string{"x is 7"}, lines)
	})
	t.Run("PrintDiscardedByDefault", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f():\n    print(\"noise\")\n    return None\n", "f", Options{})
		got, err := f.Call(context.Background())
		require.NoError(t, err)
		require.Nil(t, got)
	})
	t.Run("RecursionRefused", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f(n):\n    return f(n + 1)\n", "f", Options{})
		_, err := f.Call(context.Background(), 0)
		require.ErrorContains(t, err, "s.star:2:12: function f called recursively")
	})
	t.Run("RuntimeErrorNamesLine", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def helper(d):\n    return d[\"missing\"]\n\ndef f(d):\n    return helper(d)\n", "f", Options{})
		_, err := f.Call(context.Background(), map[string]any{})
		require.ErrorContains(t, err, "calling s.star:f: s.star:2:13:")
		require.ErrorContains(t, err, "key \"missing\" not in dict")
	})
	t.Run("UnsupportedArgument", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f(x):\n    return x\n", "f", Options{})
		_, err := f.Call(context.Background(), map[string]any{"a": []any{1, make(chan int)}})
		require.ErrorContains(t, err, "converting argument 1: at [\"a\"][1]: unsupported Go type chan int")
	})
	t.Run("UnsupportedResult", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f():\n    return {\"fn\": f}\n", "f", Options{})
		_, err := f.Call(context.Background())
		require.ErrorContains(t, err, "converting result: at [\"fn\"]: unsupported Starlark type function")
	})
	t.Run("WhileAndSetAllowed", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, "def f(n):\n    s = set()\n    while n > 0:\n        s.add(n % 3)\n        n -= 1\n    return len(s)\n", "f", Options{})
		got, err := f.Call(context.Background(), 10)
		require.NoError(t, err)
		require.Equal(t, int64(3), got)
	})
}

func TestCallLimits(t *testing.T) {
	t.Parallel()

	const spin = "def f(n):\n    i = 0\n    while n < 0 or i < n:\n        i += 1\n    return i\n"

	t.Run("ContextAlreadyDone", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, spin, "f", Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.Call(ctx, 1)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("ContextDeadline", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, spin, "f", Options{MaxSteps: math.MaxUint64, Timeout: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := f.Call(ctx, -1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "s.star:")
	})
	t.Run("StepLimit", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, spin, "f", Options{MaxSteps: 5_000})
		_, err := f.Call(context.Background(), -1)
		require.ErrorIs(t, err, ErrStepLimit)
		require.ErrorContains(t, err, "5000 steps")
		require.ErrorContains(t, err, "at s.star:")

		// The pooled thread must come back clean: a bounded call still succeeds and a
		// second runaway call is still stopped.
		got, err := f.Call(context.Background(), 10)
		require.NoError(t, err)
		require.Equal(t, int64(10), got)
		_, err = f.Call(context.Background(), -1)
		require.ErrorIs(t, err, ErrStepLimit)
	})
	t.Run("StepsAreCountedPerCall", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, spin, "f", Options{MaxSteps: 5_000})
		for range 100 {
			got, err := f.Call(context.Background(), 100)
			require.NoError(t, err)
			require.Equal(t, int64(100), got)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		f := mustLoad(t, spin, "f", Options{MaxSteps: math.MaxUint64, Timeout: 30 * time.Millisecond})
		start := time.Now()
		_, err := f.Call(context.Background(), -1)
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorContains(t, err, "30ms")
		require.Less(t, time.Since(start), 5*time.Second)

		got, err := f.Call(context.Background(), 3)
		require.NoError(t, err)
		require.Equal(t, int64(3), got)
	})
}

func TestCheckArity(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		src     string
		n       int
		wantErr string
	}{
		{name: "Defaults", src: "def f(a, b, c=1):\n    return a\n", n: 2},
		{name: "Exact", src: "def f(a, b):\n    return a\n", n: 2},
		{name: "KwargsOnly", src: "def f(a, b, **kw):\n    return a\n", n: 2},
		{name: "TooFew", src: "def f(a):\n    return a\n", n: 2, wantErr: "s.star:1:1: f takes 1 positional parameter(s), must accept 2"},
		{name: "TooMany", src: "def f(a, b, c):\n    return a\n", n: 2, wantErr: "must accept 2"},
		{name: "Varargs", src: "def f(*args):\n    return args\n", n: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := mustLoad(t, tt.src, "f", Options{})
			err := f.CheckArity(tt.n)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

// TestConcurrentCalls exercises the thread pool under the race detector: results must
// not leak between calls.
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()

	f := mustLoad(t, "def f(d):\n    return {\"id\": d[\"id\"], \"sq\": d[\"x\"] * d[\"x\"]}\n", "f", Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("%d-%d", w, i)
				got, err := f.Call(context.Background(), map[string]any{"id": id, "x": float64(i)})
				if err != nil {
					errs <- err
					return
				}
				m := got.(map[string]any)
				if m["id"] != id || m["sq"] != float64(i*i) {
					errs <- fmt.Errorf("call %s got %v", id, m)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func BenchmarkCall(b *testing.B) {
	f, err := Load("testdata/pnl.star", "score", Options{})
	require.NoError(b, err)
	pred := map[string]any{"value": 0.5}
	gt := map[string]any{"entry_price": 100.0, "profit": 0.01, "resolved_price": 101.0, "direction_up": true}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Call(ctx, pred, gt); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
