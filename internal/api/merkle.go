package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/jobs"
)

// MerkleCycle is one scoring cycle's commitment.
type MerkleCycle struct {
	ChainedRoot       string    `json:"chained_root"`
	CreatedAt         time.Time `json:"created_at"`
	ID                string    `json:"id"`
	PreviousCycleID   *string   `json:"previous_cycle_id"`
	PreviousCycleRoot *string   `json:"previous_cycle_root"`
	SnapshotCount     int32     `json:"snapshot_count"`
	SnapshotsRoot     string    `json:"snapshots_root"`
}

func cycleFrom(c *dbsqlc.MerkleCycle) MerkleCycle {
	return MerkleCycle{
		ChainedRoot: c.ChainedRoot, CreatedAt: c.CreatedAt.UTC(), ID: c.ID, PreviousCycleID: c.PreviousCycleID,
		PreviousCycleRoot: c.PreviousCycleRoot, SnapshotCount: c.SnapshotCount, SnapshotsRoot: c.SnapshotsRoot,
	}
}

type cycleListInput struct {
	Limit int    `query:"limit" default:"50" minimum:"1" maximum:"500"`
	Since string `query:"since" doc:"ISO 8601; naive means UTC."`
	Until string `query:"until" doc:"ISO 8601; naive means UTC."`
}

type cycleListOutput struct{ Body []MerkleCycle }

type cycleGetInput struct {
	CycleID string `path:"cycle_id"`
}

type cycleOutput struct{ Body MerkleCycle }

type proofInput struct {
	SnapshotID string `query:"snapshot_id" required:"true"`
}

type proofOutput struct{ Body *jobs.SnapshotProof }

func registerMerkle(api huma.API, deps Deps) {
	tags := []string{"Merkle"}
	queries := dbsqlc.New()
	huma.Register(api, huma.Operation{
		OperationID: "merkle-cycle-list", Method: http.MethodGet, Path: "/reports/merkle/cycles",
		Summary: "Merkle cycles, newest first", Tags: tags,
	}, func(ctx context.Context, in *cycleListInput) (*cycleListOutput, error) {
		params := &dbsqlc.MerkleCycleListParams{MaxRows: int32(in.Limit)}
		if in.Since != "" {
			t, err := parseTime("since", in.Since)
			if err != nil {
				return nil, toHTTPError(ctx, deps.Logger, err)
			}
			params.Since = &t
		}
		if in.Until != "" {
			t, err := parseTime("until", in.Until)
			if err != nil {
				return nil, toHTTPError(ctx, deps.Logger, err)
			}
			params.Until = &t
		}
		rows, err := queries.MerkleCycleList(ctx, deps.Pool, params)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := make([]MerkleCycle, len(rows))
		for i, r := range rows {
			out[i] = cycleFrom(r)
		}
		return &cycleListOutput{Body: out}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "merkle-cycle-get", Method: http.MethodGet, Path: "/reports/merkle/cycles/{cycle_id}",
		Summary: "One Merkle cycle", Tags: tags,
	}, func(ctx context.Context, in *cycleGetInput) (*cycleOutput, error) {
		c, err := queries.MerkleCycleGet(ctx, deps.Pool, in.CycleID)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, Public(postgres.Interpret(err), "no cycle "+in.CycleID))
		}
		return &cycleOutput{Body: cycleFrom(c)}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "merkle-proof", Method: http.MethodGet, Path: "/reports/merkle/proof",
		Summary:     "Proof that a snapshot is committed",
		Description: "The path from the snapshot's leaf to its cycle's snapshots_root, the chaining step to cycle_root, and the path from there to the checkpoint's merkle_root (absent while no checkpoint covers the cycle yet). `snapshot` is the snapshot's current content in the exact form the leaf hashes. See docs/merkle.md for the encoding and a 20-line verifier.",
		Tags:        tags,
	}, func(ctx context.Context, in *proofInput) (*proofOutput, error) {
		proof, err := jobs.BuildProof(ctx, deps.Pool, in.SnapshotID)
		switch {
		case errors.Is(err, jobs.ErrNotCommitted):
			return nil, toHTTPError(ctx, deps.Logger, Public(postgres.ErrNotFound, err.Error()))
		case errors.Is(err, postgres.ErrNotFound):
			return nil, toHTTPError(ctx, deps.Logger, Public(postgres.ErrNotFound, "no snapshot "+in.SnapshotID))
		case err != nil:
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &proofOutput{Body: proof}, nil
	})
}
