// Package verify is `crunch-node verify`: an end-to-end check of a running node through
// its report API, the way an operator (or CI) confirms that a competition is live. It
// polls until the node is healthy, knows models, has scored predictions and a
// leaderboard, then guards against scores that carry no information (all zero, or all
// identical: a stub scoring function or models that ignore their input). It prints a
// readable report either way and returns an error naming what is still wrong.
//
// It needs nothing but HTTP, so it works against any node, local or deployed, including
// the Python engine, whose report API it shares.
package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Defaults of Options.
const (
	DefaultPoll    = 5 * time.Second
	DefaultTimeout = 240 * time.Second
	DefaultURL     = "http://127.0.0.1:8000"
)

// MinScoredPredictions is how many successfully scored predictions of the last hour prove
// that the whole pipeline (feed, predict, ground truth, scoring) works.
const MinScoredPredictions = 2

// requestTimeout bounds one HTTP request, so one hung request cannot use up the budget.
const requestTimeout = 10 * time.Second

// topRows is how many leaderboard rows the report shows.
const topRows = 10

// Options configures Run. Zero values take the defaults.
type Options struct {
	// APIKey is sent as X-API-Key, for nodes whose read tier requires it.
	APIKey string
	// HTTPClient makes the requests; nil uses a plain client.
	HTTPClient *http.Client
	// Now is the clock of the predictions window; nil means time.Now.
	Now func() time.Time
	// Out receives the progress lines and the report; nil discards them.
	Out io.Writer
	// Poll is the wait between checks. Default DefaultPoll.
	Poll time.Duration
	// Timeout is how long the node gets to pass. Default DefaultTimeout.
	Timeout time.Duration
	// URL is the report API's base URL. Default DefaultURL.
	URL string
}

// Run polls the node until every check passes (nil) or Timeout runs out (an error naming
// what failed last). Cancelling ctx stops it at once.
func Run(ctx context.Context, opts Options) error {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	opts.Poll = cmp.Or(opts.Poll, DefaultPoll)
	opts.Timeout = cmp.Or(opts.Timeout, DefaultTimeout)
	base, err := url.Parse(strings.TrimRight(cmp.Or(opts.URL, DefaultURL), "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return fmt.Errorf("verify: invalid URL %q: want e.g. %s", opts.URL, DefaultURL)
	}
	v := &verifier{base: base, opts: opts}

	fmt.Fprintf(opts.Out, "Verifying %s (up to %s)\n", base, opts.Timeout)
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	ticker := time.NewTicker(opts.Poll)
	defer ticker.Stop()

	var last *state
	lastLine := ""
	for {
		s := v.check(runCtx)
		// A check cut short by the deadline says nothing new; keep the previous one.
		if runCtx.Err() == nil || last == nil {
			last = s
		}
		if len(last.problems) == 0 {
			v.report(last)
			fmt.Fprintf(opts.Out, "\nPASS: %s\n", last.summary())
			return nil
		}
		if line := strings.Join(last.problems, "; "); line != lastLine {
			fmt.Fprintf(opts.Out, "  waiting (%s): %s\n", time.Since(start).Round(time.Second), line)
			lastLine = line
		}
		select {
		case <-runCtx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("verification interrupted: %w", ctx.Err())
			}
			v.report(last)
			fmt.Fprintf(opts.Out, "\nFAIL after %s:\n", opts.Timeout)
			for _, p := range last.problems {
				fmt.Fprintf(opts.Out, "  - %s\n", p)
			}
			return fmt.Errorf("%w after %s: %s", ErrFailed, opts.Timeout, strings.Join(last.problems, "; "))
		case <-ticker.C:
		}
	}
}

type verifier struct {
	base *url.URL
	opts Options
}

