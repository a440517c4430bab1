package httpserver

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// logLines decodes a JSON log.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func lineWithMsg(t *testing.T, lines []map[string]any, msg string) map[string]any {
	t.Helper()
	for _, l := range lines {
		if l["msg"] == msg {
			return l
		}
	}
	t.Fatalf("no %q line in %v", msg, lines)
	return nil
}

// TestDomainLinesCarryTheirRequest logs from a route's handler the way domain code does, with
// the request's context and no HTTP code: the line names the request and its project, once
// each, and the access log line names the project too.
func TestDomainLinesCarryTheirRequest(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
	rt := NewRouter(corsAuth{}, log)
	rt.Handle("POST /things", ClientID, func(w http.ResponseWriter, r *http.Request) error {
		log.InfoContext(r.Context(), "thing made", "thing_id", "t1")
		log.InfoContext(r.Context(), "thing of another project", "project_id", "prj_other")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	rt.Handle("GET /public", Public, func(w http.ResponseWriter, r *http.Request) error {
		log.InfoContext(r.Context(), "public thing")
		return nil
	})
	h := Wrap(rt, log, nil)

	rec := serveWith(h, httptest.NewRequest("POST", "/things?client_id=cli_1", nil))
	id := rec.Header().Get("X-Request-Id")
	if rec.Code != http.StatusNoContent || id == "" {
		t.Fatalf("%d, request id %q", rec.Code, id)
	}
	lines := logLines(t, &buf)
	made := lineWithMsg(t, lines, "thing made")
	if made["request_id"] != id || made["project_id"] != corsProject.ID || made["thing_id"] != "t1" {
		t.Errorf("domain line %v, want request_id %s and project_id %s", made, id, corsProject.ID)
	}
	// A line that names its own project keeps it, and no key is written twice.
	if other := lineWithMsg(t, lines, "thing of another project"); other["project_id"] != "prj_other" {
		t.Errorf("a line's own project_id was replaced: %v", other)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Count(line, `"request_id"`) != 1 || strings.Count(line, `"project_id"`) > 1 {
			t.Errorf("a key written twice or missing: %s", line)
		}
	}
	if access := lineWithMsg(t, lines, "http request"); access["request_id"] != id || access["project_id"] != corsProject.ID {
		t.Errorf("access line %v, want request_id %s and project_id %s", access, id, corsProject.ID)
	}

	// A route without a project: the request id alone.
	buf.Reset()
	rec = serveWith(h, httptest.NewRequest("GET", "/public", nil))
	pub := lineWithMsg(t, logLines(t, &buf), "public thing")
	if pub["request_id"] != rec.Header().Get("X-Request-Id") || pub["project_id"] != nil {
		t.Errorf("public route's line %v", pub)
	}

	// Outside a request, lines are as they were written.
	buf.Reset()
	log.InfoContext(t.Context(), "background work")
	if bg := lineWithMsg(t, logLines(t, &buf), "background work"); bg["request_id"] != nil || bg["project_id"] != nil {
		t.Errorf("background line %v", bg)
	}
}

// TestAccessLogHasTheResolvedClientIP: the access log line records the client IP the trusted
// proxy rules resolved, which is the peer unless the peer is a trusted proxy.
func TestAccessLogHasTheResolvedClientIP(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"no trusted proxy", nil, "10.0.0.5"},
		{"behind a trusted proxy", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "203.0.113.9"},
		{"from an untrusted proxy", []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, "10.0.0.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
			rt := NewRouter(corsAuth{}, log)
			rt.Handle("GET /public", Public, func(http.ResponseWriter, *http.Request) error { return nil })
			r := httptest.NewRequest("GET", "/public", nil)
			r.RemoteAddr = "10.0.0.5:40000"
			r.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
			serveWith(TrustProxies(Wrap(rt, log, nil), c.trusted), r)
			if got := lineWithMsg(t, logLines(t, &buf), "http request")["client_ip"]; got != c.want {
				t.Errorf("client_ip %v, want %s", got, c.want)
			}
		})
	}
}
