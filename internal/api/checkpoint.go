package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jackc/pgx/v5"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/emission"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/jobs"
)

// Checkpoint is a checkpoint as the API shows it. Unlike the Python engine's, it carries
// merkle_root.
type Checkpoint struct {
	CreatedAt   time.Time       `json:"created_at"`
	Entries     json.RawMessage `json:"entries"     doc:"[EmissionCheckpoint]: {crunch, cruncher_rewards[{cruncher_index, reward_pct}], compute_provider_rewards, data_provider_rewards}, reward_pct in frac64 (1,000,000,000 = 100 %)."`
	ID          string          `json:"id"`
	MerkleRoot  *string         `json:"merkle_root" doc:"Root of the tree over the period's chained cycle roots."`
	Meta        json.RawMessage `json:"meta"        doc:"{snapshot_count, model_count, cycle_count, ranking_key, ranking[{model_id, model_name, cruncher_name, rank, ranking_value, prediction_count, snapshot_count, result_summary}]}"`
	PeriodEnd   time.Time       `json:"period_end"`
	PeriodStart time.Time       `json:"period_start"`
	Status      string          `json:"status" enum:"PENDING,SUBMITTED,CLAIMABLE,PAID"`
	SubmittedAt *time.Time      `json:"submitted_at"`
	TxHash      *string         `json:"tx_hash"`
}

func checkpointFrom(c *dbsqlc.Checkpoint) Checkpoint {
	return Checkpoint{
		CreatedAt: c.CreatedAt.UTC(), Entries: c.Entries, ID: c.ID, MerkleRoot: c.MerkleRoot, Meta: c.Meta,
		PeriodEnd: c.PeriodEnd.UTC(), PeriodStart: c.PeriodStart.UTC(), Status: c.Status,
		SubmittedAt: utcPtr(c.SubmittedAt), TxHash: c.TxHash,
	}
}

// emissionOf reads a checkpoint's emission document (entries[0]).
func emissionOf(c *dbsqlc.Checkpoint) (*emission.Checkpoint, error) {
	var docs []emission.Checkpoint
	if err := json.Unmarshal(c.Entries, &docs); err != nil || len(docs) == 0 {
		return nil, Public(postgres.ErrNotFound, "checkpoint "+c.ID+" has no emission")
	}
	return &docs[0], nil
}

// rankingOf reads a checkpoint's ranking from its meta.
func rankingOf(c *dbsqlc.Checkpoint) []jobs.RankedModel {
	var meta struct {
		Ranking []jobs.RankedModel `json:"ranking"`
	}
	_ = json.Unmarshal(c.Meta, &meta)
	return meta.Ranking
}

type checkpointListInput struct {
	Limit  int    `query:"limit" default:"20" minimum:"1" maximum:"100"`
	Status string `query:"status" enum:"PENDING,SUBMITTED,CLAIMABLE,PAID," required:"false"`
}

type checkpointListOutput struct{ Body []Checkpoint }

type checkpointIDInput struct {
	ID string `path:"id"`
}

type checkpointOutput struct{ Body Checkpoint }

type payloadOutput struct {
	Body struct {
		CheckpointID string          `json:"checkpoint_id"`
		Entries      json.RawMessage `json:"entries"`
		MerkleRoot   *string         `json:"merkle_root"`
		PeriodEnd    string          `json:"period_end"`
		PeriodStart  string          `json:"period_start"`
	}
}

// EmissionCheckpoint is the emission document as the API names it (the Python engine's
// name), so it does not clash with Checkpoint in the OpenAPI document.
type EmissionCheckpoint emission.Checkpoint

type emissionOutput struct{ Body EmissionCheckpoint }

type cliFormatOutput struct {
	Body struct {
		ComputeProvider map[string]float64 `json:"computeProvider"`
		Crunch          string             `json:"crunch"`
		CrunchEmission  map[string]float64 `json:"crunchEmission" doc:"model_id → percent (6 decimals)."`
		DataProvider    map[string]float64 `json:"dataProvider"`
	}
}

// Prize is one model's share of a prize pool.
type Prize struct {
	Model     string `json:"model"`
	Prize     int64  `json:"prize"`
	PrizeID   string `json:"prizeId"`
	Timestamp int64  `json:"timestamp" doc:"Unix seconds of the period end."`
}