// The report API rows, reduced to the fields the checks and the report read. Pointers
// tell a JSON null from a zero.
type (
	health struct {
		Reason   string   `json:"reason"`
		Status   string   `json:"status"`
		Version  string   `json:"version"`
		Warnings []string `json:"warnings"`
	}
	model struct {
		CruncherName string `json:"cruncher_name"`
		ModelID      string `json:"model_id"`
		ModelName    string `json:"model_name"`
	}
	prediction struct {
		ModelID     string   `json:"model_id"`
		ScoreFailed bool     `json:"score_failed"`
		ScoreValue  *float64 `json:"score_value"`
		Status      string   `json:"status"`
	}
	leaderboardRow struct {
		CruncherName string   `json:"cruncher_name"`
		ModelID      string   `json:"model_id"`
		ModelName    string   `json:"model_name"`
		Rank         *float64 `json:"rank"`
		ScoreRanking struct {
			Key   string   `json:"key"`
			Value *float64 `json:"value"`
		} `json:"score_ranking"`
	}
)

// state is what one check saw and what is still wrong.
type state struct {
	health      *health
	leaderboard []leaderboardRow
	models      []model
	predictions []prediction
	problems    []string
	scores      []float64 // values of the successfully scored predictions
}

func (s *state) summary() string {
	return fmt.Sprintf("node healthy, %d models, %d scored predictions in the last hour, leaderboard of %d",
		len(s.models), len(s.scores), len(s.leaderboard))
}

// check runs every check once. Later checks are skipped when an earlier one makes them
// meaningless (an unreachable node, no models to ask about).
func (v *verifier) check(ctx context.Context) *state {
	s := &state{}
	fail := func(format string, args ...any) { s.problems = append(s.problems, fmt.Sprintf(format, args...)) }

	var h health
	status, err := v.get(ctx, "/healthz", nil, &h)
	if status == 0 {
		fail("node not reachable: %v", err)
		return s
	}
	s.health = &h
	switch {
	case err != nil && h.Status == "":
		fail("node unhealthy: %v", err)
	case h.Status != "ok":
		fail("node unhealthy: status %q%s", h.Status, optional(": ", h.Reason))
	}

	if _, err := v.get(ctx, "/reports/models", nil, &s.models); err != nil {
		fail("%v", err)
	} else if len(s.models) == 0 {
		fail("no models yet (GET /reports/models is empty: are the model hosts or the orchestrator running?)")
	}

	if len(s.models) > 0 {
		ids := make([]string, len(s.models))
		for i, m := range s.models {
			ids[i] = m.ModelID
		}
		end := v.opts.Now().UTC()
		query := url.Values{
			"end":        {end.Format(timeFormat)},
			"projectIds": {strings.Join(ids, ",")},
			"start":      {end.Add(-time.Hour).Format(timeFormat)},
		}
		if _, err := v.get(ctx, "/reports/predictions", query, &s.predictions); err != nil {
			fail("%v", err)
		} else {
			for _, p := range s.predictions {
				if p.ScoreValue != nil && !p.ScoreFailed {
					s.scores = append(s.scores, *p.ScoreValue)
				}
			}
			if len(s.scores) < MinScoredPredictions {
				fail("%d scored predictions in the last hour (need %d; %d predictions in all)",
					len(s.scores), MinScoredPredictions, len(s.predictions))
			} else if problem := scoreQuality(s.scores); problem != "" {
				fail("%s", problem)
			}
		}
	}

	if _, err := v.get(ctx, "/reports/leaderboard", nil, &s.leaderboard); err != nil {
		fail("%v", err)
	} else if len(s.leaderboard) == 0 {
		fail("leaderboard is empty")
	}
	return s
}

// timeFormat is ISO 8601 in UTC with milliseconds, as the web UI sends it.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// scoreQuality names what makes the scores useless for ranking, or returns "".
func scoreQuality(scores []float64) string {
	allZero, identical := true, true
	for _, v := range scores {
		allZero = allZero && v == 0
		identical = identical && math.Abs(v-scores[0]) <= 1e-12*math.Max(1, math.Abs(scores[0]))
	}
	switch {
	case allZero:
		return fmt.Sprintf("score quality: all %d scores are 0 (a stub scoring function, or models that always predict 0?)", len(scores))
	case identical:
		return fmt.Sprintf("score quality: all %d scores are identical (%s): they cannot rank anything", len(scores), formatFloat(scores[0]))
	}
	return ""
}

