package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Provider is a source of feed records.
type Provider interface {
	// Name is the provider's registry name (binance, pyth, synthetic).
	Name() string

	// ListSubjects lists the subjects the provider can serve.
	ListSubjects(ctx context.Context) ([]Subject, error)

	// Fetch returns one page of records in the request's range, ascending by
	// TsEvent, with [Page.More] and [Page.Next] saying where to continue. Only
	// final values are returned: a candle still forming is left for a later
	// fetch.
	Fetch(ctx context.Context, req FetchRequest) (Page, error)

	// Latest returns the most recent closed record(s) for a subject: the
	// last closed candle, or the current price for ticks.
	Latest(ctx context.Context, subject, kind, granularity string) ([]Record, error)
}

// FetchRequest asks a provider for one page of records.
type FetchRequest struct {
	// End is the last event time wanted (inclusive). Zero means now.
	End time.Time
	// Granularity is the bucket width, such as 1s, 1m or 1h (see
	// [ParseGranularity]).
	Granularity string
	// Kind is [KindCandle] or [KindTick].
	Kind string
	// Limit caps the number of records in the page. Zero means the
	// provider's maximum page size; larger values are clamped to it.
	Limit int
	// Start is the first event time wanted (inclusive). Zero means "the most
	// recent page ending at End".
	Start time.Time
	// Subject is the provider's symbol (BTCUSDT for Binance, BTC for Pyth).
	Subject string
}

// validate checks the fields every provider needs and returns the step.
func (r FetchRequest) validate() (time.Duration, error) {
	if strings.TrimSpace(r.Subject) == "" {
		return 0, errors.New("subject is empty")
	}
	step, err := ParseGranularity(r.Granularity)
	if err != nil {
		return 0, err
	}
	if r.Limit < 0 {
		return 0, fmt.Errorf("limit %d is negative", r.Limit)
	}
	if !r.Start.IsZero() && !r.End.IsZero() && r.End.Before(r.Start) {
		return 0, fmt.Errorf("end %s is before start %s", r.End.Format(time.RFC3339), r.Start.Format(time.RFC3339))
	}
	return step, nil
}

// FetchAll fetches every record in [req.Start, req.End] page by page and hands
// each non-empty page to fn, with no cap on the total. Between pages it
// advances to the later of the last record's time plus one granularity step
// and the provider's [Page.Next], so a page of bad rows or a gap in history
// cannot stall it. It stops when the provider reports no more data, when a page
// is empty and the provider offers no later cursor, when the cursor passes End,
// or when the cursor would not move forward. Records at or before an earlier
// page's last record are dropped, so overlapping pages never deliver a record
// twice.
//
// fn runs after each page, so a caller can write the page and persist its
// cursor (last TsEvent plus one step) before the next request; if fn returns
// an error FetchAll stops and returns it. last tells fn that no page will be
// requested after this one: nothing the caller does next depends on this
// page's write (the feed poll commits such a page without waiting for the
// WAL flush).
func FetchAll(ctx context.Context, p Provider, req FetchRequest, fn func(page []Record, last bool) error) error {
	step, err := req.validate()
	if err != nil {
		return fmt.Errorf("fetching %s %s %s from %s: %w", req.Subject, req.Kind, req.Granularity, p.Name(), err)
	}
	if req.Start.IsZero() {
		return fmt.Errorf("fetching %s %s %s from %s: start is required to fetch a range", req.Subject, req.Kind, req.Granularity, p.Name())
	}
	cursor := req.Start.UTC()
	var lastSent time.Time
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fetching %s from %s: %w", req.Subject, p.Name(), err)
		}
		pageReq := req
		pageReq.Start = cursor
		page, err := p.Fetch(ctx, pageReq)
		if err != nil {
			return fmt.Errorf("fetching %s from %s at %s: %w", req.Subject, p.Name(), cursor.Format(time.RFC3339), err)
		}

		records := page.Records
		if !lastSent.IsZero() {
			records = slices.DeleteFunc(slices.Clone(records), func(r Record) bool { return !r.TsEvent.After(lastSent) })
		}
		next := page.Next
		if n := len(page.Records); n > 0 {
			if c := page.Records[n-1].TsEvent.Add(step); c.After(next) {
				next = c
			}
		}
		done := !page.More || // the provider has no more data
			(len(page.Records) == 0 && page.Next.IsZero()) || // an empty page and no cursor past a gap: the end
			!next.After(cursor) || // no progress: stop instead of looping on the same page
			(!req.End.IsZero() && next.After(req.End)) // past the range
		if len(records) > 0 {
			if err := fn(records, done); err != nil {
				return err
			}
			lastSent = records[len(records)-1].TsEvent
		}
		if done {
			return nil
		}
		cursor = next
	}
}

// Config carries what every provider constructor needs. Everything with a
// side effect (network, clock) is injected so tests control it.
type Config struct {
	// HTTPClient makes the provider's requests. Nil means a new client with
	// no timeout of its own; per-request deadlines come from the context and
	// the provider's timeout_seconds option.
	HTTPClient *http.Client
	// Now is the clock used to decide which candles are closed and to stamp
	// ticker prices. Nil means time.Now.
	Now func() time.Time
	// Options are the FEED_OPT_* settings.
	Options Options
	// Source overrides the Source written into records (FEED_SOURCE), which
	// may differ from the provider's name. Empty means the provider name.
	Source string
	// UserAgent is sent with every request. Empty means a crunch-node default.
	UserAgent string
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c Config) source(name string) string {
	if c.Source != "" {
		return c.Source
	}
	return name
}

func (c Config) getter(provider string) (*httpGetter, error) {
	timeout, err := c.Options.Seconds("timeout_seconds", 10*time.Second)
	if err != nil {
		return nil, err
	}
	client := c.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	ua := c.UserAgent
	if ua == "" {
		ua = defaultUserAgent
	}
	return &httpGetter{
		client:    client,
		now:       c.now,
		provider:  provider,
		timeout:   timeout,
		userAgent: ua,
	}, nil
}

// Provider names accepted by [New].
const (
	ProviderBinance   = "binance"
	ProviderPyth      = "pyth"
	ProviderSynthetic = "synthetic"
)

// ProviderNames lists the names [New] accepts, sorted.
func ProviderNames() []string {
	return []string{ProviderBinance, ProviderPyth, ProviderSynthetic}
}

// New builds the provider with the given name (FEED_PROVIDER). Unknown names
// are an error that lists the known ones.
func New(name string, cfg Config) (Provider, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case ProviderBinance:
		return NewBinance(cfg)
	case ProviderPyth:
		return NewPyth(cfg)
	case ProviderSynthetic:
		return NewSynthetic(cfg)
	}
	return nil, fmt.Errorf("unknown feed provider %q, want one of %s", name, strings.Join(ProviderNames(), ", "))
}
