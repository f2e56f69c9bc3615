package customsql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Response headers of GET /custom/{name}. The body stays a plain JSON array, like every
// list of the report API, so a chart widget can use a custom endpoint as its endpointUrl;
// the headers carry what does not fit in an array.
const (
	HeaderRowLimit  = "X-Row-Limit"
	HeaderTruncated = "X-Result-Truncated"
)

// Handler serves GET /custom/{name} for every endpoint of the set, and GET /custom/ with the
// list of endpoints and their parameters. It matches on the full request path, so it works
// both when mounted with chi's router.Mount("/custom", h) and with router.Handle("/custom/*",
// h). Errors are RFC 9457 problem bodies {"title","status","detail"}, like the rest of the
// API.
func (s *Set) Handler(db TxBeginner, logger *slog.Logger, opts Options) http.Handler {
	opts = opts.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeProblem(w, http.StatusMethodNotAllowed, "custom endpoints only answer GET")
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/custom/")
		switch {
		case !ok && r.URL.Path == "/custom":
			name = ""
		case !ok:
			writeProblem(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
			return
		}
		if name == "" {
			writeJSON(w, http.StatusOK, s.describe())
			return
		}
		endpoint, ok := s.Lookup(name)
		if !ok {
			writeProblem(w, http.StatusNotFound, fmt.Sprintf("no custom endpoint %q", name))
			return
		}
		s.serve(w, r, endpoint, db, logger, opts)
	})
}

