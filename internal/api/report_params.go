package api

import (
	"fmt"
	"strings"
	"time"
)

// defaultRange is how far back widget endpoints look when start is not given (Python: 7 days).
const defaultRange = 7 * 24 * time.Hour

// RangeParams are the query parameters every metrics widget request carries: the UI sends
// projectIds (comma-joined), start and end on each of them. Times are strings parsed by
// parseTimeParam, which accepts more forms than huma's RFC 3339 (naive times, dates).
type RangeParams struct {
	End              string   `query:"end"               doc:"End of the range, ISO 8601 (a time without zone is UTC). Default: now."`
	IncludeEnsembles bool     `query:"include_ensembles" doc:"Include ensembles (virtual models), hidden by default."`
	ProjectIDs       []string `query:"projectIds,explode" doc:"Model ids, repeated or comma-separated. Empty means every model."`
	Start            string   `query:"start"             doc:"Start of the range, ISO 8601. Default: end minus 7 days."`
}

// timeRange is a resolved RangeParams.
type timeRange struct {
	End              time.Time
	IncludeEnsembles bool
	ModelIDs         []string
	Start            time.Time
}

// resolve applies the Python engine's defaults: end = now, start = end − 7 days.
func (p *RangeParams) resolve(now time.Time) (timeRange, error) {
	r := timeRange{End: now, IncludeEnsembles: p.IncludeEnsembles, ModelIDs: splitIDs(p.ProjectIDs)}
	if p.End != "" {
		end, err := parseTimeParam("end", p.End)
		if err != nil {
			return r, err
		}
		r.End = end
	}
	r.Start = r.End.Add(-defaultRange)
	if p.Start != "" {
		start, err := parseTimeParam("start", p.Start)
		if err != nil {
			return r, err
		}
		r.Start = start
	}
	return r, nil
}

// splitIDs accepts `projectIds=a,b` and `projectIds=a&projectIds=b` alike and drops
// blanks, so an empty parameter means "every model".
func splitIDs(values []string) []string {
	ids := []string{}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				ids = append(ids, part)
			}
		}
	}
	return ids
}

// parseTimeParam reads an ISO 8601 time; naive times are UTC. A "+hh:mm" offset that
// arrived unencoded (the + decoded as a space) is repaired rather than refused.
func parseTimeParam(name, value string) (time.Time, error) {
	// The forms FastAPI's datetime parsing accepted and that clients send: JavaScript's
	// toISOString (UTC with Z), offsets, naive times (UTC) and plain dates.
	layouts := [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02T15:04Z07:00",
		"2006-01-02T15:04",
		time.DateOnly,
	}
	value = strings.TrimSpace(value)
	for _, candidate := range []string{value, repairOffset(value)} {
		for _, layout := range layouts {
			if t, err := time.Parse(layout, candidate); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, Public(ErrInvalid, fmt.Sprintf("%s: %q is not an ISO 8601 date-time", name, value))
}

func repairOffset(value string) string {
	if n := len(value); n > 16 && value[n-6] == ' ' && value[n-3] == ':' {
		return value[:n-6] + "+" + value[n-5:]
	}
	return value
}