// get fetches path and decodes its JSON into out. The returned status is 0 when no answer
// came; a non-2xx answer is an error, but the body is still decoded when it is JSON (the
// health endpoint explains a 503 in its body).
func (v *verifier) get(ctx context.Context, path string, query url.Values, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u := v.base.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	if v.opts.APIKey != "" {
		req.Header.Set("X-API-Key", v.opts.APIKey)
	}
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		_ = json.Unmarshal(body, out)
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (the node wants an API key: --api-key or API_KEY)"
		}
		return resp.StatusCode, fmt.Errorf("GET %s: %s%s%s", path, resp.Status, optional(": ", problemDetail(body)), hint)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: unexpected answer: %w", path, err)
	}
	return resp.StatusCode, nil
}

// problemDetail extracts an RFC 9457 problem's detail (or a short body) for messages.
func problemDetail(body []byte) string {
	var problem struct {
		Detail string `json:"detail"`
		Title  string `json:"title"`
	}
	if json.Unmarshal(body, &problem) == nil && (problem.Detail != "" || problem.Title != "") {
		return cmp.Or(problem.Detail, problem.Title)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return text
}

func optional(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// report prints what the last check saw: health, the leaderboard's top rows and the
// predictions of the last hour per model.
func (v *verifier) report(s *state) {
	out := v.opts.Out
	fmt.Fprintln(out)
	if s.health == nil {
		fmt.Fprintln(out, "Health:       unreachable")
		return
	}
	fmt.Fprintf(out, "Health:       %s%s\n", cmp.Or(s.health.Status, "unknown"), optional(", version ", s.health.Version))
	for _, w := range s.health.Warnings {
		fmt.Fprintf(out, "  warning: %s\n", w)
	}
	fmt.Fprintf(out, "Models:       %d\n", len(s.models))
	fmt.Fprintf(out, "Predictions:  %d in the last hour, %d scored\n", len(s.predictions), len(s.scores))

	names := map[string]model{}
	for _, m := range s.models {
		names[m.ModelID] = m
	}

	if len(s.leaderboard) > 0 {
		key := cmp.Or(s.leaderboard[0].ScoreRanking.Key, "value")
		fmt.Fprintf(out, "\nLeaderboard (top %d of %d):\n", min(topRows, len(s.leaderboard)), len(s.leaderboard))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "rank\tmodel\tcruncher\t%s\t\n", key)
		for _, r := range s.leaderboard[:min(topRows, len(s.leaderboard))] {
			name := cmp.Or(r.ModelName, names[r.ModelID].ModelName, r.ModelID)
			cruncher := cmp.Or(r.CruncherName, names[r.ModelID].CruncherName, "-")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", formatRank(r.Rank), name, cruncher, formatValue(r.ScoreRanking.Value))
		}
		_ = tw.Flush()
	}

	if len(s.predictions) > 0 {
		type counts struct {
			failed, pending, scored, total int
			sum                            float64
		}
		per := map[string]*counts{}
		for _, p := range s.predictions {
			c := per[p.ModelID]
			if c == nil {
				c = &counts{}
				per[p.ModelID] = c
			}
			c.total++
			switch {
			case p.ScoreValue != nil && !p.ScoreFailed:
				c.scored++
				c.sum += *p.ScoreValue
			case p.Status == "PENDING":
				c.pending++
			default:
				c.failed++
			}
		}
		ids := make([]string, 0, len(per))
		for id := range per {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		fmt.Fprintln(out, "\nPredictions of the last hour per model:")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "model\tname\tpredictions\tscored\tpending\tunscored\tmean score\t")
		for _, id := range ids {
			c := per[id]
			mean := "-"
			if c.scored > 0 {
				mean = formatFloat(c.sum / float64(c.scored))
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t\n", id, cmp.Or(names[id].ModelName, "?"), c.total, c.scored, c.pending, c.failed, mean)
		}
		_ = tw.Flush()
	}
}

// unranked is the rank the report API gives entries without one.
const unranked = 999999

func formatRank(rank *float64) string {
	if rank == nil || *rank >= unranked {
		return "-"
	}
	return strconv.FormatFloat(*rank, 'f', -1, 64)
}

func formatValue(v *float64) string {
	if v == nil {
		return "-"
	}
	return formatFloat(*v)
}

func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// ErrFailed is wrapped by Run's error when the node did not pass in time, so the CLI can
// tell a failed verification (exit 1) from a usage error or an interruption.
var ErrFailed = errors.New("verification failed")
