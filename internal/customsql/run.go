package customsql

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxRows          = 1000
	DefaultStatementTimeout = 5 * time.Second
)

// Options bound what one request may cost the database.
type Options struct {
	// MaxRows is how many rows a response holds at most; the rest are not read and the
	// result says it was truncated. Zero means DefaultMaxRows.
	MaxRows int
	// StatementTimeout is the query's statement_timeout. Zero means
	// DefaultStatementTimeout.
	StatementTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	return o
}

// TxBeginner is what runs the queries; *pgxpool.Pool is one.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Result is the rows of one run, each row's values in column order.
type Result struct {
	// Columns are the result's column names, made unique by suffixing _2, _3, … so that
	// every value has a key in the JSON object ("SELECT 1, 2" has two "?column?").
	Columns []string
	Rows    [][]any
	// Truncated says the query had more than MaxRows rows.
	Truncated bool
}

// Maps returns the rows as column → value maps.
func (r *Result) Maps() []map[string]any {
	out := make([]map[string]any, len(r.Rows))
	for i, row := range r.Rows {
		m := make(map[string]any, len(row))
		for j, v := range row {
			m[r.Columns[j]] = v
		}
		out[i] = m
	}
	return out
}

// MarshalJSON writes the rows as an array of objects whose keys keep the column order of the
// query, which a map would lose. An empty result is [], never null.
func (r *Result) MarshalJSON() ([]byte, error) {
	keys := make([][]byte, len(r.Columns))
	for i, c := range r.Columns {
		k, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encoding column name: %w", err)
		}
		keys[i] = k
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, row := range r.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		for j, v := range row {
			if j > 0 {
				b.WriteByte(',')
			}
			b.Write(keys[j])
			b.WriteByte(':')
			value, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("encoding column %s: %w", r.Columns[j], err)
			}
			b.Write(value)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// statementTimeoutSQL is SET LOCAL statement_timeout in the form that takes a bound value.
const statementTimeoutSQL = "SELECT set_config('statement_timeout', $1, true)"

// Run executes the endpoint with the request's query values. The statement runs in a READ
// ONLY transaction that is always rolled back, so a file that tries to write (INSERT, a
// data-modifying CTE, DDL, nextval) fails in Postgres whatever its text looks like; under
// SET LOCAL statement_timeout, so a slow file cannot hold a connection; and at most
// MaxRows rows are decoded. Rows past the cap are drained, not decoded, by pgx, within the
// same timeout. Value errors are *ParamError; everything else comes from the database.
func (e *Endpoint) Run(ctx context.Context, db TxBeginner, values map[string][]string, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	args, err := e.Bind(values)
	if err != nil {
		return nil, err
	}

	tx, err := db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("beginning read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// Postgres takes whole milliseconds and reads 0 as "no limit", so round up.
	ms := max(1, (opts.StatementTimeout+time.Millisecond-1)/time.Millisecond)
	if _, err := tx.Exec(ctx, statementTimeoutSQL, strconv.FormatInt(int64(ms), 10)); err != nil {
		return nil, fmt.Errorf("setting statement_timeout: %w", err)
	}

	rows, err := tx.Query(ctx, e.query, args...)
	if err != nil {
		return nil, fmt.Errorf("running custom endpoint %s: %w", e.Name, err)
	}
	defer rows.Close()

	fields := rows.FieldDescriptions()
	result := &Result{Columns: uniqueColumns(fields), Rows: [][]any{}}
	for rows.Next() {
		if len(result.Rows) == opts.MaxRows {
			result.Truncated = true
			break
		}
		values, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("decoding row of custom endpoint %s: %w", e.Name, err)
		}
		raw := rows.RawValues()
		row := make([]any, len(values))
		for i, v := range values {
			row[i] = jsonValue(fields[i], raw[i], v)
		}
		result.Rows = append(result.Rows, row)
	}
	rows.Close()
	// Past the cap an error (a timeout while draining, a failure in a row nobody reads)
	// does not spoil the rows already read.
	if err := rows.Err(); err != nil && !result.Truncated {
		return nil, fmt.Errorf("running custom endpoint %s: %w", e.Name, err)
	}
	return result, nil
}

func uniqueColumns(fields []pgconn.FieldDescription) []string {
	seen := make(map[string]bool, len(fields))
	columns := make([]string, len(fields))
	for i, f := range fields {
		name := f.Name
		for n := 2; seen[name]; n++ {
			name = f.Name + "_" + strconv.Itoa(n)
		}
		seen[name] = true
		columns[i] = name
	}
	return columns
}

// jsonValue converts what pgx decoded into a value encoding/json writes the way a report API
// client expects: numbers as numbers (numeric exactly, NaN and infinities as null because
// JSON has no such numbers), timestamps as ISO 8601 in UTC with Z, dates as YYYY-MM-DD, json
// and jsonb as the JSON itself, bytea as base64, uuids in their usual text form, and
// anything else through its text form.
func jsonValue(field pgconn.FieldDescription, raw []byte, v any) any {
	switch field.DataTypeOID {
	case pgtype.JSONOID, pgtype.JSONBOID:
		if raw == nil {
			return nil
		}
		// Binary jsonb starts with a version byte. The raw text keeps big integers exact,
		// which decoding into float64 would not.
		if field.DataTypeOID == pgtype.JSONBOID && field.Format == pgtype.BinaryFormatCode && len(raw) > 0 && raw[0] == 1 {
			raw = raw[1:]
		}
		if json.Valid(raw) {
			return json.RawMessage(bytes.Clone(raw))
		}
		return string(raw)
	case pgtype.DateOID:
		if t, ok := v.(time.Time); ok {
			return t.Format(time.DateOnly)
		}
	}
	return convert(v)
}

// timestampLayout is RFC 3339 with at most microseconds, Postgres's resolution.
const timestampLayout = "2006-01-02T15:04:05.999999Z07:00"

func convert(v any) any {
	switch v := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, uint8, uint16, uint32, uint64, int, uint:
		return v
	case float32:
		return finite(float64(v))
	case float64:
		return finite(v)
	case time.Time:
		return v.UTC().Format(timestampLayout)
	case pgtype.InfinityModifier:
		return v.String()
	case pgtype.Numeric:
		return numericValue(v)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case [16]byte:
		return fmt.Sprintf("%x-%x-%x-%x-%x", v[0:4], v[4:6], v[6:8], v[8:10], v[10:16])
	case netip.Prefix:
		return v.String()
	case netip.Addr:
		return v.String()
	case net.HardwareAddr:
		return v.String()
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = convert(e)
		}
		return out
	case map[string]*string: // hstore
		return v
	case driver.Valuer: // interval, time of day, ranges, …: their Postgres text form
		text, err := v.Value()
		if err != nil {
			return fmt.Sprint(v)
		}
		if text == nil {
			return nil
		}
		if s, ok := text.(string); ok {
			return s
		}
		return convert(text)
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// numericValue writes a numeric exactly as a JSON number: 12.50 stays 12.50 and a 30-digit
// integer keeps every digit, which float64 would not.
func numericValue(n pgtype.Numeric) any {
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil {
		return nil
	}
	digits := new(big.Int).Abs(n.Int).String()
	sign := ""
	if n.Int.Sign() < 0 {
		sign = "-"
	}
	switch {
	case n.Int.Sign() == 0 && n.Exp >= 0:
		return json.Number("0")
	case n.Exp >= 0:
		return json.Number(sign + digits + strings.Repeat("0", int(n.Exp)))
	case int(-n.Exp) < len(digits):
		point := len(digits) + int(n.Exp)
		return json.Number(sign + digits[:point] + "." + digits[point:])
	default:
		return json.Number(sign + "0." + strings.Repeat("0", int(-n.Exp)-len(digits)) + digits)
	}
}

// errorClass returns the SQLSTATE of a Postgres error, "" for other errors.
func errorClass(err error) (code string, pgErr *pgconn.PgError) {
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr
	}
	return "", nil
}
