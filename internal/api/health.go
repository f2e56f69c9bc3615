package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// HealthBody is the /healthz answer.
type HealthBody struct {
	Reason   string   `json:"reason,omitempty"   doc:"Why the node is unavailable."`
	Status   string   `json:"status"             doc:"ok, or unavailable when the database cannot be reached." enum:"ok,unavailable"`
	Version  string   `json:"version"`
	Warnings []string `json:"warnings,omitempty" doc:"Conditions the node runs with that an operator should fix."`
}

type healthOutput struct {
	Status int
	Body   HealthBody
}

// InfoBody is the /info answer.
type InfoBody struct {
	CrunchAddress string `json:"crunch_address" doc:"The crunch's public key (CRUNCH_PUBKEY)."`
	CrunchID      string `json:"crunch_id"`
	Network       string `json:"network"`
}

type infoOutput struct {
	Body InfoBody
}

func registerHealth(api huma.API, deps Deps) {
	huma.Register(api, huma.Operation{
		OperationID: "health-get",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Health",
		Description: "Answers 200 with status ok when the node can reach its database, 503 with a reason otherwise.",
		Tags:        []string{"Node"},
		Responses: map[string]*huma.Response{
			"503": {Description: "The database is unreachable."},
		},
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{Status: http.StatusOK, Body: HealthBody{Status: "ok", Version: deps.Version}}
		if deps.Warnings != nil {
			out.Body.Warnings = deps.Warnings()
		}
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := dbsqlc.New().DatabasePing(pingCtx, deps.Pool); err != nil {
			out.Status = http.StatusServiceUnavailable
			out.Body.Status = "unavailable"
			out.Body.Reason = "database unreachable: " + err.Error()
		}
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "info-get",
		Method:      http.MethodGet,
		Path:        "/info",
		Summary:     "Crunch identity",
		Tags:        []string{"Node"},
	}, func(context.Context, *struct{}) (*infoOutput, error) {
		return &infoOutput{Body: InfoBody{
			CrunchAddress: deps.Config.CrunchPubkey,
			CrunchID:      deps.Config.CrunchID,
			Network:       deps.Config.Network,
		}}, nil
	})
}
