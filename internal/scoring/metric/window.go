package metric

import (
	"context"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Point is one scored prediction of one model.
type Point struct {
	// Actual is the realised outcome the signal tried to predict (the
	// score result's actual_return, else profit).
	Actual float64
	// At orders a model's predictions in time (the prediction's
	// performed_at or slot time).
	At time.Time
	// Key identifies what was predicted, identically across models, e.g.
	// the slot time and scope key. Cross-model metrics join on it.
	Key string
	// Scope groups a model's predictions into independent series for
	// order-dependent metrics (turnover); empty means a single series.
	Scope string
	// Score is the score result's value.
	Score float64
	// Signal is the model's numeric prediction (value, expected_return,
	// signal or prediction field of its output).
	Signal float64
}

// Window is everything the metrics of one aggregation window see.
type Window struct {
	// Ensemble is the combined signal of the reference ensemble per Key
	// (only Key, At and Signal are read); nil when no ensemble is
	// configured, which makes the ensemble metrics 0.
	Ensemble []Point
	// Models maps each real (non-ensemble) model id to its scored
	// predictions in the window. Slices ordered by At then Key, with one
	// point per Key, are used without copying; others are copied and
	// ordered, keeping the latest point per Key.
	Models map[string][]Point
}

// Input is what a metric function receives for one model.
type Input struct {
	// ModelID is the model being measured.
	ModelID string
	// Points are the model's scored predictions, ordered by At then Key,
	// at most one per Key. Any field may be non-finite; metrics skip such
	// values.
	Points []Point

	c   *cache
	m   int
	win *prepared
}

// Others returns the mean Signal of the other models that predicted the
// same Key as Points[i], and how many did (0 when none did, or when the
// Input was not built by Compute). It is the "leave-one-out consensus"
// that model_correlation and contribution compare against.
func (in Input) Others(i int) (mean float64, n int) {
	if in.win == nil {
		return 0, 0
	}
	id := in.win.series[in.m].ids[i]
	sum, cnt := in.win.sum[id], int(in.win.cnt[id])
	if p := in.Points[i].Signal; finite(p) {
		sum -= p
		cnt--
	}
	if cnt <= 0 {
		return 0, 0
	}
	return sum / float64(cnt), cnt
}

// Ensemble returns the ensemble's combined signal for the Key of
// Points[i]; false when there is none.
func (in Input) Ensemble(i int) (float64, bool) {
	if in.win == nil || in.win.ens == nil {
		return 0, false
	}
	e := in.win.ens[in.win.series[in.m].ids[i]]
	return e, finite(e)
}

// series is one model's prepared points and their interned key ids.
type series struct {
	ids     []int32
	pts     []Point
	unknown []int32 // positions whose key the template lacks, until interned
}

// prepared is a Window with keys interned to dense ids and per-key
// aggregates computed once, so that every cross-model metric is O(n) per
// model instead of O(models × n).
type prepared struct {
	actual      []float64 // per template key id: the template's actual
	actualOrder []int32   // template key ids with a finite actual, by actual
	cnt         []int32   // per key id: models with a finite signal
	ens         []float64 // per key id: ensemble signal, NaN if none; nil without ensemble
	models      []string  // model ids, sorted
	series      []series
	sum         []float64 // per key id: sum of finite signals
	tmpl        int       // index of the template series
	tmplPos     []int32   // per template key id: its position in the template
}

func comparePoints(a, b Point) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// parallel runs fn(i) for i in [0, n) on up to GOMAXPROCS goroutines, each
// with its own worker index for scratch buffers. It stops early when ctx is
// done.
func parallel(ctx context.Context, n int, fn func(worker, i int)) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(w, i)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

func prepare(ctx context.Context, w Window) (*prepared, error) {
	p := &prepared{models: make([]string, 0, len(w.Models))}
	for id := range w.Models {
		p.models = append(p.models, id)
	}
	slices.Sort(p.models)
	p.series = make([]series, len(p.models))
	for i, id := range p.models {
		p.series[i].pts = w.Models[id]
	}
	if len(p.series) == 0 {
		return p, nil
	}

	// A window can hold ten million points (~800 MB); streaming them from
	// memory dominates, so the points are read once here, in parallel:
	// ordering check, key interning against the template, duplicate check
	// and per-key sums in one pass per model. The rare models with keys
	// outside the template or with repeated keys are finished
	// sequentially afterwards.
	dict := p.template()
	workers := min(runtime.GOMAXPROCS(0), len(p.series))
	sums := make([][]float64, workers)
	cnts := make([][]int32, workers)
	stamps := make([][]int32, workers)
	for wk := range workers {
		sums[wk] = make([]float64, len(dict))
		cnts[wk] = make([]int32, len(dict))
		stamps[wk] = make([]int32, len(dict))
	}
	slow := make([]bool, len(p.series))
	tmpl := &p.series[p.tmpl]
	if err := parallel(ctx, len(p.series), func(wk, m int) {
		s := &p.series[m]
		if m != p.tmpl && !slices.IsSortedFunc(s.pts, comparePoints) {
			s.pts = slices.Clone(s.pts)
			slices.SortStableFunc(s.pts, comparePoints)
		}
		if m != p.tmpl {
			s.ids = make([]int32, len(s.pts))
		}
		stamp := stamps[wk]
		j := 0
		for i := range s.pts {
			var id int32
			if m == p.tmpl {
				id = s.ids[i] // interned by template(); others read it concurrently
			} else if j < len(tmpl.pts) && s.pts[i].Key == tmpl.pts[j].Key {
				id = tmpl.ids[j]
				j++
			} else {
				var ok bool
				if id, ok = dict[s.pts[i].Key]; !ok {
					s.unknown = append(s.unknown, int32(i))
					id = -1
				} else {
					j = int(p.tmplPos[id]) + 1
				}
			}
			if m != p.tmpl {
				s.ids[i] = id
			}
			if id >= 0 {
				if stamp[id] == int32(m+1) {
					slow[m] = true
				}
				stamp[id] = int32(m + 1)
			}
		}
		if slow[m] {
			return
		}
		sum, cnt := sums[wk], cnts[wk]
		for i, id := range s.ids {
			if v := s.pts[i].Signal; id >= 0 && finite(v) {
				sum[id] += v
				cnt[id]++
			}
		}
	}); err != nil {
		return nil, err
	}

	p.sum, p.cnt = sums[0], cnts[0]
	for wk := 1; wk < workers; wk++ {
		for id := range p.sum {
			p.sum[id] += sums[wk][id]
			p.cnt[id] += cnts[wk][id]
		}
	}
	for m := range p.series {
		switch {
		case slow[m]:
			p.finishSlow(m, dict)
		case len(p.series[m].unknown) > 0:
			p.finishUnknown(m, dict)
		}
	}

	if w.Ensemble != nil {
		p.ens = make([]float64, len(p.sum))
		for i := range p.ens {
			p.ens[i] = math.NaN()
		}
		ens := w.Ensemble
		if !slices.IsSortedFunc(ens, comparePoints) {
			ens = slices.Clone(ens)
			slices.SortStableFunc(ens, comparePoints)
		}
		for _, e := range ens { // the latest point per key wins
			if id, ok := dict[e.Key]; ok {
				p.ens[id] = e.Signal
			}
		}
	}
	p.orderActuals()
	return p, ctx.Err()
}

// template orders and interns the longest series, whose key sequence the
// other models are matched against: models usually predict the same keys
// in the same order, and comparing a string with the template's key at the
// same position is several times cheaper than hashing it. It also records
// the template's actuals as each key's canonical actual.
func (p *prepared) template() map[string]int32 {
	for i, s := range p.series {
		if len(s.pts) > len(p.series[p.tmpl].pts) {
			p.tmpl = i
		}
	}
	t := &p.series[p.tmpl]
	if !slices.IsSortedFunc(t.pts, comparePoints) {
		t.pts = slices.Clone(t.pts)
		slices.SortStableFunc(t.pts, comparePoints)
	}
	dict := make(map[string]int32, len(t.pts))
	t.ids = make([]int32, len(t.pts))
	for i := range t.pts {
		id, ok := dict[t.pts[i].Key]
		if !ok {
			id = int32(len(dict))
			dict[t.pts[i].Key] = id
			p.tmplPos = append(p.tmplPos, 0)
			p.actual = append(p.actual, 0)
		}
		t.ids[i] = id
		p.tmplPos[id] = int32(i)
		p.actual[id] = t.pts[i].Actual // the latest duplicate wins, as in dedupe
	}
	return dict
}

// intern returns the id of a key the template lacks, adding it if new.
func (p *prepared) intern(dict map[string]int32, key string) int32 {
	id, ok := dict[key]
	if !ok {
		id = int32(len(dict))
		dict[key] = id
		p.sum = append(p.sum, 0)
		p.cnt = append(p.cnt, 0)
	}
	return id
}

// finishUnknown completes a model whose known keys were all distinct and
// already summed: only its points with keys outside the template remain
// (typically a handful), so the work is proportional to those.
func (p *prepared) finishUnknown(m int, dict map[string]int32) {
	s := &p.series[m]
	last := make(map[int32]int32, len(s.unknown)) // id → last position
	for _, i := range s.unknown {
		id := p.intern(dict, s.pts[i].Key)
		s.ids[i] = id
		last[id] = i
	}
	for id, i := range last {
		if v := s.pts[i].Signal; finite(v) {
			p.sum[id] += v
			p.cnt[id]++
		}
	}
	repeated := len(last) < len(s.unknown)
	s.unknown = nil
	if repeated {
		s.dedupe() // repeated unknown keys only: the summed points survive
	}
}

// finishSlow handles a model with repeated keys: intern what is missing,
// keep the latest point per key, then add the model to the per-key sums
// (the parallel pass skipped it entirely).
func (p *prepared) finishSlow(m int, dict map[string]int32) {
	s := &p.series[m]
	for _, i := range s.unknown {
		s.ids[i] = p.intern(dict, s.pts[i].Key)
	}
	s.unknown = nil
	s.dedupe()
	for i, id := range s.ids {
		if v := s.pts[i].Signal; finite(v) {
			p.sum[id] += v
			p.cnt[id]++
		}
	}
}

// orderActuals sorts the template keys by their canonical actual once per
// window. The actual of a key is normally the same for every model (it is
// the ground truth), so ranking a model's actuals becomes a walk over this
// order instead of a sort per model; see cache.paRanks.
func (p *prepared) orderActuals() {
	var vals []float64
	for id, a := range p.actual {
		if finite(a) {
			p.actualOrder = append(p.actualOrder, int32(id))
			vals = append(vals, a)
		}
	}
	if len(vals) == 0 {
		return
	}
	var r ranker
	order := slices.Clone(p.actualOrder)
	for i, e := range r.sort(vals) {
		p.actualOrder[i] = order[e.i]
	}
}

// dedupe keeps the last (latest) point of each key. It copies, so that the
// caller's slice is never modified.
func (s *series) dedupe() {
	seen := make(map[int32]bool, len(s.ids))
	keep := make([]bool, len(s.ids))
	n := 0
	for i := len(s.ids) - 1; i >= 0; i-- {
		if !seen[s.ids[i]] {
			seen[s.ids[i]] = true
			keep[i] = true
			n++
		}
	}
	if n == len(s.ids) {
		return
	}
	pts, ids := make([]Point, 0, n), make([]int32, 0, n)
	for i, k := range keep {
		if k {
			pts = append(pts, s.pts[i])
			ids = append(ids, s.ids[i])
		}
	}
	s.pts, s.ids = pts, ids
}
