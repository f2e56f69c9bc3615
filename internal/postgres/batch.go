package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errNotQueueable is what a query that reads rows gets from a Batch: it needs its rows
// before it returns, so its statement cannot wait in a batch.
var errNotQueueable = errors.New("only statements without result rows can be batched")

// Batch sends several statements in one round trip instead of one each, for the hot
// paths where round trips, not the statements, are most of the time (the predict tick
// stores its input, predictions and score queue row this way). It is the generated
// queries' database: a generated :exec or :execrows query run against a Batch queues its
// statement instead of executing it, so the SQL stays in queries/*.sql.
type Batch struct {
	batch  pgx.Batch
	labels []string
}

// Queue runs exec, which must run one generated :exec or :execrows query against the
// batch, and labels the statement it queued with what it does, the context of its error
// if it fails.
func (b *Batch) Queue(label string, exec func(db *Batch) error) error {
	queued := b.batch.Len()
	if err := exec(b); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if n := b.batch.Len() - queued; n != 1 {
		return fmt.Errorf("%s: %d statements queued, want 1", label, n)
	}
	b.labels = append(b.labels, label)
	return nil
}

// Len is the number of statements queued.
func (b *Batch) Len() int { return len(b.labels) }

// Sender is what Send needs: a transaction, a connection or a pool.
type Sender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Send sends the queued statements in one round trip and reads their results in order.
// The first failure is returned with the label of the statement it is about (see
// blame); the statements after it do not run. Outside a transaction the batch is one
// implicit transaction (pgx's SendBatch).
func (b *Batch) Send(ctx context.Context, db Sender) error {
	if b.Len() == 0 {
		return nil
	}
	results := db.SendBatch(ctx, &b.batch)
	for i := range b.labels {
		if _, err := results.Exec(); err != nil {
			_ = results.Close()
			return fmt.Errorf("%s: %w", b.blame(i, err), err)
		}
	}
	if err := results.Close(); err != nil {
		return fmt.Errorf("closing the batch: %w", err)
	}
	return nil
}

// blame names the statements err, met reading the i-th result, is about. When the server
// refused a statement, that one: the i-th, or the one pgx was preparing (pgx reports
// that on the first result). Otherwise (a lost connection, an argument that could not be
// encoded) every statement from the i-th on, since nothing says how far the server got.
func (b *Batch) blame(i int, err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return strings.Join(b.labels[i:], ", ")
	}
	var prep pgx.ErrPreprocessingBatch
	if errors.As(err, &prep) {
		for j, q := range b.batch.QueuedQueries {
			if q.SQL == prep.SQL() {
				return b.labels[j]
			}
		}
	}
	return b.labels[i]
}

// Exec queues the statement; its command tag is empty, so an :execrows query run against
// the batch reports 0 rows.
func (b *Batch) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	b.batch.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// Query refuses: the rows would be needed before the batch is sent.
func (b *Batch) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errNotQueueable
}

// QueryRow refuses, through the row's Scan.
func (b *Batch) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{}
}

// CopyFrom refuses: COPY is a protocol exchange of its own.
func (b *Batch) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errNotQueueable
}

type errRow struct{}

func (errRow) Scan(...any) error { return errNotQueueable }
