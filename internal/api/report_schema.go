package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/config"
)

// ReportSchema is /reports/schema: the leaderboard columns and metrics widgets the report UI
// builds its pages from when its own config files do not exist yet. It is generated from
// crunch_config.yaml like the Python engine's auto_report_schema, so every column property
// and chart series names a key the leaderboard and widget rows carry.
type ReportSchema struct {
	LeaderboardColumns []LeaderboardColumn `json:"leaderboard_columns"`
	MetricsWidgets     []MetricsWidget     `json:"metrics_widgets"`
	SchemaVersion      string              `json:"schema_version"`
}

// LeaderboardColumn is one column of the UI's leaderboard table. Fields are in the UI's
// camelCase.
type LeaderboardColumn struct {
	DisplayName         string        `json:"displayName"`
	Format              *string       `json:"format"              doc:"null, percentage, integer, compact, number, decimal-N."`
	ID                  int           `json:"id"`
	NativeConfiguration *ColumnNative `json:"nativeConfiguration"`
	Order               int           `json:"order"`
	Property            string        `json:"property"            doc:"The leaderboard row key the column shows."`
	Tooltip             *string       `json:"tooltip"`
	Type                string        `json:"type"                enum:"MODEL,VALUE,USERNAME,CHART"`
}

// ColumnNative is a column's renderer configuration.
type ColumnNative struct {
	StatusProperty string `json:"statusProperty"`
	Type           string `json:"type"`
}

// MetricsWidget is one chart of the UI's metrics page; the UI requests EndpointURL with
// projectIds, start and end.
type MetricsWidget struct {
	DisplayName         string      `json:"displayName"`
	EndpointURL         string      `json:"endpointUrl"`
	ID                  int         `json:"id"`
	NativeConfiguration ChartConfig `json:"nativeConfiguration"`
	Order               int         `json:"order"`
	Tooltip             *string     `json:"tooltip"`
	Type                string      `json:"type" enum:"CHART,IFRAME"`
}

// ChartConfig is what the chart library reads from a widget.
type ChartConfig struct {
	AlertConfig      *AlertConfig   `json:"alertConfig,omitempty"`
	DisplayEvolution bool           `json:"displayEvolution"`
	FilterConfig     []FilterConfig `json:"filterConfig,omitempty"`
	GroupByProperty  string         `json:"groupByProperty,omitempty"`
	Type             string         `json:"type" enum:"line,bar,gauge,matrix"`
	XAxis            ChartAxis      `json:"xAxis"`
	YAxis            ChartYAxis     `json:"yAxis"`
}

// AlertConfig marks rows where Field is true and ReasonField non-empty.
type AlertConfig struct {
	Field       string `json:"field"`
	ReasonField string `json:"reasonField"`
}

// FilterConfig is a drop-down filter over the distinct values of Property.
type FilterConfig struct {
	AutoSelectFirst bool   `json:"autoSelectFirst"`
	Label           string `json:"label"`
	Property        string `json:"property"`
	Type            string `json:"type"`
}

// ChartAxis names the row key of the x axis.
type ChartAxis struct {
	Name string `json:"name"`
}

// ChartYAxis lists the plotted row keys.
type ChartYAxis struct {
	Format string        `json:"format"`
	Series []ChartSeries `json:"series"`
}

// ChartSeries is one plotted row key.
type ChartSeries struct {
	Label string `json:"label,omitempty"`
	Name  string `json:"name"`
}

// metricInfo is how a built-in metric is shown: the Python engine's names, formats and
// tooltips, so operators moving over see the same leaderboard.
func metricInfo(name string) (display, format string, tooltip *string) {
	info := map[string][3]string{
		"contribution":         {"Contribution", "", "Leave-one-out contribution to the ensemble"},
		"ensemble_correlation": {"Ens. Corr", "", "Correlation to the ensemble output"},
		"fnc":                  {"FNC", "", "Feature-Neutral Correlation — IC after orthogonalizing against known factors"},
		"hit_rate":             {"Hit Rate", "decimal-2", "Fraction of predictions whose direction matched the realized return"},
		"ic":                   {"IC", "", "Information Coefficient — Spearman rank correlation between predictions and realized returns"},
		"ic_sharpe":            {"IC Sharpe", "", "IC Sharpe — mean(IC) / std(IC), rewards consistency"},
		"max_drawdown":         {"Max Drawdown", "", "Worst peak-to-trough drawdown on cumulative score"},
		"mean_return":          {"Mean Return", "", "Mean return of a long-short portfolio formed from signals"},
		"model_correlation":    {"Model Corr", "", "Mean pairwise Spearman correlation against other models"},
		"net_pnl":              {"Net PnL", "", "Current net profit/loss including fees and carry costs"},
		"sortino_ratio":        {"Sortino", "decimal-2", "Like Sharpe but only penalizes downside volatility"},
		"turnover":             {"Turnover", "", "Mean absolute change in signal between consecutive predictions"},
	}[name]
	display, format = info[0], info[1]
	if display == "" {
		display = titleWords(name)
	}
	if format == "" {
		format = "decimal-4"
	}
	if info[2] != "" {
		tooltip = &info[2]
	}
	return display, format, tooltip
}

