package breach

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCheckerAsksTheOfflineListFirst(t *testing.T) {
	s, h := startRangeServer(t, map[string]int{})
	c := NewChecker(nil, h)
	if hit, err := c.Breached(context.Background(), "password123"); !hit || err != nil {
		t.Fatalf("Breached(common password) = %v, %v; want true, nil", hit, err)
	}
	if len(s.requests) != 0 {
		t.Fatalf("a password on the offline list was also sent to Pwned Passwords (%d requests)", len(s.requests))
	}
}

func TestCheckerAsksHIBPOnAMiss(t *testing.T) {
	const leaked = "Tr0ub4dor&3 leaked"
	s, h := startRangeServer(t, map[string]int{sha1Hex(leaked): 5})
	c := NewChecker(NewOffline(), h)
	if hit, err := c.Breached(context.Background(), leaked); !hit || err != nil {
		t.Fatalf("Breached(leaked) = %v, %v; want true, nil", hit, err)
	}
	if hit, err := c.Breached(context.Background(), "correct horse battery staple 7f3a"); hit || err != nil {
		t.Fatalf("Breached(fresh) = %v, %v; want false, nil", hit, err)
	}
	if len(s.requests) != 2 {
		t.Fatalf("%d requests to Pwned Passwords, want 2", len(s.requests))
	}
}

func TestCheckerWithoutHIBP(t *testing.T) {
	c := NewChecker(nil, nil)
	if hit, err := c.Breached(context.Background(), "qwertyuiop"); !hit || err != nil {
		t.Fatalf("Breached(common) = %v, %v; want true, nil", hit, err)
	}
	if hit, err := c.Breached(context.Background(), "correct horse battery staple 7f3a"); hit || err != nil {
		t.Fatalf("Breached(fresh) = %v, %v; want false, nil", hit, err)
	}
}

func TestCheckerReportsButDoesNotBlockOnHIBPFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := NewChecker(nil, &HIBP{BaseURL: srv.URL, Client: srv.Client()})
	hit, err := c.Breached(context.Background(), "correct horse battery staple 7f3a")
	if hit || err == nil {
		t.Fatalf("Breached = %v, %v; want false and the error to log", hit, err)
	}
	// A common password is still refused: the offline list answers without the network.
	if hit, err := c.Breached(context.Background(), "password123"); !hit || err != nil {
		t.Fatalf("Breached(common) = %v, %v; want true, nil", hit, err)
	}
}
