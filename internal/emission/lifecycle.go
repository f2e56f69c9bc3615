package emission

import (
	"errors"
	"fmt"
)

// Status is a checkpoint's payment state. A checkpoint only ever moves one
// step forward, PENDING → SUBMITTED → CLAIMABLE → PAID, because each step
// records an external fact (a transaction was sent, became claimable, was
// paid) that cannot be undone.
type Status string

const (
	// StatusClaimable means the rewards can be claimed on chain.
	StatusClaimable Status = "CLAIMABLE"
	// StatusPaid is final.
	StatusPaid Status = "PAID"
	// StatusPending is the state of a new checkpoint.
	StatusPending Status = "PENDING"
	// StatusSubmitted means the emission transaction was sent (tx_hash
	// known).
	StatusSubmitted Status = "SUBMITTED"
)

var (
	// ErrUnknownStatus is returned for a status string that is not one of
	// the four; the API maps it to 422 (the request itself is invalid).
	ErrUnknownStatus = errors.New("unknown checkpoint status")

	// ErrIllegalTransition is returned for a valid status that is not the
	// next one; the API maps it to 409 (it conflicts with the current
	// state).
	ErrIllegalTransition = errors.New("illegal checkpoint status transition")
)

// ParseStatus validates a status string.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if _, ok := st.Next(); !ok && st != StatusPaid {
		return "", fmt.Errorf("%w: %q (want PENDING, SUBMITTED, CLAIMABLE or PAID)", ErrUnknownStatus, s)
	}
	return st, nil
}

// Next returns the status that may follow s; false for PAID and for
// unknown statuses.
func (s Status) Next() (Status, bool) {
	switch s {
	case StatusPending:
		return StatusSubmitted, true
	case StatusSubmitted:
		return StatusClaimable, true
	case StatusClaimable:
		return StatusPaid, true
	}
	return "", false
}

// NextAllowed reports whether a checkpoint in status from may move to to:
// only the single next step is allowed. Unknown statuses (either side)
// give ErrUnknownStatus, valid but out-of-order ones ErrIllegalTransition.
func NextAllowed(from, to Status) error {
	if _, err := ParseStatus(string(from)); err != nil {
		return fmt.Errorf("current status: %w", err)
	}
	if _, err := ParseStatus(string(to)); err != nil {
		return fmt.Errorf("requested status: %w", err)
	}
	if next, ok := from.Next(); !ok || next != to {
		return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, to)
	}
	return nil
}
