package httpserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey/internal/failure"
	"github.com/latchkey-dev/latchkey/internal/store"
)

// ErrorBody is the documented error shape (API.md §1).
type ErrorBody struct {
	Status      int    `json:"error"`
	Code        string `json:"error_code"`
	Description string `json:"error_description"`
	Field       string `json:"field,omitempty"`
}

var kindStatus = map[failure.Kind]int{
	failure.Internal:        http.StatusInternalServerError,
	failure.Invalid:         http.StatusBadRequest,
	failure.Unauthenticated: http.StatusUnauthorized,
	failure.Forbidden:       http.StatusForbidden,
	failure.NotFound:        http.StatusNotFound,
	failure.Conflict:        http.StatusConflict,
	failure.TooLarge:        http.StatusRequestEntityTooLarge,
	failure.TooMany:         http.StatusTooManyRequests,
	failure.Unavailable:     http.StatusServiceUnavailable,
}

// errorBody maps any error to its status and body. This is the only place where errors become
// HTTP: a typed failure keeps its code; a bare store error becomes a generic not_found or
// conflict; anything else is a 500 whose detail goes only to the log.
func errorBody(err error) ErrorBody {
	if fe, ok := failure.As(err); ok {
		status, ok := kindStatus[fe.Kind]
		if !ok {
			status = http.StatusInternalServerError
		}
		if status == http.StatusInternalServerError {
			return ErrorBody{Status: status, Code: "internal_error", Description: "internal server error"}
		}
		return ErrorBody{Status: status, Code: fe.Code, Description: fe.Description, Field: fe.Field}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrorBody{Status: http.StatusNotFound, Code: "not_found", Description: "not found"}
	case errors.Is(err, store.ErrConflict):
		return ErrorBody{Status: http.StatusConflict, Code: "conflict", Description: "conflicts with an existing record"}
	}
	return ErrorBody{Status: http.StatusInternalServerError, Code: "internal_error", Description: "internal server error"}
}

// WriteError writes err in the documented shape, or as an HTML page when the handler marked it
// so (AsPage). 5xx errors are logged with the request id; their detail never reaches the client.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	body := errorBody(err)
	logFailure(r, log, body, err)
	setRetryAfter(w, err)
	if page, ok := pageOf(err); ok {
		writePage(w, r, body, page)
		return
	}
	if body.Status == http.StatusUnauthorized && (body.Code == "invalid_token" || body.Code == "missing_token") {
		// RFC 6750 §3: tell a bearer client why its token was refused.
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	WriteJSON(w, body.Status, body)
}

// setRetryAfter tells a throttled client, or one refused while the server cannot store
// anything, when to come back (RFC 9110 §10.2.3), in whole seconds rounded up, so that a
// client that waits exactly that long is not refused again.
func setRetryAfter(w http.ResponseWriter, err error) {
	fe, ok := failure.As(err)
	if !ok || (fe.Kind != failure.TooMany && fe.Kind != failure.Unavailable) || fe.RetryAfter <= 0 {
		return
	}
	secs := (fe.RetryAfter + time.Second - 1) / time.Second
	w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
}

// OAuthErrorBody is the error shape of OAuth endpoints (RFC 6749 §5.2), which OAuth client
// libraries parse; error_code repeats the code for clients of the rest of the API.
type OAuthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Code        string `json:"error_code"`
}

// WriteOAuthError writes err in the OAuth error shape, with the status WriteError would use.
func WriteOAuthError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	body := errorBody(err)
	logFailure(r, log, body, err)
	if body.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="latchkey"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	setRetryAfter(w, err)
	WriteJSON(w, body.Status, OAuthErrorBody{Error: body.Code, Description: body.Description, Code: body.Code})
}
