package feed

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// optionEnvPrefix is the environment prefix of provider options, kept from the
// Python engine so existing .env files work unchanged.
const optionEnvPrefix = "FEED_OPT_"

// Options are provider settings keyed by lower-cased name: FEED_OPT_HERMES_URL
// and FEED_OPT_hermes_url both become "hermes_url". A nil Options is valid and
// empty.
type Options map[string]string

// OptionsFromEnviron collects FEED_OPT_<NAME>=value entries from an environment
// list in the form of os.Environ. The list is injected rather than read from the
// process so configuration stays testable and explicit. Later entries win,
// matching how a shell resolves duplicates.
func OptionsFromEnviron(environ []string) Options {
	opts := Options{}
	for _, kv := range environ {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || len(key) <= len(optionEnvPrefix) || !strings.EqualFold(key[:len(optionEnvPrefix)], optionEnvPrefix) {
			continue
		}
		opts[strings.ToLower(key[len(optionEnvPrefix):])] = value
	}
	return opts
}

// String returns the option's value, or def when it is unset or blank.
func (o Options) String(name, def string) string {
	if v, ok := o.lookup(name); ok {
		return v
	}
	return def
}

// Float returns the option as a finite float64, or def when it is unset. A value
// that does not parse is an error rather than a silent default, so a typo is
// caught at start-up.
func (o Options) Float(name string, def float64) (float64, error) {
	v, ok := o.lookup(name)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("option %s=%q: want a finite number", optionEnvPrefix+name, v)
	}
	return f, nil
}

// Int returns the option as an int, or def when it is unset.
func (o Options) Int(name string, def int) (int, error) {
	v, ok := o.lookup(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("option %s=%q: want an integer", optionEnvPrefix+name, v)
	}
	return n, nil
}

// Seconds returns an option given in (possibly fractional) seconds as a
// duration, or def when it is unset. Seconds are the unit of the Python
// engine's options, so the same values keep working.
func (o Options) Seconds(name string, def time.Duration) (time.Duration, error) {
	v, ok := o.lookup(name)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("option %s=%q: want a non-negative number of seconds", optionEnvPrefix+name, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// WithPrefix returns the options whose name starts with prefix, keyed by the
// rest of the name. Pyth uses it for feed_id_<symbol> entries.
func (o Options) WithPrefix(prefix string) map[string]string {
	prefix = strings.ToLower(prefix)
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(o)) {
		lk := strings.ToLower(k)
		if rest, ok := strings.CutPrefix(lk, prefix); ok && rest != "" {
			if v := strings.TrimSpace(o[k]); v != "" {
				out[rest] = v
			}
		}
	}
	return out
}

func (o Options) lookup(name string) (string, bool) {
	v, ok := o[strings.ToLower(name)]
	if !ok {
		// Options built by hand (tests, config files) may not be lower-cased.
		for _, k := range slices.Sorted(maps.Keys(o)) {
			if strings.EqualFold(k, name) {
				v, ok = o[k], true
				break
			}
		}
	}
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}
