package directoryhttp

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

func (h Handler) listRoles(w http.ResponseWriter, r *http.Request) error {
	page, err := h.Directory.ListRoles(r.Context(), projectID(r), pageQuery(r))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Roles      []roleOut `json:"roles"`
		NextCursor *string   `json:"next_cursor"`
	}{mapJSON(page.Roles, roleJSON), cursor(page.NextCursor)})
	return nil
}

func (h Handler) createRole(w http.ResponseWriter, r *http.Request) error {
	var in roleIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	role, err := h.Directory.CreateRole(r.Context(), httpserver.Actor(r), projectID(r), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusCreated, roleJSON(role))
	return nil
}

func (h Handler) getRole(w http.ResponseWriter, r *http.Request) error {
	role, err := h.Directory.GetRole(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, roleJSON(role))
	return nil
}

func (h Handler) updateRole(w http.ResponseWriter, r *http.Request) error {
	var in roleIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	role, err := h.Directory.UpdateRole(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id"), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, roleJSON(role))
	return nil
}

func (h Handler) deleteRole(w http.ResponseWriter, r *http.Request) error {
	if err := h.Directory.DeleteRole(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w)
}

func (h Handler) listPermissions(w http.ResponseWriter, r *http.Request) error {
	page, err := h.Directory.ListPermissions(r.Context(), projectID(r), pageQuery(r))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Permissions []permissionOut `json:"permissions"`
		NextCursor  *string         `json:"next_cursor"`
	}{mapJSON(page.Permissions, permissionJSON), cursor(page.NextCursor)})
	return nil
}

func (h Handler) createPermission(w http.ResponseWriter, r *http.Request) error {
	var in permissionIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	p, err := h.Directory.CreatePermission(r.Context(), httpserver.Actor(r), projectID(r), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusCreated, permissionJSON(p))
	return nil
}

func (h Handler) getPermission(w http.ResponseWriter, r *http.Request) error {
	p, err := h.Directory.GetPermission(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, permissionJSON(p))
	return nil
}

func (h Handler) updatePermission(w http.ResponseWriter, r *http.Request) error {
	var in permissionIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	p, err := h.Directory.UpdatePermission(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id"), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, permissionJSON(p))
	return nil
}

func (h Handler) deletePermission(w http.ResponseWriter, r *http.Request) error {
	if err := h.Directory.DeletePermission(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w)
}
