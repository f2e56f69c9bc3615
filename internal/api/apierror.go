package api

import (
	"context"
	"errors"
	"log/slog"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/postgres"
)

// Errors endpoints return for bad requests that are not database outcomes.
var (
	// ErrInvalid is a request that is well-formed but not acceptable (422).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict is a request that clashes with the current state (409).
	ErrConflict = errors.New("conflict")
)

// toHTTPError is the one place where errors become HTTP statuses. Endpoints return their
// errors through it; anything unexpected is logged with its detail and answered with a
// generic 500 so internals never leak to clients.
func toHTTPError(ctx context.Context, logger *slog.Logger, err error) error {
	var statusErr huma.StatusError
	switch {
	case errors.As(err, &statusErr):
		return err
	case errors.Is(err, postgres.ErrNotFound):
		return huma.Error404NotFound(publicMessage(err, "not found"))
	case errors.Is(err, postgres.ErrConflict), errors.Is(err, ErrConflict):
		return huma.Error409Conflict(publicMessage(err, "conflict"))
	case errors.Is(err, ErrInvalid):
		return huma.Error422UnprocessableEntity(publicMessage(err, "invalid request"))
	case errors.Is(err, context.DeadlineExceeded):
		return huma.Error503ServiceUnavailable("the request took too long; try again")
	}
	logger.ErrorContext(ctx, "API: request failed", slog.String("error", err.Error()))
	return huma.Error500InternalServerError("internal error")
}

// publicError carries a message meant for clients next to the sentinel it wraps.
type publicError struct {
	message  string
	sentinel error
}

func (e *publicError) Error() string { return e.message }
func (e *publicError) Unwrap() error { return e.sentinel }

// Public wraps a sentinel with a message safe to show to clients.
func Public(sentinel error, message string) error {
	return &publicError{message: message, sentinel: sentinel}
}

func publicMessage(err error, fallback string) string {
	var public *publicError
	if errors.As(err, &public) {
		return public.message
	}
	return fallback
}
