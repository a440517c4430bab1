package project_test

import (
	"context"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/project"
	"github.com/latchkey-dev/latchkey/internal/testdb"
)

// BenchmarkAuthenticateSecret measures the check every management request pays: one SHA-256
// and two indexed reads on SQLite.
func BenchmarkAuthenticateSecret(b *testing.B) {
	ctx := context.Background()
	svc := project.New(project.Deps{Store: testdb.SQLite(b)})
	issued, err := svc.Create(ctx, project.NewProject{Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.AuthenticateSecret(ctx, issued.Project.ClientID, issued.ClientSecret); err != nil {
			b.Fatal(err)
		}
	}
}
