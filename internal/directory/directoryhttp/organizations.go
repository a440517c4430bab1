package directoryhttp

import (
	"context"
	"net/http"

	"github.com/latchkey-dev/latchkey/internal/audit"
	"github.com/latchkey-dev/latchkey/internal/httpserver"
	"github.com/latchkey-dev/latchkey/internal/store"
)

func (h Handler) createOrganization(w http.ResponseWriter, r *http.Request) error {
	var in orgIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	o, err := h.Directory.CreateOrganization(r.Context(), httpserver.Actor(r), projectID(r), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusCreated, orgJSON(o))
	return nil
}

func (h Handler) getOrganization(w http.ResponseWriter, r *http.Request) error {
	o, err := h.Directory.GetOrganization(r.Context(), projectID(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, orgJSON(o))
	return nil
}

func (h Handler) updateOrganization(w http.ResponseWriter, r *http.Request) error {
	var in orgIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	o, err := h.Directory.UpdateOrganization(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id"), in.input())
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, orgJSON(o))
	return nil
}

func (h Handler) deleteOrganization(w http.ResponseWriter, r *http.Request) error {
	if err := h.Directory.DeleteOrganization(r.Context(), httpserver.Actor(r), projectID(r), r.PathValue("id")); err != nil {
		return err
	}
	return writeDeleted(w)
}

func (h Handler) listOrganizations(w http.ResponseWriter, r *http.Request) error {
	page, err := h.Directory.ListOrganizations(r.Context(), projectID(r), pageQuery(r))
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Organizations []orgOut `json:"organizations"`
		NextCursor    *string  `json:"next_cursor"`
	}{mapJSON(page.Organizations, orgJSON), cursor(page.NextCursor)})
	return nil
}

func (h Handler) listMembers(w http.ResponseWriter, r *http.Request) error {
	page, err := h.Directory.ListMembers(r.Context(), projectID(r), r.PathValue("id"), pageQuery(r))
	if err != nil {
		return err
	}
	members := mapJSON(page.Members, func(m store.Membership) memberOut {
		return memberOut{UserID: m.UserID, RoleIDs: nonNil(m.RoleIDs), CreatedAt: ts(m.CreatedAt)}
	})
	httpserver.WriteJSON(w, http.StatusOK, struct {
		Users      []memberOut `json:"users"`
		NextCursor *string     `json:"next_cursor"`
	}{members, cursor(page.NextCursor)})
	return nil
}

func (h Handler) addMembers(w http.ResponseWriter, r *http.Request) error {
	return h.changeMembers(w, r, h.Directory.AddMembers)
}

func (h Handler) removeMembers(w http.ResponseWriter, r *http.Request) error {
	return h.changeMembers(w, r, h.Directory.RemoveMembers)
}

// changeMembers serves both membership batch routes, which differ only in the service call.
func (h Handler) changeMembers(w http.ResponseWriter, r *http.Request, change membersFunc) error {
	var in membersIn
	if err := httpserver.DecodeJSON(w, r, &in); err != nil {
		return err
	}
	orgID := r.PathValue("id")
	ids, err := change(r.Context(), httpserver.Actor(r), projectID(r), orgID, in.UserIDs)
	if err != nil {
		return err
	}
	httpserver.WriteJSON(w, http.StatusOK, struct {
		OrganizationID string   `json:"organization_id"`
		UserIDs        []string `json:"user_ids"`
	}{orgID, nonNil(ids)})
	return nil
}

// membersFunc is the shape of directory.Service.AddMembers and RemoveMembers.
type membersFunc = func(ctx context.Context, by audit.Actor, projectID, orgID string, userIDs []string) ([]string, error)
