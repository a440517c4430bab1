package app_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/config"
	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// lockedBuffer is a log the server writes from its goroutines while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDomainLogLinesCarryTheRequestID: a line a domain package logs while serving a request
// (the project service's "project updated") carries that request's id, through the logger
// the server is built with; and the request's secret appears nowhere in the log.
func TestDomainLogLinesCarryTheRequestID(t *testing.T) {
	var logs lockedBuffer
	cfg := config.Default()
	cfg.LogFormat = "json"
	a, err := app.NewWithStore(testdb.SQLite(t), app.WithLogger(app.NewLogger(cfg, &logs)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	p, err := a.Projects().Create(t.Context(), project.NewProject{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}

	w := &tokenWorld{t: t, srv: srv}
	r := w.call("PATCH", "/api/v1/project", `{"name":"Acme Two"}`,
		map[string]string{"X-Client-Id": p.Project.ClientID, "X-Client-Secret": p.ClientSecret, "Content-Type": "application/json"})
	w.want(r, 200, "")
	id := r.header.Get("X-Request-Id")
	var updated map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "project updated" {
			updated = m
		}
	}
	if updated == nil || id == "" || updated["request_id"] != id || updated["project_id"] != p.Project.ID {
		t.Errorf("domain line %v, want request_id %q and project_id %s", updated, id, p.Project.ID)
	}
	if strings.Contains(logs.String(), p.ClientSecret) {
		t.Error("the client secret is in the log")
	}
}