// titleWords is Python's name.replace("_", " ").title().
func titleWords(name string) string {
	words := strings.Fields(strings.ReplaceAll(name, "_", " "))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + strings.ToLower(w[1:])
	}
	return strings.Join(words, " ")
}

// hoursText writes a window length the way the tooltip reads ("24h"), falling back to Go's
// duration form for lengths that are not whole hours.
func hoursText(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

// buildReportSchema generates the schema: a MODEL column, one VALUE column per window
// (order 10, 20, …) and per metric (order 100, 110, …); widgets as the Python engine's
// standard set, with its widget ids and orders. (The Python engine also added a column per
// extra numeric field of its score type; this node's scoring results have no declared
// type, so their fields appear in the rows but get no column.)
func buildReportSchema(crunch *config.CrunchConfig) ReportSchema {
	ptr := func(s string) *string { return &s }
	agg := crunch.Aggregation
	columns := []LeaderboardColumn{{
		DisplayName:         "Model",
		ID:                  1,
		NativeConfiguration: &ColumnNative{StatusProperty: "status", Type: "model"},
		Property:            "model_id",
		Type:                "MODEL",
	}}
	for i, w := range agg.Windows {
		columns = append(columns, LeaderboardColumn{
			DisplayName: titleWords(w.Name),
			Format:      ptr("decimal-2"),
			ID:          len(columns) + 1,
			Order:       (i + 1) * 10,
			Property:    w.Name,
			Tooltip:     ptr("Rolling score over " + hoursText(w.Duration.D())),
			Type:        "VALUE",
		})
	}
	for j, m := range crunch.Metrics {
		display, format, tooltip := metricInfo(m)
		columns = append(columns, LeaderboardColumn{
			DisplayName: display,
			Format:      &format,
			ID:          len(columns) + 1,
			Order:       100 + j*10,
			Property:    m,
			Tooltip:     tooltip,
			Type:        "VALUE",
		})
	}

	windowSeries := make([]ChartSeries, 0, len(agg.Windows))
	for _, w := range agg.Windows {
		windowSeries = append(windowSeries, ChartSeries{Label: titleWords(w.Name), Name: w.Name})
	}
	metricSeries := make([]ChartSeries, 0, len(crunch.Metrics))
	for _, m := range crunch.Metrics {
		display, _, _ := metricInfo(m)
		metricSeries = append(metricSeries, ChartSeries{Label: display, Name: m})
	}
	scopeFilters := []FilterConfig{
		{AutoSelectFirst: true, Label: "Subject", Property: "subject", Type: "select"},
		{AutoSelectFirst: true, Label: "Horizon", Property: "horizon", Type: "select"},
	}

	id := 1
	widgets := []MetricsWidget{{
		DisplayName: "Score Metrics",
		EndpointURL: "/reports/models/metrics",
		ID:          id,
		NativeConfiguration: ChartConfig{
			Type:  "line",
			XAxis: ChartAxis{Name: "performed_at"},
			YAxis: ChartYAxis{Format: "decimal-2", Series: windowSeries},
		},
		Order: 10,
		Type:  "CHART",
	}}
	id++
	if len(crunch.Metrics) > 0 {
		widgets = append(widgets, MetricsWidget{
			DisplayName: "Multi-Metric Overview",
			EndpointURL: "/reports/snapshots",
			ID:          id,
			NativeConfiguration: ChartConfig{
				Type:  "bar",
				XAxis: ChartAxis{Name: "model_id"},
				YAxis: ChartYAxis{Format: "decimal-4", Series: metricSeries},
			},
			Order:   15,
			Tooltip: ptr("Portfolio-level metrics computed per model over scoring windows"),
			Type:    "CHART",
		})
		id++
	}
	widgets = append(widgets,
		MetricsWidget{
			DisplayName: "Predictions",
			EndpointURL: "/reports/predictions",
			ID:          id,
			NativeConfiguration: ChartConfig{
				AlertConfig:     &AlertConfig{Field: "score_success", ReasonField: "score_failed_reason"},
				FilterConfig:    scopeFilters,
				GroupByProperty: "param",
				Type:            "line",
				XAxis:           ChartAxis{Name: "performed_at"},
				YAxis:           ChartYAxis{Format: "decimal-2", Series: []ChartSeries{{Name: "score_value"}}},
			},
			Order: 30,
			Type:  "CHART",
		},
		MetricsWidget{
			DisplayName: "Rolling score by parameters",
			EndpointURL: "/reports/models/params",
			ID:          id + 1,
			NativeConfiguration: ChartConfig{
				FilterConfig:    scopeFilters,
				GroupByProperty: "param",
				Type:            "line",
				XAxis:           ChartAxis{Name: "performed_at"},
				YAxis:           ChartYAxis{Format: "decimal-2", Series: windowSeries},
			},
			Order: 20,
			Type:  "CHART",
		},
	)
	var diversitySeries []ChartSeries
	for _, m := range crunch.Metrics {
		if slices.Contains([]string{"model_correlation", "ensemble_correlation", "contribution", "fnc"}, m) {
			display, _, _ := metricInfo(m)
			diversitySeries = append(diversitySeries, ChartSeries{Label: display, Name: m})
		}
	}
	if len(diversitySeries) > 0 {
		widgets = append(widgets, MetricsWidget{
			DisplayName: "Model Diversity",
			EndpointURL: "/reports/diversity",
			ID:          id + 2,
			NativeConfiguration: ChartConfig{
				Type:  "bar",
				XAxis: ChartAxis{Name: "model_id"},
				YAxis: ChartYAxis{Format: "decimal-4", Series: append(diversitySeries, ChartSeries{Label: "Diversity Score", Name: "diversity_score"})},
			},
			Order:   25,
			Tooltip: ptr("How unique each model is relative to the ensemble"),
			Type:    "CHART",
		})
	}
	if len(crunch.Ensembles) > 0 {
		widgets = append(widgets, MetricsWidget{
			DisplayName: "Ensemble Performance",
			EndpointURL: "/reports/ensemble/history",
			ID:          id + 3,
			NativeConfiguration: ChartConfig{
				FilterConfig: []FilterConfig{{AutoSelectFirst: true, Label: "Ensemble", Property: "ensemble_name", Type: "select"}},
				Type:         "line",
				XAxis:        ChartAxis{Name: "period_end"},
				YAxis:        ChartYAxis{Format: "decimal-4", Series: metricSeries[:min(5, len(metricSeries))]},
			},
			Order:   16,
			Tooltip: ptr("Ensemble metrics over time — is the collective getting smarter?"),
			Type:    "CHART",
		})
	}
	widgets = append(widgets, MetricsWidget{
		DisplayName: "Reward History",
		EndpointURL: "/reports/checkpoints/rewards",
		ID:          id + 4,
		NativeConfiguration: ChartConfig{
			GroupByProperty: "model_name",
			Type:            "bar",
			XAxis:           ChartAxis{Name: "period_end"},
			YAxis:           ChartYAxis{Format: "decimal-2", Series: []ChartSeries{{Label: "Reward %", Name: "reward_pct"}}},
		},
		Order:   40,
		Tooltip: ptr("Reward distribution per checkpoint period"),
		Type:    "CHART",
	})
	return ReportSchema{LeaderboardColumns: columns, MetricsWidgets: widgets, SchemaVersion: "1"}
}

type schemaOutput struct {
	Body ReportSchema
}

type columnsOutput struct {
	Body []LeaderboardColumn
}

type widgetsOutput struct {
	Body []MetricsWidget
}

func (r *reports) registerSchema(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "report-schema",
		Method:      http.MethodGet,
		Path:        "/reports/schema",
		Summary:     "Report UI schema",
		Description: "Leaderboard columns and metrics widgets generated from crunch_config.yaml.",
		Tags:        []string{"Reports"},
	}, func(context.Context, *struct{}) (*schemaOutput, error) {
		return &schemaOutput{Body: r.schema}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "report-schema-leaderboard-columns",
		Method:      http.MethodGet,
		Path:        "/reports/schema/leaderboard-columns",
		Summary:     "Report UI leaderboard columns",
		Tags:        []string{"Reports"},
	}, func(context.Context, *struct{}) (*columnsOutput, error) {
		return &columnsOutput{Body: nonNil(r.schema.LeaderboardColumns)}, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "report-schema-metrics-widgets",
		Method:      http.MethodGet,
		Path:        "/reports/schema/metrics-widgets",
		Summary:     "Report UI metrics widgets",
		Tags:        []string{"Reports"},
	}, func(context.Context, *struct{}) (*widgetsOutput, error) {
		return &widgetsOutput{Body: nonNil(r.schema.MetricsWidgets)}, nil
	})
}
