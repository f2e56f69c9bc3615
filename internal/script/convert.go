package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"go.starlark.net/starlark"
)

// ConvertError reports a value that cannot cross the Go/Starlark boundary, with the
// path to it inside the enclosing value (for example `["samples"][3]`), so an operator
// can find the offending field in a score dict of fifty keys.
type ConvertError struct {
	// Msg says what was wrong, for example "unsupported Go type chan int".
	Msg string
	// Path is the location inside the converted value; empty for the value itself.
	Path string
}

// Error implements error.
func (e *ConvertError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return "at " + e.Path + ": " + e.Msg
}

// within prefixes the error path with one more step while unwinding the recursion, so
// paths are only built when something actually fails.
func within(err error, step string) error {
	var ce *ConvertError
	if errors.As(err, &ce) {
		return &ConvertError{Msg: ce.Msg, Path: step + ce.Path}
	}
	return err
}

func keyStep(k string) string { return "[" + strconv.Quote(k) + "]" }
func indexStep(i int) string  { return "[" + strconv.Itoa(i) + "]" }

// ToValue converts Go data to a Starlark value: nil → None, bool, every integer kind →
// int, float32/float64 → float, string, json.Number → int or float, slices and arrays →
// list, maps with string keys → dict. A starlark.Value is passed through unchanged.
// Map keys are inserted in sorted order so scripts behave the same on every run.
// Common concrete types are handled without reflection because conversion sits on the
// per-prediction hot path.
func ToValue(v any) (starlark.Value, error) {
	switch x := v.(type) {
	case nil:
		return starlark.None, nil
	case starlark.Value:
		return x, nil
	case bool:
		return starlark.Bool(x), nil
	case string:
		return starlark.String(x), nil
	case float64:
		return starlark.Float(x), nil
	case float32:
		return starlark.Float(x), nil
	case int:
		return starlark.MakeInt(x), nil
	case int64:
		return starlark.MakeInt64(x), nil
	case int32:
		return starlark.MakeInt64(int64(x)), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return starlark.MakeInt64(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, &ConvertError{Msg: fmt.Sprintf("invalid json.Number %q", string(x))}
		}
		return starlark.Float(f), nil
	case map[string]any:
		var buf [16]string // most dicts are small; sort their keys without allocating
		d := starlark.NewDict(len(x))
		for _, k := range appendSortedKeys(buf[:0], x) {
			ev, err := ToValue(x[k])
			if err != nil {
				return nil, within(err, keyStep(k))
			}
			_ = d.SetKey(starlark.String(k), ev) // cannot fail: unfrozen dict, hashable key
		}
		return d, nil
	case map[string]float64:
		var buf [16]string
		d := starlark.NewDict(len(x))
		for _, k := range appendSortedKeys(buf[:0], x) {
			_ = d.SetKey(starlark.String(k), starlark.Float(x[k]))
		}
		return d, nil
	case []any:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			ev, err := ToValue(e)
			if err != nil {
				return nil, within(err, indexStep(i))
			}
			elems[i] = ev
		}
		return starlark.NewList(elems), nil
	case []float64:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = starlark.Float(e)
		}
		return starlark.NewList(elems), nil
	case []map[string]any:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			ev, err := ToValue(e)
			if err != nil {
				return nil, within(err, indexStep(i))
			}
			elems[i] = ev
		}
		return starlark.NewList(elems), nil
	}
	return reflectToValue(reflect.ValueOf(v))
}

// reflectToValue covers the long tail of Go types (other integer kinds, []string,
// map[string]int, named types…) so callers need not pre-convert.
func reflectToValue(rv reflect.Value) (starlark.Value, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return starlark.Bool(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return starlark.MakeInt64(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return starlark.MakeUint64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return starlark.Float(rv.Float()), nil
	case reflect.String:
		return starlark.String(rv.String()), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return starlark.NewList(nil), nil
		}
		elems := make([]starlark.Value, rv.Len())
		for i := range elems {
			ev, err := ToValue(rv.Index(i).Interface())
			if err != nil {
				return nil, within(err, indexStep(i))
			}
			elems[i] = ev
		}
		return starlark.NewList(elems), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, &ConvertError{Msg: fmt.Sprintf("unsupported map key type %s (want string)", rv.Type().Key())}
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			switch sa, sb := a.String(), b.String(); {
			case sa < sb:
				return -1
			case sa > sb:
				return 1
			}
			return 0
		})
		d := starlark.NewDict(len(keys))
		for _, k := range keys {
			ev, err := ToValue(rv.MapIndex(k).Interface())
			if err != nil {
				return nil, within(err, keyStep(k.String()))
			}
			_ = d.SetKey(starlark.String(k.String()), ev)
		}
		return d, nil
	case reflect.Invalid:
		return starlark.None, nil
	}
	return nil, &ConvertError{Msg: fmt.Sprintf("unsupported Go type %s", rv.Type())}
}

// appendSortedKeys appends the keys of m to keys and sorts them.
func appendSortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FromValue converts a Starlark value to plain Go data: None → nil, bool, int → int64,
// float → float64, string, list and tuple → []any, dict → map[string]any. Dict keys
// must be strings, and ints must fit in int64, because results end up in JSON columns;
// functions, sets, bytes and other types are rejected.
func FromValue(v starlark.Value) (any, error) {
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Float:
		return float64(x), nil
	case starlark.Int:
		i, ok := x.Int64()
		if !ok {
			return nil, &ConvertError{Msg: fmt.Sprintf("integer %s does not fit in int64", x.String())}
		}
		return i, nil
	case starlark.String:
		return string(x), nil
	case *starlark.Dict:
		items := x.Items()
		m := make(map[string]any, len(items))
		for _, kv := range items {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, &ConvertError{Msg: fmt.Sprintf("dict key %s is a %s, want string", kv[0].String(), kv[0].Type())}
			}
			ev, err := FromValue(kv[1])
			if err != nil {
				return nil, within(err, keyStep(string(k)))
			}
			m[string(k)] = ev
		}
		return m, nil
	case *starlark.List:
		return fromIndexable(x)
	case starlark.Tuple:
		return fromIndexable(x)
	case nil:
		return nil, &ConvertError{Msg: "nil starlark.Value"}
	}
	return nil, &ConvertError{Msg: fmt.Sprintf("unsupported Starlark type %s", v.Type())}
}

func fromIndexable(x starlark.Indexable) (any, error) {
	out := make([]any, x.Len())
	for i := range out {
		ev, err := FromValue(x.Index(i))
		if err != nil {
			return nil, within(err, indexStep(i))
		}
		out[i] = ev
	}
	return out, nil
}

// TypeName names, in Starlark's words, the type of a value [FromValue] returned, so that
// an error about a script's result speaks the language the script was written in.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case string:
		return "string"
	case int64:
		return "int"
	case float64:
		return "float"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}