func (s *Set) serve(w http.ResponseWriter, r *http.Request, e *Endpoint, db TxBeginner, logger *slog.Logger, opts Options) {
	ctx := r.Context()
	start := time.Now()
	result, err := e.Run(ctx, db, r.URL.Query(), opts)
	if err != nil && ctx.Err() != nil {
		// The client went away (or the server is stopping): nobody reads an answer, and
		// it is not the endpoint's failure.
		logger.DebugContext(ctx, "custom SQL: request abandoned", slog.String("endpoint", e.Name), slog.String("error", err.Error()))
		return
	}
	if err != nil {
		status, detail := s.classify(e, err, opts)
		attrs := []slog.Attr{
			slog.String("endpoint", e.Name),
			slog.String("error", err.Error()),
			slog.Int("status", status),
		}
		switch {
		case status >= 500:
			logger.LogAttrs(ctx, slog.LevelError, "custom SQL: endpoint failed", attrs...)
		default:
			logger.LogAttrs(ctx, slog.LevelDebug, "custom SQL: request refused", attrs...)
		}
		writeProblem(w, status, detail)
		return
	}
	if result.Truncated {
		logger.WarnContext(ctx, "custom SQL: result truncated",
			slog.String("endpoint", e.Name),
			slog.Int("max_rows", opts.MaxRows))
	}
	logger.DebugContext(ctx, "custom SQL: served",
		slog.String("endpoint", e.Name),
		slog.Int("rows", len(result.Rows)),
		slog.Duration("duration", time.Since(start)))

	body, err := json.Marshal(result)
	if err != nil {
		logger.ErrorContext(ctx, "custom SQL: encoding result failed", slog.String("endpoint", e.Name), slog.String("error", err.Error()))
		writeProblem(w, http.StatusInternalServerError, "internal error")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set(HeaderRowLimit, strconv.Itoa(opts.MaxRows))
	h.Set(HeaderTruncated, strconv.FormatBool(result.Truncated))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// classify maps a run error to a status and a detail for the client. Errors Postgres
// raises while running the operator's own query are shown with their message: the
// endpoints are admin-tier by default and the operator needs the message to fix the file.
// Data exceptions (SQLSTATE class 22: a bad cast, LIMIT -1, an out-of-range value) almost
// always come from the request's values, so they are the caller's 422.
func (s *Set) classify(e *Endpoint, err error, opts Options) (int, string) {
	var paramErr *ParamError
	if errors.As(err, &paramErr) {
		return http.StatusUnprocessableEntity, paramErr.Error()
	}
	code, pgErr := errorClass(err)
	switch {
	case code == "57014": // query_canceled: the statement timeout, since the request is still there
		return http.StatusServiceUnavailable, fmt.Sprintf("custom endpoint %q ran longer than its %s statement timeout", e.Name, opts.StatementTimeout)
	case code == "25006": // read_only_sql_transaction
		return http.StatusInternalServerError, fmt.Sprintf("custom endpoint %q tried to write: custom endpoints run in a read-only transaction (%s)", e.Name, pgErr.Message)
	case strings.HasPrefix(code, "22"):
		return http.StatusUnprocessableEntity, fmt.Sprintf("custom endpoint %q: %s (SQLSTATE %s)", e.Name, pgErr.Message, code)
	case pgErr != nil:
		return http.StatusInternalServerError, fmt.Sprintf("custom endpoint %q failed: %s (SQLSTATE %s)", e.Name, pgErr.Message, code)
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "the request took too long; try again"
	}
	return http.StatusInternalServerError, "internal error"
}

// EndpointInfo describes one endpoint for listings: GET /custom/ and documentation.
type EndpointInfo struct {
	Description string      `json:"description"`
	Name        string      `json:"name"`
	Params      []ParamInfo `json:"params"`
	Path        string      `json:"path"`
}

// ParamInfo describes one parameter; Default is null when the parameter defaults to NULL.
type ParamInfo struct {
	Default *string   `json:"default"`
	Name    string    `json:"name"`
	Type    ParamType `json:"type"`
}

// Info returns the endpoint's description for listings.
func (e *Endpoint) Info() EndpointInfo {
	info := EndpointInfo{Description: e.Description, Name: e.Name, Params: []ParamInfo{}, Path: "/custom/" + e.Name}
	for _, p := range e.Params {
		pi := ParamInfo{Name: p.Name, Type: p.Type}
		if p.Default != nil {
			pi.Default = &p.DefaultText
		}
		info.Params = append(info.Params, pi)
	}
	return info
}

func (s *Set) describe() []EndpointInfo {
	out := make([]EndpointInfo, 0, len(s.list))
	for _, e := range s.list {
		out = append(out, e.Info())
	}
	return out
}

// openAPITypes maps parameter types to OpenAPI schema type and format.
var openAPITypes = map[ParamType][2]string{
	TypeBool:        {"boolean", ""},
	TypeFloat:       {"number", "double"},
	TypeInt:         {"integer", "int64"},
	TypeText:        {"string", ""},
	TypeTimestamptz: {"string", "date-time"},
}

// Operations describes the endpoints for /openapi.json. The API adds them with
// api.OpenAPI().AddOperation(op); they are documentation only, the requests are served by
// Handler. They are tagged "Custom" and carry the API key requirement of the admin tier.
func (s *Set) Operations(opts Options) []*huma.Operation {
	opts = opts.withDefaults()
	problem := func(description string) *huma.Response {
		return &huma.Response{
			Description: description,
			Content: map[string]*huma.MediaType{"application/problem+json": {Schema: &huma.Schema{
				Type: "object",
				Properties: map[string]*huma.Schema{
					"detail": {Type: "string"},
					"status": {Type: "integer"},
					"title":  {Type: "string"},
				},
			}}},
		}
	}
	ops := make([]*huma.Operation, 0, len(s.list))
	for _, e := range s.list {
		summary := e.Description
		if summary == "" {
			summary = "Custom SQL endpoint " + e.Name
		}
		op := &huma.Operation{
			Description: fmt.Sprintf("Runs %s read-only (statement timeout %s) and returns its rows as JSON objects, at most %d; header %s says whether more rows were cut off.",
				e.File, opts.StatementTimeout, opts.MaxRows, HeaderTruncated),
			Method:      http.MethodGet,
			OperationID: "custom-" + e.Name,
			Path:        "/custom/" + e.Name,
			Responses: map[string]*huma.Response{
				"200": {
					Description: "The query's rows, one object per row with the columns in query order.",
					Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{
						Type:  "array",
						Items: &huma.Schema{Type: "object", AdditionalProperties: true},
					}}},
				},
				"404": problem("No such custom endpoint."),
				"422": problem("A parameter value does not parse as its declared type."),
				"500": problem("The query failed in Postgres; the detail says why."),
				"503": problem("The query ran longer than the statement timeout."),
			},
			Security: []map[string][]string{{"apiKey": {}}},
			Summary:  summary,
			Tags:     []string{"Custom"},
		}
		for _, p := range e.Params {
			t := openAPITypes[p.Type]
			schema := &huma.Schema{Type: t[0], Format: t[1], Nullable: p.Default == nil}
			description := "Declared " + string(p.Type) + "; NULL when not given."
			if p.Default != nil {
				schema.Default = openAPIDefault(p.Default)
				description = "Declared " + string(p.Type) + "; default " + p.DefaultText + "."
			}
			op.Parameters = append(op.Parameters, &huma.Param{
				Description: description,
				In:          "query",
				Name:        p.Name,
				Schema:      schema,
			})
		}
		ops = append(ops, op)
	}
	return ops
}

func openAPIDefault(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.Format(time.RFC3339Nano)
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProblem writes the RFC 9457 body the rest of the API writes.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"detail": detail,
		"status": status,
		"title":  http.StatusText(status),
	})
}
