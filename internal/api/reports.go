package api

import "github.com/danielgtaylor/huma/v2"

// registerReports mounts the report endpoints of the CrunchDAO contract.
func registerReports(api huma.API, deps Deps) {
	_ = api
	_ = deps
}
