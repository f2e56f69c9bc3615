// Package postgres holds the little the rest of the code needs around pgx: opening pools,
// running a function in a transaction, and turning driver errors into our sentinels in one
// place.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors produced at the database boundary. The API maps them to HTTP statuses in
// internal/api; nothing else inspects pgx errors.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("conflict")
)

// Interpret maps pgx errors to the package's sentinels, wrapping the original so the detail
// stays in logs. Other errors pass through unchanged.
func Interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// PoolOptions tunes a pool. The zero value is a sensible default for a small service.
type PoolOptions struct {
	// ApplicationName shows in pg_stat_activity, so an operator can tell roles apart.
	ApplicationName string
	// AsynchronousCommit makes the pool's commits return before their WAL reaches the
	// disk (synchronous_commit = off): a Postgres crash can lose the last few, never
	// half of one, and the database comes back as it was a moment before the crash.
	AsynchronousCommit bool
	// MaxConns caps the pool; 0 keeps pgx's default (max(4, CPUs)).
	MaxConns int32
}

// NewPool opens a pool and checks that the server answers, so a wrong DATABASE_URL fails
// at start with a clear message instead of at the first job.
func NewPool(ctx context.Context, databaseURL string, opts PoolOptions) (*pgxpool.Pool, error) {
	config, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	if opts.ApplicationName != "" {
		config.ConnConfig.RuntimeParams["application_name"] = opts.ApplicationName
	}
	// The node's queries are short and index-driven; Postgres's JIT compiles them anyway
	// once a table grows past its cost threshold, adding 1-3 s to queries that run in
	// milliseconds (measured on the report queries at 500k scores).
	config.ConnConfig.RuntimeParams["jit"] = "off"
	if opts.AsynchronousCommit {
		config.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	if opts.MaxConns > 0 {
		config.MaxConns = opts.MaxConns
	}
	config.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to %s: %w", redactURL(config.ConnConfig), err)
	}
	return pool, nil
}

func redactURL(c *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Beginner is what WithTx needs: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// WithTx runs fn in a transaction and commits when it returns nil. The rollback uses a
// context that cannot be cancelled, so a cancelled request never leaves a transaction open
// on a pooled connection.
func WithTx(ctx context.Context, db Beginner, fn func(ctx context.Context, tx pgx.Tx) error) error {
	_, err := WithTxV(ctx, db, func(ctx context.Context, tx pgx.Tx) (struct{}, error) {
		return struct{}{}, fn(ctx, tx)
	})
	return err
}

// WithTxV is WithTx for functions that return a value.
func WithTxV[T any](ctx context.Context, db Beginner, fn func(ctx context.Context, tx pgx.Tx) (T, error)) (T, error) {
	var zero T
	tx, err := db.Begin(ctx)
	if err != nil {
		return zero, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	value, err := fn(ctx, tx)
	if err != nil {
		return zero, err
	}
	if err := tx.Commit(ctx); err != nil {
		return zero, fmt.Errorf("committing transaction: %w", err)
	}
	return value, nil
}