type prizesInput struct {
	ID         string `path:"id"`
	TotalPrize int64  `query:"total_prize" default:"0" minimum:"0"`
}

type prizesOutput struct{ Body []Prize }

type latestPrizesInput struct {
	TotalPrize int64 `query:"total_prize" default:"0" minimum:"0"`
}

type latestPrizesOutput struct {
	Body struct {
		CheckpointID string    `json:"checkpoint_id"`
		PeriodEnd    time.Time `json:"period_end"`
		PeriodStart  time.Time `json:"period_start"`
		Prizes       []Prize   `json:"prizes"`
		Status       string    `json:"status"`
		TotalPrize   int64     `json:"total_prize"`
	}
}

type confirmInput struct {
	ID   string `path:"id"`
	Body struct {
		TxHash string `json:"tx_hash" doc:"The submission transaction." minLength:"1"`
	}
}

type statusInput struct {
	ID   string `path:"id"`
	Body struct {
		Status string `json:"status" doc:"The next status: SUBMITTED, CLAIMABLE or PAID; only one step forward."`
	}
}

type rewardsInput struct {
	Limit   int    `query:"limit" default:"20" minimum:"1" maximum:"100" doc:"How many recent checkpoints."`
	ModelID string `query:"model_id"`
}

type rewardsOutput struct{ Body []map[string]any }

type emissionLatestOutput struct {
	Body struct {
		CheckpointID string             `json:"checkpoint_id"`
		Emission     EmissionCheckpoint `json:"emission"`
		PeriodEnd    time.Time          `json:"period_end"`
		PeriodStart  time.Time          `json:"period_start"`
		Status       string             `json:"status"`
	}
}

