package directoryhttp

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

// Handler serves the users, organizations, roles and permissions routes of the management API.
// Every route requires the project secret.
type Handler struct {
	Directory *directory.Service
}

// Mount registers the handler's routes on rt.
func (h Handler) Mount(rt *httpserver.Router) {
	routes := []struct {
		pattern string
		handle  httpserver.HandlerFunc
	}{
		{"GET /api/v1/users", h.listUsers},
		{"POST /api/v1/users", h.createUser},
		{"GET /api/v1/users/{id}", h.getUser},
		{"PUT /api/v1/users/{id}", h.updateUser},
		{"DELETE /api/v1/users/{id}", h.deleteUser},
		{"GET /api/v1/users/{email}/email", h.getUserByEmail},
		{"POST /api/v1/users/{id}/verify", h.verifyUser},
		{"PUT /api/v1/users/{id}/roles", h.setUserRoles},
		{"GET /api/v1/users/{id}/loginlogs", h.listLoginLogs},
		{"GET /api/v1/users/{id}/organizations", h.listUserOrganizations},
		{"GET /api/account/identity/users/{id}/organizations", h.listUserOrganizations},

		{"POST /api/v1/organization", h.createOrganization},
		{"GET /api/v1/organization/{id}", h.getOrganization},
		{"PUT /api/v1/organization/{id}", h.updateOrganization},
		{"PUT /api/account/organization/{id}", h.updateOrganization},
		{"DELETE /api/v1/organization/{id}", h.deleteOrganization},
		{"GET /api/v1/organizations", h.listOrganizations},
		{"GET /api/v1/organization/{id}/users", h.listMembers},
		{"POST /api/v1/organization/{id}/users", h.addMembers},
		{"DELETE /api/v1/organization/{id}/users", h.removeMembers},

		{"GET /api/v1/roles", h.listRoles},
		{"POST /api/v1/roles", h.createRole},
		{"GET /api/v1/roles/{id}", h.getRole},
		{"PUT /api/v1/roles/{id}", h.updateRole},
		{"DELETE /api/v1/roles/{id}", h.deleteRole},
		{"GET /api/v1/permissions", h.listPermissions},
		{"POST /api/v1/permissions", h.createPermission},
		{"GET /api/v1/permissions/{id}", h.getPermission},
		{"PUT /api/v1/permissions/{id}", h.updatePermission},
		{"DELETE /api/v1/permissions/{id}", h.deletePermission},
	}
	for _, r := range routes {
		rt.Handle(r.pattern, httpserver.Secret, r.handle)
	}
}

// projectID is the id of the project whose secret authenticated the request.
func projectID(r *http.Request) string { return httpserver.ProjectFrom(r.Context()).ID }

// pageQuery reads the paging parameters; the service validates them.
func pageQuery(r *http.Request) directory.PageQuery {
	q := r.URL.Query()
	return directory.PageQuery{Limit: q.Get("limit"), Cursor: q.Get("cursor")}
}

func writeDeleted(w http.ResponseWriter) error {
	httpserver.WriteJSON(w, http.StatusOK, deleted{IsDeleted: true})
	return nil
}
