package botcheck

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemorySpenderOnce(t *testing.T) {
	clock := newTestClock()
	m := NewMemorySpender(clock.Now)
	ctx := context.Background()
	exp := clock.Now().Add(DefaultTTL)
	for i, want := range []bool{true, false, false} {
		first, err := m.Spend(ctx, "k", exp)
		if err != nil || first != want {
			t.Fatalf("Spend #%d = %v, %v; want %v", i+1, first, err, want)
		}
	}
	if first, _ := m.Spend(ctx, "other", exp); !first {
		t.Fatal("another key was refused")
	}
}

func TestMemorySpenderForgetsExpiredKeys(t *testing.T) {
	clock := newTestClock()
	m := NewMemorySpender(clock.Now)
	ctx := context.Background()
	for i := range 100 {
		if _, err := m.Spend(ctx, "old"+strconv.Itoa(i), clock.Now().Add(DefaultTTL)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Spend(ctx, "young", clock.Now().Add(DefaultTTL+time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(DefaultTTL + sweepEvery)
	if _, err := m.Spend(ctx, "trigger", clock.Now().Add(DefaultTTL)); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	n := len(m.spent)
	m.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d keys kept after the sweep, want 2 (young, trigger)", n)
	}
	if first, _ := m.Spend(ctx, "young", clock.Now().Add(DefaultTTL)); first {
		t.Fatal("an unexpired key was forgotten")
	}
}

func TestMemorySpenderCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewMemorySpender(nil).Spend(ctx, "k", time.Now().Add(time.Minute)); err == nil {
		t.Fatal("Spend with a canceled context succeeded")
	}
}

func TestMemorySpenderConcurrent(t *testing.T) {
	m := NewMemorySpender(nil)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			first, err := m.Spend(context.Background(), "k", time.Now().Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if first {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d first spends, want 1", wins.Load())
	}
}

func BenchmarkMemorySpender(b *testing.B) {
	m := NewMemorySpender(nil)
	ctx := context.Background()
	exp := time.Now().Add(DefaultTTL)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := m.Spend(ctx, strconv.Itoa(i), exp); err != nil {
			b.Fatal(err)
		}
	}
}
