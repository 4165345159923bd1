package app

import (
	"net/http"
	"net/http/pprof"

	"github.com/pipewarden/pipewarden/internal/httpapi"
)

// debugMounts serves Go runtime profiles to admins when debug.pprof is on.
func (a *App) debugMounts() []httpapi.Mount {
	if !a.cfg.Debug.PProf {
		return nil
	}
	return []httpapi.Mount{
		{Pattern: "GET /debug/pprof/", Roles: httpapi.AdminRoles, Handler: http.HandlerFunc(pprof.Index)},
		{Pattern: "GET /debug/pprof/profile", Roles: httpapi.AdminRoles, Handler: http.HandlerFunc(pprof.Profile)},
		{Pattern: "GET /debug/pprof/trace", Roles: httpapi.AdminRoles, Handler: http.HandlerFunc(pprof.Trace)},
	}
}
