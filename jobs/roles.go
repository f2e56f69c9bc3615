// Package jobs holds every River job of the node: its args, its worker, the queues and the
// periodic schedule. One file per job kind. Register wires them into a River config for the
// roles a process runs.
package jobs

import (
	"fmt"
	"slices"
	"strings"
)

// Role is one part of the node that can run in its own process.
type Role string

// The roles of DESIGN §3: feed ingestion, model calls, scoring, and the report API.
const (
	RoleFeed    Role = "feed"
	RolePredict Role = "predict"
	RoleReport  Role = "report"
	RoleScore   Role = "score"
)

// AllRoles is what `crunch-node run` runs by default.
var AllRoles = []Role{RoleFeed, RolePredict, RoleReport, RoleScore}

// Queue names. Each role works its own queue so that a slow backfill never delays a tick,
// and the predict queue can poll with a short cooldown.
const (
	QueueFeed        = "feed"
	QueueMaintenance = "maintenance"
	QueuePredict     = "predict"
	QueueScore       = "score"
)

// Roles is a set of roles.
type Roles []Role

// ParseRoles reads a comma-separated list such as "feed,predict".
func ParseRoles(s string) (Roles, error) {
	if strings.TrimSpace(s) == "" || s == "all" {
		return slices.Clone(AllRoles), nil
	}
	var roles Roles
	for _, part := range strings.Split(s, ",") {
		role := Role(strings.TrimSpace(part))
		if !slices.Contains(AllRoles, role) {
			return nil, fmt.Errorf("unknown role %q (roles: feed, predict, score, report)", role)
		}
		if !slices.Contains(roles, role) {
			roles = append(roles, role)
		}
	}
	return roles, nil
}

// Has reports whether the set contains role.
func (r Roles) Has(role Role) bool { return slices.Contains(r, role) }

// Works reports whether any role in the set works River jobs (report only serves HTTP).
func (r Roles) Works() bool {
	return r.Has(RoleFeed) || r.Has(RolePredict) || r.Has(RoleScore)
}

func (r Roles) String() string {
	names := make([]string, len(r))
	for i, role := range r {
		names[i] = string(role)
	}
	return strings.Join(names, ",")
}
