// Package modelhost is a Go implementation of the model side of CrunchDAO's
// model-runner protocol: DynamicSubclassService plus the standard gRPC health
// service, with the server semantics of the Python model-runner (status
// strings, idempotent Setup, keyword filtering, one call at a time). It hosts
// the Go example models and can inject faults, so the coordinator can be
// developed and tested end to end without Docker or Python.
//
// Run is the `crunch-node model-server` subcommand; New plus Serve host a
// model in process (tests, benchmarks) on any net.Listener. The examples
// (ExampleNames) implement feed_update/tick and predict and keep their state
// per symbol; Faults makes a host slow, failing, crashing or otherwise
// misbehaving on purpose.
package modelhost
