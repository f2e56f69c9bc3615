// Package dbtest gives each test its own migrated Postgres database, cloned by pgtestdb from
// a template that is built once per migration hash. Tests never skip for want of a
// database: an unreachable server fails them, with a message saying how to start one.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver pgtestdb opens
	"github.com/peterldowns/pgtestdb"
	"github.com/peterldowns/pgtestdb/migrators/common"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/crunchnode/crunch-node/db"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// ServerURL is the server tests create their databases on: TEST_DATABASE_URL, or the local
// default that `make test` starts.
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// ServerConfig is the pgtestdb configuration of the test server.
func ServerConfig(t testing.TB) pgtestdb.Config {
	t.Helper()
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("parsing TEST_DATABASE_URL: %v", err)
	}
	password, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	options := u.RawQuery
	if options == "" {
		options = "sslmode=disable"
	}
	return pgtestdb.Config{
		DriverName: "pgx",
		Host:       u.Hostname(),
		Port:       port,
		User:       u.User.Username(),
		Password:   password,
		Database:   "postgres",
		Options:    options,
		// A test that leaves a connection open (a River client still stopping) must not
		// make the cleanup fail.
		ForceTerminateConnections: true,
	}
}

// migrator builds the template with the node's own Migrate, so tests run on exactly the
// schema production runs on, River's tables included.
type migrator struct{}

// Hash covers our migrations, River's migration versions and the UTC date: the template
// holds partitions around the day it was built, so it is rebuilt daily.
func (migrator) Hash() (string, error) {
	hash := common.NewRecursiveHash(common.Field("date", time.Now().UTC().Format(time.DateOnly)))
	if err := hash.AddDirs(db.Migrations(), "*.sql", "."); err != nil {
		return "", fmt.Errorf("hashing migrations: %w", err)
	}
	riverMigrator, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", fmt.Errorf("listing River migrations: %w", err)
	}
	for _, m := range riverMigrator.AllVersions() {
		hash.AddField("river", m.Version)
		hash.Add([]byte(m.SQLUp))
	}
	return hash.String(), nil
}

func (migrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	pool, err := pgxpool.New(ctx, conf.URL())
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = db.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	return err
}

// NewURL creates a fresh migrated database for the test and returns its URL.
func NewURL(t testing.TB) string {
	t.Helper()
	conf := pgtestdb.Custom(t, ServerConfig(t), migrator{})
	return conf.URL()
}

// NewPool creates a fresh migrated database for the test and returns a pool on it, closed
// when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Connect(t, NewURL(t))
}

// Connect returns a pool on a database from NewURL, closed when the test ends: for tests
// that give the URL to a process they start and look at the database themselves. It is
// the node's own kind of pool (JIT off), so tests and benchmarks run queries as the node
// does.
func Connect(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.NewPool(context.Background(), url, postgres.PoolOptions{})
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Logger writes through t, so log lines appear only for failing tests. Lines logged after
// the test ended (a background goroutine still stopping) are dropped instead of panicking.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
