package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
)

// recordMetaKey is where a record's Meta goes inside the meta JSON column, as
// in the Python engine's files.
const recordMetaKey = "_record_meta"

// candleColumns are the values that get their own nullable column; every other
// value goes into the meta JSON.
var candleColumns = []string{"open", "high", "low", "close", "volume"}

// parquetRow is the backfill file schema of the Python engine's data plane:
// ts_event timestamp[us, UTC], source, subject, kind, granularity, open, high,
// low, close, volume (nullable float64), meta (JSON string). Columns are
// optional because pyarrow writes nullable columns, and files from either
// engine must read back with the other.
type parquetRow struct {
	TsEvent     *time.Time `parquet:"ts_event,optional,timestamp(microsecond:utc)"`
	Source      *string    `parquet:"source,optional"`
	Subject     *string    `parquet:"subject,optional"`
	Kind        *string    `parquet:"kind,optional"`
	Granularity *string    `parquet:"granularity,optional"`
	Open        *float64   `parquet:"open,optional"`
	High        *float64   `parquet:"high,optional"`
	Low         *float64   `parquet:"low,optional"`
	Close       *float64   `parquet:"close,optional"`
	Volume      *float64   `parquet:"volume,optional"`
	Meta        *string    `parquet:"meta,optional"`
}

// WriteParquet writes records as one Parquet file in the backfill schema.
// Records are deduplicated on their natural key (source, subject, kind,
// granularity, ts_event), the last one winning as in an upsert, and sorted
// ascending by ts_event. A file holds one (source, subject, kind, granularity)
// in practice, where this is exactly "dedupe on ts_event". Times are truncated
// to microseconds, the column's unit. Non-finite values are written as null.
//
// To merge with an existing file, read it with [ReadParquet], append the new
// records after the old ones, and write the result.
func WriteParquet(w io.Writer, records []Record) error {
	rows, err := parquetRows(records)
	if err != nil {
		return fmt.Errorf("writing parquet: %w", err)
	}
	if err := parquet.Write(w, rows, parquet.Compression(&parquet.Snappy)); err != nil {
		return fmt.Errorf("writing parquet: %w", err)
	}
	return nil
}

func parquetRows(records []Record) ([]parquetRow, error) {
	type key struct {
		source, subject, kind, granularity string
		ts                                 int64
	}
	index := make(map[key]int, len(records))
	deduped := make([]Record, 0, len(records))
	for _, r := range records {
		r.TsEvent = r.TsEvent.UTC().Truncate(time.Microsecond)
		k := key{r.Source, r.Subject, r.Kind, r.Granularity, r.TsEvent.UnixMicro()}
		if i, ok := index[k]; ok {
			deduped[i] = r
			continue
		}
		index[k] = len(deduped)
		deduped = append(deduped, r)
	}
	SortRecords(deduped)

	rows := make([]parquetRow, 0, len(deduped))
	for _, r := range deduped {
		meta := map[string]any{}
		for k, v := range r.Values {
			if !slices.Contains(candleColumns, k) {
				meta[k] = jsonFloat(v)
			}
		}
		if len(r.Meta) > 0 {
			rm := make(map[string]any, len(r.Meta))
			for k, v := range r.Meta {
				if f, ok := v.(float64); ok {
					rm[k] = jsonFloat(f)
				} else {
					rm[k] = v
				}
			}
			meta[recordMetaKey] = rm
		}
		metaJSON, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("encoding meta of %s %s at %s: %w", r.Subject, r.Kind, r.TsEvent.Format(time.RFC3339Nano), err)
		}
		ts := r.TsEvent
		row := parquetRow{
			Granularity: &r.Granularity,
			Kind:        &r.Kind,
			Meta:        new(string(metaJSON)),
			Source:      &r.Source,
			Subject:     &r.Subject,
			TsEvent:     &ts,
		}
		for _, col := range []struct {
			dst  **float64
			name string
		}{{&row.Open, "open"}, {&row.High, "high"}, {&row.Low, "low"}, {&row.Close, "close"}, {&row.Volume, "volume"}} {
			if v, ok := r.Values[col.name]; ok && finite(v) {
				*col.dst = new(v)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// jsonFloat turns non-finite floats, which JSON cannot encode, into null.
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// ReadParquet reads a file written by [WriteParquet] (or by the Python
// engine) back into records: OHLCV columns and the numeric keys of the meta
// JSON become Values, the _record_meta object becomes Meta, and any other
// non-numeric meta key is kept in Meta. Rows without a ts_event are skipped.
func ReadParquet(r io.ReaderAt, size int64) ([]Record, error) {
	rows, err := parquet.Read[parquetRow](r, size)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading parquet: %w", err)
	}
	records := make([]Record, 0, len(rows))
	for i, row := range rows {
		if row.TsEvent == nil || row.TsEvent.IsZero() {
			continue
		}
		rec := Record{
			Source:      deref(row.Source),
			Subject:     deref(row.Subject),
			Kind:        deref(row.Kind),
			Granularity: deref(row.Granularity),
			TsEvent:     row.TsEvent.UTC(),
			Values:      map[string]float64{},
			Meta:        map[string]any{},
		}
		for name, v := range map[string]*float64{"open": row.Open, "high": row.High, "low": row.Low, "close": row.Close, "volume": row.Volume} {
			if v != nil {
				rec.Values[name] = *v
			}
		}
		if m := deref(row.Meta); m != "" {
			var meta map[string]any
			if err := json.Unmarshal([]byte(m), &meta); err != nil {
				return nil, fmt.Errorf("reading parquet: row %d meta is not a JSON object: %w", i, err)
			}
			if rm, ok := meta[recordMetaKey].(map[string]any); ok {
				rec.Meta = rm
			}
			for k, v := range meta {
				if k == recordMetaKey {
					continue
				}
				if f, ok := v.(float64); ok {
					rec.Values[k] = f
				} else if _, taken := rec.Meta[k]; !taken {
					rec.Meta[k] = v
				}
			}
		}
		records = append(records, rec)
	}
	return records, nil
}

// ParquetFileName is the day file a record belongs in: the UTC date of its
// event time, as YYYY-MM-DD.parquet.
func ParquetFileName(ts time.Time) string {
	return ts.UTC().Format(time.DateOnly) + ".parquet"
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
