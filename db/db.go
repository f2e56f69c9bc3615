// Package db owns the database schema: the embedded goose migrations under migrations/
// (which sqlc also reads as its schema) and Migrate, which applies River's migrations and
// ours in one call.
package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the embedded migration files, rooted at the migrations folder.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the folder is embedded at build time; it cannot be missing
	}
	return sub
}

// migrationLockKey is the advisory lock that serialises migrate runs. Any constant works as
// long as nothing else uses it; this one spells "crunchmg" in ASCII.
const migrationLockKey = 0x6372756e63686d67

// Result says what a Migrate call applied; both lists are empty when the database was
// already up to date.
type Result struct {
	Ours  []string
	River []int
}

// Migrate applies River's migrations and then ours, in order, while holding a session-level
// advisory lock, so that two processes migrating one database at once cannot interleave: the
// second waits, then finds nothing to do.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (*Result, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring a connection for the migration lock: %w", err)
	}
	defer conn.Release()

	queries := dbsqlc.New()
	if err := queries.MigrationLockAcquire(ctx, conn, migrationLockKey); err != nil {
		return nil, fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A lost unlock is harmless: the lock is released with the session anyway.
		_ = queries.MigrationLockRelease(context.WithoutCancel(ctx), conn, migrationLockKey)
	}()

	result := &Result{}

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("creating the River migrator: %w", err)
	}
	riverResult, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("applying River's migrations: %w", err)
	}
	for _, version := range riverResult.Versions {
		result.River = append(result.River, version.Version)
	}

	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, Migrations(),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	applied, err := provider.Up(ctx)
	if err != nil {
		// goose has no sentinel for a database migrated by a build whose migrations this
		// one does not have in the same order (a development branch, typically); say what
		// fixes it.
		if strings.Contains(err.Error(), "out-of-order") {
			return nil, fmt.Errorf("applying migrations: %w; the database was migrated by a different build of crunch-node: "+
				"for a development database run `crunch-node migrate --reset`", err)
		}
		return nil, fmt.Errorf("applying migrations: %w", err)
	}
	for _, migration := range applied {
		result.Ours = append(result.Ours, migration.Source.Path)
	}

	logger.InfoContext(ctx, "Database migrated",
		slog.Int("river_applied", len(result.River)), slog.Int("applied", len(result.Ours)))
	return result, nil
}

// EnsureDatabase creates the database named in databaseURL when it does not exist yet, by
// connecting to the server's `postgres` database with the same credentials. It reports
// whether it created one. A role without CREATEDB gets Postgres's own error, wrapped.
func EnsureDatabase(ctx context.Context, databaseURL string) (bool, error) {
	config, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return false, fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	name := config.Database
	if name == "" || name == "postgres" {
		return false, nil
	}

	// Probe the target first: a role may be allowed to connect to its database but not
	// to the maintenance database.
	probe, err := pgx.ConnectConfig(ctx, config.Copy())
	if err == nil {
		return false, probe.Close(ctx)
	}
	if !isUnknownDatabase(err) {
		return false, fmt.Errorf("connecting to database %q: %w", name, err)
	}

	adminConfig := config.Copy()
	adminConfig.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, adminConfig)
	if err != nil {
		return false, fmt.Errorf("connecting to the maintenance database to create %q: %w", name, err)
	}
	defer admin.Close(ctx)

	// CREATE DATABASE takes no bind parameters, so this is the one statement built in Go;
	// the identifier is quoted by pgx.
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !isDuplicateDatabase(err) {
		return false, fmt.Errorf("creating database %q: %w", name, err)
	}
	return err == nil, nil
}

func isUnknownDatabase(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "3D000"
}

func isDuplicateDatabase(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P04"
}

// DropDatabase drops the database named in databaseURL, disconnecting its sessions, for
// `migrate --reset` on a development machine.
func DropDatabase(ctx context.Context, databaseURL string) error {
	config, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parsing DATABASE_URL: %w", err)
	}
	name := config.Database
	if name == "" || name == "postgres" {
		return fmt.Errorf("refusing to drop database %q", name)
	}
	adminConfig := config.Copy()
	adminConfig.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, adminConfig)
	if err != nil {
		return fmt.Errorf("connecting to the maintenance database: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %q: %w", name, err)
	}
	return nil
}