func registerCheckpoints(api huma.API, deps Deps) {
	tags := []string{"Checkpoints"}
	admin := []map[string][]string{{"apiKey": {}}}
	queries := dbsqlc.New()
	get := func(ctx context.Context, id string) (*dbsqlc.Checkpoint, error) {
		c, err := queries.CheckpointGet(ctx, deps.Pool, id)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, Public(postgres.Interpret(err), "no checkpoint "+id))
		}
		return c, nil
	}
	latest := func(ctx context.Context) (*dbsqlc.Checkpoint, error) {
		c, err := queries.CheckpointLatest(ctx, deps.Pool)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, Public(postgres.Interpret(err), "no checkpoint yet"))
		}
		return c, nil
	}

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-list", Method: http.MethodGet, Path: "/reports/checkpoints",
		Summary: "Checkpoints, newest first", Tags: tags,
	}, func(ctx context.Context, in *checkpointListInput) (*checkpointListOutput, error) {
		var status *string
		if in.Status != "" {
			status = &in.Status
		}
		rows, err := queries.CheckpointList(ctx, deps.Pool, &dbsqlc.CheckpointListParams{Status: status, MaxRows: int32(in.Limit)})
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := make([]Checkpoint, len(rows))
		for i, r := range rows {
			out[i] = checkpointFrom(r)
		}
		return &checkpointListOutput{Body: out}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-latest", Method: http.MethodGet, Path: "/reports/checkpoints/latest",
		Summary: "The newest checkpoint", Tags: tags, Security: admin,
	}, func(ctx context.Context, _ *struct{}) (*checkpointOutput, error) {
		c, err := latest(ctx)
		if err != nil {
			return nil, err
		}
		return &checkpointOutput{Body: checkpointFrom(c)}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-latest-prizes", Method: http.MethodGet, Path: "/reports/checkpoints/latest/prizes",
		Summary: "Prizes of the newest checkpoint", Description: "total_prize split by the emission's reward shares.", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *latestPrizesInput) (*latestPrizesOutput, error) {
		c, err := latest(ctx)
		if err != nil {
			return nil, err
		}
		prizes, err := prizesOf(c, in.TotalPrize)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := &latestPrizesOutput{}
		out.Body.CheckpointID, out.Body.Status, out.Body.TotalPrize, out.Body.Prizes = c.ID, c.Status, in.TotalPrize, prizes
		out.Body.PeriodStart, out.Body.PeriodEnd = c.PeriodStart.UTC(), c.PeriodEnd.UTC()
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-rewards", Method: http.MethodGet, Path: "/reports/checkpoints/rewards",
		Summary:     "Reward history",
		Description: "One row per checkpoint and ranked model: reward_pct in percent (0–100), rank, prediction_count and the period's numeric summary fields flattened. period_start and period_end are naive UTC for the charts.",
		Tags:        tags,
	}, func(ctx context.Context, in *rewardsInput) (*rewardsOutput, error) {
		rows, err := queries.CheckpointList(ctx, deps.Pool, &dbsqlc.CheckpointListParams{MaxRows: int32(in.Limit)})
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := []map[string]any{}
		for _, c := range rows {
			doc, err := emissionOf(c)
			if err != nil {
				continue
			}
			for i, r := range rankingOf(c) {
				if in.ModelID != "" && r.ModelID != in.ModelID {
					continue
				}
				row := map[string]any{}
				for k, v := range r.ResultSummary {
					if f, ok := toFloat(v); ok {
						row[k] = f
					}
				}
				pct := 0.0
				if i < len(doc.CruncherRewards) {
					pct = math.Round(float64(doc.CruncherRewards[i].RewardPct)/float64(emission.Frac64Multiplier)*100*1e4) / 1e4
				}
				row["checkpoint_id"] = c.ID
				row["period_start"] = naiveTime(c.PeriodStart)
				row["period_end"] = naiveTime(c.PeriodEnd)
				row["model_id"] = r.ModelID
				row["model_name"] = r.ModelName
				row["rank"] = r.Rank
				row["reward_pct"] = pct
				row["prediction_count"] = r.PredictionCount
				out = append(out, row)
			}
		}
		return &rewardsOutput{Body: out}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-payload", Method: http.MethodGet, Path: "/reports/checkpoints/{id}/payload",
		Summary: "What to submit on chain", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *checkpointIDInput) (*payloadOutput, error) {
		c, err := get(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		out := &payloadOutput{}
		out.Body.CheckpointID, out.Body.Entries, out.Body.MerkleRoot = c.ID, c.Entries, c.MerkleRoot
		out.Body.PeriodStart, out.Body.PeriodEnd = c.PeriodStart.UTC().Format(time.RFC3339), c.PeriodEnd.UTC().Format(time.RFC3339)
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-emission", Method: http.MethodGet, Path: "/reports/checkpoints/{id}/emission",
		Summary: "The emission document", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *checkpointIDInput) (*emissionOutput, error) {
		c, err := get(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		doc, err := emissionOf(c)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &emissionOutput{Body: EmissionCheckpoint(*doc)}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-emission-cli", Method: http.MethodGet, Path: "/reports/checkpoints/{id}/emission/cli-format",
		Summary: "The emission in the CrunchDAO CLI's format", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *checkpointIDInput) (*cliFormatOutput, error) {
		c, err := get(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		doc, err := emissionOf(c)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		ranking := rankingOf(c)
		out := &cliFormatOutput{}
		out.Body.Crunch = doc.Crunch
		out.Body.CrunchEmission = map[string]float64{}
		out.Body.ComputeProvider = map[string]float64{}
		out.Body.DataProvider = map[string]float64{}
		for _, r := range doc.CruncherRewards {
			if r.CruncherIndex < len(ranking) {
				out.Body.CrunchEmission[ranking[r.CruncherIndex].ModelID] = pct6(r.RewardPct)
			}
		}
		for _, p := range doc.ComputeProviderRewards {
			out.Body.ComputeProvider[p.Provider] = pct6(p.RewardPct)
		}
		for _, p := range doc.DataProviderRewards {
			out.Body.DataProvider[p.Provider] = pct6(p.RewardPct)
		}
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-prizes", Method: http.MethodGet, Path: "/reports/checkpoints/{id}/prizes",
		Summary: "Prizes of a checkpoint", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *prizesInput) (*prizesOutput, error) {
		c, err := get(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		prizes, err := prizesOf(c, in.TotalPrize)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &prizesOutput{Body: prizes}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-confirm", Method: http.MethodPost, Path: "/reports/checkpoints/{id}/confirm",
		Summary: "Record the submission transaction", Description: "PENDING → SUBMITTED with tx_hash. 409 from any other status.", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *confirmInput) (*checkpointOutput, error) {
		return transition(ctx, deps, in.ID, string(emission.StatusSubmitted), &in.Body.TxHash)
	})

	huma.Register(api, huma.Operation{
		OperationID: "checkpoint-status", Method: http.MethodPatch, Path: "/reports/checkpoints/{id}/status",
		Summary: "Move a checkpoint forward", Description: "PENDING → SUBMITTED → CLAIMABLE → PAID, one step at a time. 422 for an unknown status, 409 for any other move.", Tags: tags, Security: admin,
	}, func(ctx context.Context, in *statusInput) (*checkpointOutput, error) {
		return transition(ctx, deps, in.ID, in.Body.Status, nil)
	})

	huma.Register(api, huma.Operation{
		OperationID: "emission-latest", Method: http.MethodGet, Path: "/reports/emissions/latest",
		Summary: "The newest emission", Tags: tags,
	}, func(ctx context.Context, _ *struct{}) (*emissionLatestOutput, error) {
		c, err := latest(ctx)
		if err != nil {
			return nil, err
		}
		doc, err := emissionOf(c)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := &emissionLatestOutput{}
		out.Body.CheckpointID, out.Body.Status, out.Body.Emission = c.ID, c.Status, EmissionCheckpoint(*doc)
		out.Body.PeriodStart, out.Body.PeriodEnd = c.PeriodStart.UTC(), c.PeriodEnd.UTC()
		return out, nil
	})
}

// transition moves a checkpoint to status in a transaction that locks it, so two admins
// clicking at once cannot both move it.
func transition(ctx context.Context, deps Deps, id, status string, txHash *string) (*checkpointOutput, error) {
	target, err := emission.ParseStatus(status)
	if err != nil {
		return nil, toHTTPError(ctx, deps.Logger, Public(ErrInvalid, err.Error()))
	}
	queries := dbsqlc.New()
	updated, err := postgres.WithTxV(ctx, deps.Pool, func(ctx context.Context, tx pgx.Tx) (*dbsqlc.Checkpoint, error) {
		c, err := queries.CheckpointGetForUpdate(ctx, tx, id)
		if err != nil {
			return nil, Public(postgres.Interpret(err), "no checkpoint "+id)
		}
		from, err := emission.ParseStatus(c.Status)
		if err != nil {
			return nil, err
		}
		if err := emission.NextAllowed(from, target); err != nil {
			if errors.Is(err, emission.ErrUnknownStatus) {
				return nil, Public(ErrInvalid, err.Error())
			}
			return nil, Public(ErrConflict, fmt.Sprintf("checkpoint %s is %s; it can only move to the next status", id, c.Status))
		}
		return queries.CheckpointSetStatus(ctx, tx, &dbsqlc.CheckpointSetStatusParams{ID: id, Status: string(target), TxHash: txHash})
	})
	if err != nil {
		return nil, toHTTPError(ctx, deps.Logger, err)
	}
	return &checkpointOutput{Body: checkpointFrom(updated)}, nil
}

// prizesOf splits totalPrize by the emission's shares, rounding each prize.
func prizesOf(c *dbsqlc.Checkpoint, totalPrize int64) ([]Prize, error) {
	doc, err := emissionOf(c)
	if err != nil {
		return nil, err
	}
	ranking := rankingOf(c)
	prizes := []Prize{}
	for _, r := range doc.CruncherRewards {
		if r.CruncherIndex >= len(ranking) {
			continue
		}
		model := ranking[r.CruncherIndex].ModelID
		prizes = append(prizes, Prize{
			Model: model, PrizeID: c.ID + "-" + model, Timestamp: c.PeriodEnd.Unix(),
			Prize: int64(math.Round(float64(totalPrize) * float64(r.RewardPct) / float64(emission.Frac64Multiplier))),
		})
	}
	return prizes, nil
}

func pct6(frac int64) float64 {
	return math.Round(float64(frac)/float64(emission.Frac64Multiplier)*100*1e6) / 1e6
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}
