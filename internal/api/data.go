package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
)

// ExportFile is one daily Parquet file of backfilled data.
type ExportFile struct {
	Date      string `json:"date"      doc:"The UTC day, YYYY-MM-DD (the file's stem)."`
	Path      string `json:"path"      doc:"source/subject/kind/granularity/YYYY-MM-DD.parquet, relative to /data/backfill/."`
	Records   int64  `json:"records"`
	SizeBytes *int64 `json:"size_bytes" doc:"Always null: files are built from the database on request, so their size is known only once written."`
}

type exportIndexOutput struct {
	Body []ExportFile
}

type exportFileInput struct {
	File        string `path:"file"`
	Granularity string `path:"granularity"`
	Kind        string `path:"kind"`
	Source      string `path:"source"`
	Subject     string `path:"subject"`
}

type exportFileOutput struct {
	Body               []byte
	ContentDisposition string `header:"Content-Disposition"`
	ContentType        string `header:"Content-Type"`
}

// maxExportRecords caps one file: a day of one-second candles is 86,400 records.
const maxExportRecords = 200_000

func registerData(api huma.API, deps Deps) {
	tags := []string{"Data"}
	huma.Register(api, huma.Operation{
		OperationID: "backfill-export-index",
		Method:      http.MethodGet,
		Path:        "/data/backfill/index",
		Summary:     "Daily Parquet files of backfilled data",
		Description: "One file per feed scope and UTC day covered by a completed backfill, for participants' backtests. Files are built from feed_records on request.",
		Tags:        tags,
	}, func(ctx context.Context, _ *struct{}) (*exportIndexOutput, error) {
		rows, err := dbsqlc.New().FeedExportDayList(ctx, deps.Pool)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := make([]ExportFile, 0, len(rows))
		for _, r := range rows {
			if r.Records == 0 {
				continue
			}
			file := feed.ParquetFileName(r.Day)
			out = append(out, ExportFile{
				Date: strings.TrimSuffix(file, ".parquet"), Records: r.Records,
				Path: strings.Join([]string{r.Source, r.Subject, r.Kind, r.Granularity, file}, "/"),
			})
		}
		return &exportIndexOutput{Body: out}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "backfill-export-file",
		Method:      http.MethodGet,
		Path:        "/data/backfill/{source}/{subject}/{kind}/{granularity}/{file}",
		Summary:     "One daily Parquet file",
		Description: "Columns ts_event (timestamp µs UTC), source, subject, kind, granularity, open, high, low, close, volume, meta (JSON of any other values). Every path part must be a plain name; anything else is 404.",
		Tags:        tags,
		Responses: map[string]*huma.Response{
			"200": {Description: "The Parquet file.", Content: map[string]*huma.MediaType{"application/octet-stream": {}}},
		},
	}, func(ctx context.Context, in *exportFileInput) (*exportFileOutput, error) {
		// The path parts are checked exactly as a file path would be, so nothing outside
		// the data plane can ever be named; the file itself comes from the database.
		if _, err := feed.SafeExportPath("/export", in.Source, in.Subject, in.Kind, in.Granularity, in.File); err != nil {
			return nil, huma.Error404NotFound("no such file")
		}
		day, err := time.Parse(time.DateOnly, strings.TrimSuffix(in.File, ".parquet"))
		if err != nil {
			return nil, huma.Error404NotFound("no such file: names are YYYY-MM-DD.parquet")
		}
		rows, err := dbsqlc.New().FeedRecordListRange(ctx, deps.Pool, &dbsqlc.FeedRecordListRangeParams{
			Source: in.Source, Subject: in.Subject, Kind: in.Kind, Granularity: in.Granularity,
			StartTS: day, EndTS: day.Add(24*time.Hour - time.Nanosecond), MaxRows: maxExportRecords,
		})
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		if len(rows) == 0 {
			return nil, huma.Error404NotFound("no data for that scope and day")
		}
		records := make([]feed.Record, len(rows))
		for i, r := range rows {
			values := map[string]float64{}
			_ = json.Unmarshal(r.Payload, &values)
			var meta map[string]any
			_ = json.Unmarshal(r.Meta, &meta)
			records[i] = feed.Record{Source: r.Source, Subject: r.Subject, Kind: r.Kind, Granularity: r.Granularity, TsEvent: r.TSEvent, Values: values, Meta: meta}
		}
		var buf bytes.Buffer
		if err := feed.WriteParquet(&buf, records); err != nil {
			return nil, toHTTPError(ctx, deps.Logger, fmt.Errorf("writing parquet: %w", err))
		}
		return &exportFileOutput{
			Body:               buf.Bytes(),
			ContentDisposition: `attachment; filename="` + in.File + `"`,
			ContentType:        "application/octet-stream",
		}, nil
	})
}
