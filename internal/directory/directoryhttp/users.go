package directoryhttp

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/directory"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
)

func (h Handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	q := directory.UserQuery{Page: pageQuery(r), Email: r.URL.Query().Get("email")}
	page, err := h.Directory.ListUsers(r.Context(), projectID(r), q)
	if err != nil {
		return err
	}
	users := usersJSON(page.Users)
	// Clients written against SSOJet's older answer expect the bare array.
	if r.URL.Query().Get("format") == "legacy" {
		httpserver.WriteJSON(w, http.StatusOK, users)
		return nil
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Users      []UserBody `json:"users"`
		NextCursor *string    `json:"next_cursor"`
	}{users, cursor(page.NextCursor)})
	return nil
}

func (h Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	var in userIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	u, err := h.Directory.CreateUser(r.Context(), httpserver.Actor(r), projectID(r), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusCreated, NewUserBody(u))
	return nil
}

func (h Handler) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.Directory.GetUser(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewUserBody(u))
	return nil
}

func (h Handler) getUserByEmail(w http.ResponseWriter, r *http.Request) error {
	u, err := h.Directory.GetUserByEmail(r.Context(), projectID(r), r.PathValue("email"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewUserBody(u))
	return nil
}

func (h Handler) updateUser(w http.ResponseWriter, r *http.Request) error {
	var in userIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	u, err := h.Directory.UpdateUser(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id"), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewUserBody(u))
	return nil
}

func (h Handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := h.Directory.DeleteUser(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w)
}

func (h Handler) verifyUser(w http.ResponseWriter, r *http.Request) error {
	var in verifyIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	verified, err := in.verified()
	if err != nil {
		return err
	}
	u, err := h.Directory.SetEmailVerified(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id"), verified)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewUserBody(u))
	return nil
}

func (h Handler) setUserRoles(w http.ResponseWriter, r *http.Request) error {
	var in userRolesIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	var roleIDs []string // nil when absent: the service refuses it
	if in.RoleIDs != nil {
		roleIDs = nonNil(*in.RoleIDs)
	}
	u, err := h.Directory.SetUserRoles(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id"),
		directory.UserRolesInput{OrganizationID: in.OrganizationID, RoleIDs: roleIDs})
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, NewUserBody(u))
	return nil
}

func (h Handler) listLoginLogs(w http.ResponseWriter, r *http.Request) error {
	page, err := h.Directory.ListLoginLogs(r.Context(), projectID(r), r.PathValue("id"), pageQuery(r))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		LoginLogs  []loginLogOut `json:"login_logs"`
		NextCursor *string       `json:"next_cursor"`
	}{mapJSON(page.Logs, loginLogJSON), cursor(page.NextCursor)})
	return nil
}

func (h Handler) listUserOrganizations(w http.ResponseWriter, r *http.Request) error {
	orgs, err := h.Directory.ListUserOrganizations(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Organizations []userOrgOut `json:"organizations"`
	}{userOrgsJSON(orgs)})
	return nil
}
