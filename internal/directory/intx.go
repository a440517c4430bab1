package directory

import "context"

// GetUserIn is GetUser through st, a transaction of the caller's. A login reads the user it
// answers with in the commit that starts its session, so that once that commit is made no
// further wait (for a pooled connection, on PostgreSQL) stands between it and the answer.
// Errors: user_not_found (404).
func (s *Service) GetUserIn(ctx context.Context, st Store, projectID, id string) (User, error) {
	u, err := s.getUser(ctx, st, projectID, id)
	if err != nil {
		return User{}, err
	}
	bound := *s
	bound.store = st
	return bound.userView(ctx, u)
}
